"""The runner: ``python -m evaluators.run +experiment=METHOD_DATASET [overrides]``.

Data flow (DESIGN.md "Data flow of the main job"): hydra composes ``configs/run.yaml`` with an
experiment (``method``, ``datasets``, ``protocols``, the paper's settings) and a scale; for each
dataset the runner loads ``configs/dataset/<name>.yaml`` at that scale, loads the data, builds
the method, trains it (``pretrain`` for a RepresentationLearner, else ``fit``) or loads
``checkpoint=PATH``, runs every protocol and writes one run record per result, then
regenerates the leaderboards under ``${runs_dir}/leaderboards`` and prints a short table.

Override scheme (group configs are resolved here, not by hydra, so a user override is
applied AFTER the ``scales`` block and always wins):

- ``method_cfg.KEY=V``            -> the method config
- ``dataset.root=/data/ntu``      -> every dataset of the run (any dataset key, e.g. ``dataset.n=10``)
- ``protocol_cfg.NAME.KEY=V``     -> protocol NAME's config
- ``scale=smoke``, ``seed=1``, ``device=cuda``, ``checkpoint=PATH``, ``runs_dir=...``

Extra config folders (searched before ``configs/``) and plugin modules (imported first, e.g.
to register an outside method) come from ``$MOTIONREPRO_CONFIG_PATH`` and
``$MOTIONREPRO_PLUGINS`` (``:``/``,``-separated). Errors a user can fix (unknown names, a real
dataset not on disk, a protocol the method cannot serve) exit 2 with the message and nothing else.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from evaluators.core.config import CONFIG_DIR, config_dirs, list_configs, load_config
from evaluators.core.validate import ConfigError

log = logging.getLogger("evaluators.runner.run")
REPO = Path(__file__).resolve().parents[2]
GROUP_PREFIXES = {"method_cfg.": "method", "dataset.": "dataset", "protocol_cfg.": "protocol"}
GROUP_PREFIXES_BY_GROUP = {"method": "method_cfg.", "dataset": "dataset."}


# ConfigError lives in evaluators.core.validate so that ``python -m evaluators.run`` (this module as
# __main__) and the validators raise and catch one class


# -- names -------------------------------------------------------------------------------------------
def load_plugins() -> None:
    """Import every method folder and every module named in ``$MOTIONREPRO_PLUGINS``."""
    from methods.registry import list_methods

    list_methods(include_testing=True)


def experiments_by_method() -> dict[str, list[str]]:
    """``{method: [dataset alias, ...]}`` from ``configs/experiment/<method>_<alias>.yaml``.

    Registered names are matched first (longest first: a method name may contain ``_``, as
    ``heatmap_baseline``); otherwise the part before the first ``_`` is taken as the method.
    """
    out: dict[str, list[str]] = {}
    for name in list_configs("experiment"):
        method, alias = split_experiment(name)
        if alias:
            out.setdefault(method, []).append(alias)
    return out


def split_experiment(name: str) -> tuple[str, str]:
    """``"heatmap_baseline_synth-coco"`` -> ``("heatmap_baseline", "synth-coco")``."""
    from methods.registry import list_methods

    for m in sorted(list_methods(include_testing=True), key=len, reverse=True):
        if name.startswith(m + "_"):
            return m, name[len(m) + 1:]
    method, _, alias = name.partition("_")
    return method, alias


def experiment_name(method: str, dataset: str) -> str:
    """Validate ``METHOD DATASET`` and return the experiment config name; ConfigError otherwise."""
    from methods.registry import UnknownNameError, get_method, unknown_name_message

    try:
        get_method(method)
    except UnknownNameError as e:
        raise ConfigError(str(e)) from None
    aliases = experiments_by_method().get(method, [])
    for cand in (dataset, dataset.replace("-", "_"), dataset.replace("_", "-")):
        if cand in aliases:
            return f"{method}_{cand}"
    msg = unknown_name_message("dataset", dataset, aliases)
    raise ConfigError(msg.replace(f"dataset {dataset!r}", f"dataset {dataset!r} for method {method!r}", 1))


def check_experiment_override(overrides: list[str]) -> None:
    """Fail early, in one line, on ``+experiment=NAME`` naming an unknown method or dataset."""
    for o in overrides:
        key, _, value = o.lstrip("+~").partition("=")
        if key == "experiment" and value and value not in list_configs("experiment"):
            method, dataset = split_experiment(value)
            experiment_name(method, dataset)  # raises the one-line message
            raise ConfigError(f"no experiment config experiment/{value}.yaml")


def group_overrides(overrides: list[str]) -> dict[str, Any]:
    """Split command-line overrides addressed to group configs: ``{"method": [...], "dataset": [...],
    "protocol": {name: [...]}}`` as OmegaConf dotlists (the prefix removed)."""
    out: dict[str, Any] = {"method": [], "dataset": [], "protocol": {}}
    for o in overrides:
        o = o.lstrip("+")
        for prefix, group in GROUP_PREFIXES.items():
            if o.startswith(prefix) and "=" in o:
                rest = o[len(prefix):]
                if group == "protocol":
                    name, _, rest = rest.partition(".")
                    out["protocol"].setdefault(name, []).append(rest)
                else:
                    out[group].append(rest)
    return out


def _dataset_alias(arg: str) -> str:
    """``dataset=NAME`` (one dataset config, issue 3's wording) -> ``datasets=[NAME]``.

    ``dataset`` itself is the dict of per-run dataset overrides (``dataset.root=...``), so hydra
    would otherwise reject ``dataset=NAME`` with "No match in the defaults list".
    """
    key, sep, value = arg.partition("=")
    if sep and key == "dataset" and value and not any(c in value for c in "[]{},"):
        return f"datasets=[{value}]"
    return arg


def _upsert(arg: str) -> str:
    """``method_cfg.K=V`` -> ``++method_cfg.K=V``: group overrides may add keys without a ``+``."""
    if "=" in arg and not arg.startswith(("+", "~", "-")) and arg.startswith(tuple(GROUP_PREFIXES)):
        return "++" + arg
    return arg


def resolve_device(device: str) -> str:
    import torch

    if device != "auto":
        return device
    if torch.cuda.is_available():
        return f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    return "cpu"


# -- planning: everything that can fail cheaply, before any data is read or model built -----------------
def plan(cfg: DictConfig, overrides: list[str], check_data: bool = True) -> dict[str, Any]:
    """Resolve the method, dataset and protocol configs and check they fit together.

    Raises ConfigError (unknown names, capability/task mismatch) or DatasetError (a real
    dataset missing on disk) before anything is built or trained.
    """
    from evaluators.datasets import dataset_info, resolve_root
    from evaluators.protocols import get_protocol
    from methods.base import capabilities_of
    from methods.registry import UnknownNameError, get_method

    for key in ("method", "datasets", "protocols"):
        if OmegaConf.is_missing(cfg, key):
            raise ConfigError(f"no {key!r} given: run an experiment, +experiment=METHOD_DATASET "
                              f"(./reproduce.sh METHOD DATASET; names: --list)")
    from evaluators.core import validate

    validate.check_run_values(cfg)
    scale = str(cfg.scale)
    ov = group_overrides(overrides)
    try:
        cls = get_method(str(cfg.method))
        specs = [get_protocol(str(p)) for p in cfg.protocols]
    except UnknownNameError as e:
        raise ConfigError(str(e)) from None
    caps = set(capabilities_of(cls))
    names = [spec.name for spec in specs]
    for pname in ov["protocol"]:
        if pname not in names:
            import difflib

            close = difflib.get_close_matches(pname, names, n=3)
            raise ConfigError(f"protocol_cfg.{pname}: this run has no protocol {pname!r}"
                              f"{'; did you mean ' + ', '.join(close) + '?' if close else ''} "
                              f"(its protocols: {', '.join(names)})")
    per_ds = _per_dataset(cfg)
    exp = _experiment_keys(overrides)  # keys an experiment adds may be overridden too
    mcfgs = {str(n): _load("method", str(cfg.method), scale, ov["method"],
                           _merge_patches(cfg.get("method_cfg"), per_ds.get(str(n), {}).get("method")),
                           known=exp["method"])
             for n in cfg.datasets}
    mcfg = next(iter(mcfgs.values())) if mcfgs else \
        _load("method", str(cfg.method), scale, ov["method"], cfg.get("method_cfg"), known=exp["method"])
    pcfgs, pcfgs_by_ds = {}, {str(n): {} for n in cfg.datasets}
    for spec in specs:
        missing = [c for c in spec.needs if c not in caps]
        if missing:
            raise ConfigError(f"protocol {spec.name!r} needs {', '.join(missing)}, which method {cfg.method!r} "
                              f"does not implement (it has: {', '.join(sorted(caps)) or 'none'})")
        patch = (cfg.get("protocol_cfg") or {}).get(spec.name)
        pcfgs[spec.name] = _load("protocol", spec.name, scale, ov["protocol"].get(spec.name, []), patch,
                                 optional=True, known=exp["protocol"].get(spec.name))
        for n in pcfgs_by_ds:
            ds_patch = (per_ds.get(n, {}).get("protocol") or {}).get(spec.name)
            pcfgs_by_ds[n][spec.name] = pcfgs[spec.name] if not ds_patch else _load(
                "protocol", spec.name, scale, ov["protocol"].get(spec.name, []), _merge_patches(patch, ds_patch),
                optional=True, known=exp["protocol"].get(spec.name))
    dataset_patch = {k: v for k, v in OmegaConf.to_container(cfg.get("dataset") or {}).items() if v is not None}
    dcfgs = []
    for name in cfg.datasets:
        dcfg = _load("dataset", str(name), scale, ov["dataset"], dataset_patch)
        try:
            info = dataset_info(dcfg["name"])
        except UnknownNameError as e:
            raise ConfigError(f"configs/dataset/{name}.yaml: {e}") from None
        dcfg.setdefault("task", info["task"])
        dcfg.setdefault("source", info["source"])
        for spec in specs:
            if spec.tasks and dcfg["task"] not in spec.tasks:
                raise ConfigError(f"protocol {spec.name!r} serves tasks {list(spec.tasks)}, dataset {name!r} is "
                                  f"{dcfg['task']!r}")
        if dcfg["source"] == "real" and check_data:
            resolve_root(dcfg)  # DatasetError with layout, env var / override and URL: stop at once
        dcfgs.append(dcfg)
    if cfg.get("checkpoint") and check_data:
        validate.check_checkpoint(str(cfg.checkpoint), bool(getattr(cls, "checkpoint_accepts_dir", False)),
                                  str(cfg.method))
    return {"cls": cls, "method_cfg": mcfg, "method_cfgs": mcfgs, "datasets": dcfgs, "specs": specs,
            "protocol_cfgs": pcfgs, "protocol_cfgs_by_dataset": pcfgs_by_ds}


PER_DATASET_KEYS = ("method", "protocol")


def _per_dataset(cfg: DictConfig) -> dict[str, dict]:
    """The experiment's ``per_dataset: {DATASET: {method: {...}, protocol: {NAME: {...}}}}`` block.

    Each dataset's ``method`` patch is merged AFTER the experiment's ``method_cfg`` (and its
    ``protocol`` patches after ``protocol_cfg``); command-line overrides still win. Datasets the
    run does not select are ignored (``dataset=ntu60_xsub`` keeps the block valid).
    """
    raw = cfg.get("per_dataset")
    if raw is None:
        return {}
    block = OmegaConf.to_container(raw, resolve=True) if isinstance(raw, DictConfig) else raw
    if not isinstance(block, dict):
        raise ConfigError(f"per_dataset must map dataset names to {{method: ..., protocol: ...}}, got {block!r}")
    for name, entry in block.items():
        bad = set(entry or {}) - set(PER_DATASET_KEYS) if isinstance(entry, dict) else {"<not a mapping>"}
        if bad:
            raise ConfigError(f"per_dataset.{name}: unknown key(s) {sorted(bad)} (allowed: {list(PER_DATASET_KEYS)})")
    return {str(k): dict(v or {}) for k, v in block.items()}


def _merge_patches(base: Any, extra: Any) -> Any:
    """``base`` (experiment block) with ``extra`` (per-dataset block) merged over it."""
    if not extra:
        return base
    base = OmegaConf.to_container(base, resolve=True) if isinstance(base, DictConfig) else (base or {})
    return OmegaConf.to_container(OmegaConf.merge(OmegaConf.create(base), OmegaConf.create(extra)), resolve=True)


def _experiment_keys(overrides: list[str]) -> dict[str, Any]:
    """The method / protocol settings the run's experiment file writes (``method_cfg``, ``protocol_cfg``,
    ``per_dataset``, every scale), from the file itself so that user overrides are not among them."""
    out: dict[str, Any] = {"method": {}, "protocol": {}}
    names = [o.split("=", 1)[1] for o in overrides if o.lstrip("+").startswith("experiment=")]
    if not names:
        return out
    try:
        from evaluators.core.config import config_path

        raw = OmegaConf.to_container(OmegaConf.load(config_path("experiment", names[-1])))
    except (FileNotFoundError, ValueError):
        return out
    if not isinstance(raw, dict):
        return out

    def flat(block: Any) -> dict:
        if not isinstance(block, dict):
            return {}
        scales = block.get("scales") or {}
        merged = OmegaConf.merge({k: v for k, v in block.items() if k != "scales"},
                                 *(v for v in scales.values() if isinstance(v, dict)))
        return OmegaConf.to_container(merged)

    methods = [flat(raw.get("method_cfg"))]
    protos: dict[str, list] = {k: [flat(v)] for k, v in (raw.get("protocol_cfg") or {}).items()}
    for block in (raw.get("per_dataset") or {}).values():
        if isinstance(block, dict):
            methods.append(flat(block.get("method")))
            for k, v in (block.get("protocol") or {}).items():
                protos.setdefault(k, []).append(flat(v))
    out["method"] = OmegaConf.to_container(OmegaConf.merge(*methods))
    out["protocol"] = {k: OmegaConf.to_container(OmegaConf.merge(*v)) for k, v in protos.items()}
    return out


def _load(group: str, name: str, scale: str, overrides: list[str], patch: Any, optional: bool = False,
          known: dict | None = None) -> dict:
    """The resolved group config; unknown override keys and out-of-range values raise ConfigError.

    ``known``: further keys an override may name (those the experiment file adds)."""
    from evaluators.core import validate

    patch = OmegaConf.to_container(patch, resolve=True) if isinstance(patch, DictConfig) else patch
    where = f"configs/{group}/{name}.yaml"
    try:
        if overrides:  # every overridden key must exist in the config file (either scale)
            base = OmegaConf.to_container(OmegaConf.merge(*(load_config(group, name, s) for s in ("paper", "smoke")),
                                                          known or {}))
            extra = validate.COMMON_DATASET_KEYS if group == "dataset" else frozenset()
            prefix = f"protocol_cfg.{name}." if group == "protocol" else GROUP_PREFIXES_BY_GROUP[group]
            validate.check_override_keys(base, overrides, where, prefix, extra)
        out = load_config(group, name, scale, overrides or None, patch=patch or None)
    except FileNotFoundError as e:
        if optional:  # a registered protocol without a config file runs with its defaults
            log.warning("%s; using the protocol's defaults", e)
            out = load_config_dict(name, scale, overrides, patch)
            where = f"protocol {name} (defaults)"
        else:
            raise ConfigError(str(e)) from None
    except ValueError as e:  # a malformed override or config
        raise ConfigError(f"{where}: {e}") from None
    validate.check_values(out, where)
    return out


def load_config_dict(name: str, scale: str, overrides: list[str], patch: Any) -> dict:
    from evaluators.core.config import resolve_scale

    cfg = resolve_scale(patch or {}, scale)
    if overrides:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    out = OmegaConf.to_container(cfg, resolve=True)
    out.setdefault("name", name)
    return out


# -- running ---------------------------------------------------------------------------------------------
def run_experiment(cfg: DictConfig, overrides: list[str] | None = None) -> list[dict]:
    """Run a composed config end to end; returns the records written (on the main rank)."""
    from evaluators import provenance as P
    from evaluators.core import distributed as D
    from evaluators.core.seeding import seed_everything
    from evaluators.core.validate import probe_writable
    from evaluators.datasets import load_dataset
    from evaluators.datasets.cache import cache_key
    from evaluators.protocols import RunContext
    from evaluators.protocols.pose import checkpoint_scorer
    from evaluators.records import make_record
    from methods.base import PoseEstimator, RepresentationLearner

    overrides = list(overrides or [])
    p = plan(cfg, overrides)
    D.init_distributed()
    device, seed, scale = resolve_device(str(cfg.device)), int(cfg.seed), str(cfg.scale)
    runs_dir = Path(str(cfg.runs_dir))
    if D.is_main():  # before any work: a read-only folder would otherwise lose the run at the end
        probe_writable(runs_dir, "runs_dir")
        probe_writable(Path(str(cfg.records_dir)), "records_dir")
    records: list[dict] = []
    run_cfg = OmegaConf.to_container(cfg, resolve=True)
    for cfg_name, dcfg in zip([str(n) for n in cfg.datasets], p["datasets"]):
        t0 = time.perf_counter()
        ds_name = dcfg["name"]
        # the settings' hash keeps resume safe: a changed config never resumes another's checkpoint
        mcfg = p.get("method_cfgs", {}).get(cfg_name, p["method_cfg"])
        pcfgs = p.get("protocol_cfgs_by_dataset", {}).get(cfg_name, p["protocol_cfgs"])
        tag = f"{scale}_s{seed}_{cache_key(mcfg, dcfg)[:8]}"
        workdir = Path(str(cfg.workdir)) / ds_name / tag if cfg.get("workdir") else \
            runs_dir / "work" / str(cfg.method) / ds_name / tag
        log.info("dataset %s (%s, %s) -> workdir %s", ds_name, dcfg["source"], scale, workdir)
        seed_everything(seed)
        data = load_dataset(dcfg)
        method = p["cls"](dict(mcfg), device=device, seed=seed, workdir=workdir)
        if cfg.get("checkpoint"):
            try:  # a mismatched setup is refused in one line naming the fix (exit 2)
                method.load_checkpoint(str(cfg.checkpoint))
            except (ValueError, FileNotFoundError, KeyError) as e:
                raise ConfigError(f"checkpoint={cfg.checkpoint}: {str(e).splitlines()[0] if str(e) else e!r}") from e
            ckpt = str(cfg.checkpoint)
        else:
            if isinstance(method, RepresentationLearner):
                method.pretrain(data)
            elif isinstance(method, PoseEstimator):  # the pose protocol scores the best-checkpoint validation
                method.fit(data, validate=checkpoint_scorer(data))
            else:
                method.fit(data)
            ckpt = str(workdir / "method.pt")
            if D.is_main() and hasattr(method, "save_checkpoint"):
                method.save_checkpoint(ckpt)
            D.barrier()
        train_s = time.perf_counter() - t0
        # what decides comparability (weights, text encoder, ours.* config values); protocols add theirs
        base_prov = P.collect(method, method_cfg=p["method_cfg"], workdir=workdir,
                              checkpoint=str(cfg.checkpoint) if cfg.get("checkpoint") else None)
        ctx = RunContext(seed=seed, device=device, workdir=workdir, data_source=dcfg["source"], scale=scale,
                         rank=D.rank(), world_size=D.world_size(),
                         extra={"dataset_cfg": dcfg, "method_cfg": mcfg})
        for spec in p["specs"]:
            pcfg = pcfgs[spec.name]
            t1 = time.perf_counter()
            seed_everything(seed)
            out = spec.fn(method, data, pcfg, ctx)
            proto_s = time.perf_counter() - t1
            if not D.is_main():
                continue
            for res in out if isinstance(out, list) else [out]:
                if not res.n_samples:
                    log.warning("protocol %s returned no n_samples (expected vs evaluated)", spec.name)
                rec = make_record(
                    method=str(cfg.method), dataset=ds_name, protocol=spec.name, metrics=res.metrics,
                    data=dcfg["source"], scale=scale, seed=seed, split=res.split, variant=res.variant,
                    n_samples=res.n_samples, wall_s=train_s + proto_s,
                    config={"run": run_cfg, "method": mcfg, "dataset": dcfg, "protocol": pcfg},
                    extra={**res.extra, "train_wall_s": train_s, "protocol_wall_s": proto_s, "checkpoint": ckpt,
                           "device": device, "world_size": D.world_size(),
                           **({"trust_pickles": True} if dcfg.get("trust_pickles") else {})},
                    provenance=P.merge(base_prov, res.provenance))
                path = _write_record_or_fallback(rec, Path(str(cfg.records_dir)))
                log.info("wrote %s", path)
                records.append(rec)
    return records


def fallback_records_dir() -> Path:
    """Where records go when ``records_dir`` turned unwritable during the run."""
    import tempfile

    return Path(os.environ.get("MOTIONREPRO_FALLBACK_RECORDS", Path(tempfile.gettempdir()) / "motionrepro-records"))


def _write_record_or_fallback(rec: dict, records_dir: Path) -> Path:
    """``write_record``; if ``records_dir`` cannot be written, the fallback folder (and say so)."""
    from evaluators.records import write_record

    try:
        return write_record(rec, records_dir)
    except OSError as e:
        fb = fallback_records_dir()
        path = write_record(rec, fb)
        log.warning("records_dir %s is not writable (%s): record written to %s instead", records_dir,
                    e.strerror or e, path)
        print(f"warning: records_dir {records_dir} is not writable; record saved to {path}", file=sys.stderr)
        return path


def finish(records: list[dict], runs_dir: Path, regenerate: bool = True) -> str:
    """Regenerate ``runs_dir/leaderboards`` from published + local records; the summary table."""
    try:
        from leaderboards.make_tables import regenerate as regen
        from leaderboards.make_tables import summary_table
    except ImportError as e:
        raise ConfigError(f"leaderboards.make_tables is not importable ({e}); records were written to "
                          f"{runs_dir / 'records'}") from None
    if regenerate:
        regen(results_dirs=[REPO / "leaderboards" / "results", runs_dir / "records"],
              out_dir=runs_dir / "leaderboards", lenient=[runs_dir / "records"])
        log.info("leaderboards regenerated under %s", runs_dir / "leaderboards")
    return summary_table(records)


# -- entry points ------------------------------------------------------------------------------------------
def _hydra_main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    from evaluators.core import distributed as D

    overrides = list(HydraConfig.get().overrides.task)
    records = _guard(lambda: run_experiment(cfg, overrides))
    if D.is_main():
        print(_guard(lambda: finish(records, Path(str(cfg.runs_dir)), bool(cfg.leaderboards))))


def _guard(fn):
    """Turn user-fixable errors into ``exit 2`` with their message only."""
    from evaluators.core.safe_load import CheckpointError
    from evaluators.datasets import DatasetError

    try:
        return fn()
    except (ConfigError, DatasetError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def compose(overrides: list[str]) -> DictConfig:
    """The composed run config for ``overrides`` (hydra's compose API; no output dir, no logging setup)."""
    from hydra import compose as h_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return h_compose("run", overrides=[*overrides, *_searchpath_override()])
    except HydraException as e:
        lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()] or [type(e).__name__]
        bad = getattr(e, "override", None)  # OverrideParseException names the override it could not parse
        bad = bad if isinstance(bad, str) else next((o for o in overrides if o in str(e)), None)
        raise ConfigError(f"override {bad!r}: {lines[-1] if bad else lines[0]}" if bad else lines[0]) from None


def _searchpath_override() -> list[str]:
    extra = [d for d in config_dirs() if d != CONFIG_DIR]
    return [f"hydra.searchpath=[{','.join('file://' + str(d.resolve()) for d in extra)}]"] if extra else []


def main(argv: list[str] | None = None) -> None:
    """CLI: ``--list``, ``--demo [--only M]``, ``--experiment METHOD DATASET [overrides]``, ``--cfg job``,
    else the hydra run (``-m`` for sweeps)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing is downloaded at run time
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s %(name)s] %(message)s")
    load_plugins()
    if argv[:1] == ["--list"]:
        from evaluators.runner.demo import listing

        print(listing())
        return
    if argv[:1] == ["--demo"]:
        from evaluators.runner.demo import demo

        sys.exit(demo(argv[1:]))
    if argv[:1] == ["--experiment"]:  # ./reproduce.sh METHOD DATASET [overrides]
        if len(argv) < 3:
            print("error: usage: --experiment METHOD DATASET [overrides]", file=sys.stderr)
            sys.exit(2)
        name = _guard(lambda: experiment_name(argv[1], argv[2]))
        if any(a in ("--help", "-h") for a in argv[3:]):  # ./reproduce.sh METHOD DATASET --help
            from evaluators.runner.experiment_help import experiment_help

            print(experiment_help(argv[1], name))
            return
        argv = [f"+experiment={name}", *argv[3:]]
    argv = [_upsert(_dataset_alias(a)) for a in argv]
    estimate_from = None
    if any(a == "--estimate" or a.startswith("--estimate-from=") for a in argv):  # issue 12 §4: cost, no run
        estimate_from = next((a.split("=", 1)[1] for a in argv if a.startswith("--estimate-from=")), None)
        argv = [a for a in argv if a != "--estimate" and not a.startswith("--estimate-from=")]
        flags, overrides = split_flags(argv)
        _guard(lambda: check_experiment_override(overrides))
        from evaluators.runner.estimate import estimate

        composed = _guard(lambda: compose(overrides))
        planned = _guard(lambda: plan(composed, overrides, check_data=False))
        print(_guard(lambda: estimate(planned, composed, estimate_from)))
        return
    flags, overrides = split_flags(argv)
    _guard(lambda: check_experiment_override(overrides))
    if not any(f in ("-m", "--multirun", "--help", "-h", "--hydra-help", "--info", "-i") for f in flags):
        _guard(lambda: compose(overrides))  # hydra's own override errors as one line, exit 2
    for i, f in enumerate(flags):
        if f in ("--cfg", "-c") and flags[i + 1:i + 2] == ["job"]:
            composed = _guard(lambda: compose(overrides))
            print(_guard(lambda c=composed: describe(c, overrides)))
            return
    import hydra

    # hydra's parser wants its flags before the overrides (``... +experiment=x -m seed=0,1`` works too)
    sys.argv = [sys.argv[0], *flags, *overrides, *_searchpath_override()]
    hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="run")(_hydra_main)()


_VALUED_FLAGS = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn", "--config-dir",
                 "-cd", "--experimental-rerun"}


def split_flags(argv: list[str]) -> tuple[list[str], list[str]]:
    """Separate hydra's command-line flags (with their values) from the overrides."""
    flags, overrides = [], []
    it = iter(range(len(argv)))
    for i in it:
        a = argv[i]
        if not a.startswith("-"):
            overrides.append(a)
            continue
        flags.append(a)
        if (a in _VALUED_FLAGS or (a == "--info" and i + 1 < len(argv) and "=" not in argv[i + 1])) \
                and i + 1 < len(argv):
            flags.append(argv[i + 1])
            next(it, None)
    return flags, overrides


def describe(cfg: DictConfig, overrides: list[str]) -> str:
    """``--cfg job``: the composed run config plus the resolved group configs it will use."""
    text = OmegaConf.to_yaml(cfg, resolve=False)
    try:
        p = plan(cfg, overrides, check_data=False)
    except Exception as e:  # still show the composition; say why resolution stopped
        return text + f"# resolved group configs unavailable: {e}\n"
    resolved = {"method": p["method_cfg"], "datasets": {d["name"]: d for d in p["datasets"]},
                "protocols": p["protocol_cfgs"]}
    if _per_dataset(cfg):  # the per-dataset settings: one method config (and protocol configs) per dataset
        resolved["per_dataset"] = {n: {"method": m, "protocols": p["protocol_cfgs_by_dataset"][n]}
                                   for n, m in p["method_cfgs"].items()}
    return text + "# resolved at scale=" + str(cfg.scale) + " (what the run uses)\n" + \
        OmegaConf.to_yaml({"resolved": resolved})


if __name__ == "__main__":
    main()
