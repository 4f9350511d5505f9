"""The typed plan of a run: one composed config, validated once, resolved into dataclasses.

:func:`build_plan` reads the composed run config (``configs/run.yaml`` + experiment + overrides)
and resolves, at the run's scale, the method config of every dataset (experiment ``method_cfg``
< ``per_dataset.<name>.method`` < command-line ``method_cfg.K=V``), each dataset config and each
protocol config, and checks they fit together (capabilities, tasks, real data on disk, the
checkpoint) before anything is built or trained. Everything downstream (training, protocols,
records, ``--cfg job``, ``--estimate``) reads the :class:`RunPlan`, not the raw overrides.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from evaluators.core import validate
from evaluators.core.config import config_path, load_config, resolve_scale
from evaluators.core.validate import ConfigError
from evaluators.datasets import dataset_info, resolve_root
from evaluators.datasets.cache import cache_key, cache_root
from evaluators.protocols import get_protocol
from evaluators.protocols.registry import ProtocolSpec
from evaluators.runner.compose import GROUP_PREFIXES_BY_GROUP, group_overrides
from evaluators.runner.names import experiment_of
from methods.base import capabilities_of
from methods.registry import UnknownNameError, get_method

log = logging.getLogger("evaluators.runner.run")
PER_DATASET_KEYS = ("method", "protocol")


@dataclass(frozen=True)
class DatasetPlan:
    """One dataset of the run: one training and every protocol on it."""

    config_name: str                  # the entry of ``datasets:`` (configs/dataset/<config_name>.yaml)
    dataset_cfg: dict                 # resolved dataset config (with ``name``, ``task``, ``source``)
    method_cfg: dict                  # this dataset's method config: the record's ``config.method``, its provenance
    protocol_cfgs: dict[str, dict]    # protocol name -> resolved config for this dataset
    workdir: Path                     # checkpoints and resume; named by the settings' hash

    @property
    def name(self) -> str:
        """The dataset's registry name (the record's ``dataset``)."""
        return str(self.dataset_cfg["name"])

    @property
    def source(self) -> str:
        return str(self.dataset_cfg["source"])

    @property
    def paper_setting(self) -> Mapping | None:
        """What the paper used (method config ``paper_setting:``), for comparability."""
        return self.method_cfg.get("paper_setting")


@dataclass(frozen=True)
class RunPlan:
    """Everything a run needs, resolved once from one composition."""

    method: str
    method_cls: type
    experiment: str | None            # the ``+experiment=`` name, if any
    scale: str
    seed: int
    device: str                       # resolved (``auto`` -> this rank's GPU or cpu)
    runs_dir: Path
    records_dir: Path
    checkpoint: str | None            # evaluate these weights instead of training
    leaderboards: bool                # regenerate ``runs_dir/leaderboards`` at the end
    protocols: tuple[ProtocolSpec, ...]
    datasets: tuple[DatasetPlan, ...]
    method_cfg: dict                  # the first dataset's method config (``--estimate``, ``--cfg job``)
    protocol_cfgs: dict[str, dict]    # protocol configs before any ``per_dataset`` patch
    run_cfg: dict                     # the composed run config, resolved (the record's ``config.run``)


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda:$LOCAL_RANK`` when a GPU is visible, else ``cpu``; other values unchanged."""
    if device != "auto":
        return device
    if torch.cuda.is_available():
        return f"cuda:{os.environ.get('LOCAL_RANK', '0')}"
    return "cpu"


def build_plan(cfg: DictConfig, overrides: list[str], check_data: bool = True) -> RunPlan:
    """Resolve the method, dataset and protocol configs of a composed run and check they fit together.

    Raises ConfigError (unknown names, capability/task mismatch, a bad value) or DatasetError (a
    real dataset missing on disk) before anything is built or trained.
    """
    for key in ("method", "datasets", "protocols"):
        if OmegaConf.is_missing(cfg, key):
            raise ConfigError(f"no {key!r} given: run an experiment, +experiment=METHOD_DATASET "
                              f"(./reproduce.sh METHOD DATASET; names: --list)")
    validate.check_run_values(cfg)
    if check_data:  # before hydra creates its output folder under runs_dir, and before any data is built
        validate.check_output_dir(str(cfg.runs_dir), "runs_dir")
        validate.check_output_dir(str(cfg.records_dir), "records_dir")
        cache_root()  # $MOTIONREPRO_CACHE naming a file: one line (a read-only shared cache stays allowed)
    scale, seed = str(cfg.scale), int(cfg.seed)
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
            close = difflib.get_close_matches(pname, names, n=3)
            raise ConfigError(f"protocol_cfg.{pname}: this run has no protocol {pname!r}"
                              f"{'; did you mean ' + ', '.join(close) + '?' if close else ''} "
                              f"(its protocols: {', '.join(names)})")
    ds_names = [str(n) for n in cfg.datasets]
    per_ds = per_dataset(cfg)
    exp = experiment_keys(experiment_of(overrides))  # keys an experiment adds may be overridden too
    loader = _GroupLoader(scale)
    mcfgs = {n: loader.load("method", str(cfg.method), ov["method"],
                            merge_patches(cfg.get("method_cfg"), per_ds.get(n, {}).get("method")), known=exp["method"])
             for n in ds_names}
    mcfg = next(iter(mcfgs.values())) if mcfgs else \
        loader.load("method", str(cfg.method), ov["method"], cfg.get("method_cfg"), known=exp["method"])
    pcfgs: dict[str, dict] = {}
    pcfgs_by_ds: dict[str, dict[str, dict]] = {n: {} for n in ds_names}
    for spec in specs:
        missing = [c for c in spec.needs if c not in caps]
        if missing:
            raise ConfigError(f"protocol {spec.name!r} needs {', '.join(missing)}, which method {cfg.method!r} "
                              f"does not implement (it has: {', '.join(sorted(caps)) or 'none'})")
        patch = (cfg.get("protocol_cfg") or {}).get(spec.name)
        p_ov, known = ov["protocol"].get(spec.name, []), exp["protocol"].get(spec.name)
        pcfgs[spec.name] = loader.load("protocol", spec.name, p_ov, patch, optional=True, known=known)
        for n in pcfgs_by_ds:
            ds_patch = (per_ds.get(n, {}).get("protocol") or {}).get(spec.name)
            pcfgs_by_ds[n][spec.name] = pcfgs[spec.name] if not ds_patch else loader.load(
                "protocol", spec.name, p_ov, merge_patches(patch, ds_patch), optional=True, known=known)
    dataset_patch = {k: v for k, v in OmegaConf.to_container(cfg.get("dataset") or {}).items() if v is not None}
    runs_dir = Path(str(cfg.runs_dir))
    datasets = []
    for name in ds_names:
        dcfg = loader.load("dataset", name, ov["dataset"], dataset_patch)
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
        # the settings' hash keeps resume safe: a changed config never resumes another's checkpoint
        tag = f"{scale}_s{seed}_{cache_key(mcfgs[name], dcfg)[:8]}"
        workdir = Path(str(cfg.workdir)) / dcfg["name"] / tag if cfg.get("workdir") else \
            runs_dir / "work" / str(cfg.method) / dcfg["name"] / tag
        datasets.append(DatasetPlan(name, dcfg, mcfgs[name], pcfgs_by_ds[name], workdir))
    if cfg.get("checkpoint") and check_data:
        validate.check_checkpoint(str(cfg.checkpoint), bool(getattr(cls, "checkpoint_accepts_dir", False)),
                                  str(cfg.method))
    return RunPlan(method=str(cfg.method), method_cls=cls, experiment=experiment_of(overrides), scale=scale,
                   seed=seed, device=resolve_device(str(cfg.device)), runs_dir=runs_dir,
                   records_dir=Path(str(cfg.records_dir)),
                   checkpoint=str(cfg.checkpoint) if cfg.get("checkpoint") else None,
                   leaderboards=bool(cfg.get("leaderboards", True)), protocols=tuple(specs),
                   datasets=tuple(datasets), method_cfg=mcfg, protocol_cfgs=pcfgs,
                   run_cfg=OmegaConf.to_container(cfg, resolve=True))


def per_dataset(cfg: DictConfig) -> dict[str, dict]:
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


def merge_patches(base: Any, extra: Any) -> Any:
    """``base`` (experiment block) with ``extra`` (per-dataset block) merged over it."""
    if not extra:
        return base
    base = OmegaConf.to_container(base, resolve=True) if isinstance(base, DictConfig) else (base or {})
    return OmegaConf.to_container(OmegaConf.merge(OmegaConf.create(base), OmegaConf.create(extra)), resolve=True)


def experiment_keys(experiment: str | None) -> dict[str, Any]:
    """The method / protocol settings the experiment file writes (``method_cfg``, ``protocol_cfg``,
    ``per_dataset``, every scale): keys a user override may name although the group file lacks them.

    Read from the file itself, not from the composition, where the user's overrides are merged in."""
    out: dict[str, Any] = {"method": {}, "protocol": {}}
    if not experiment:
        return out
    try:
        raw = OmegaConf.to_container(OmegaConf.load(config_path("experiment", experiment)))
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


class _GroupLoader:
    """Resolved group configs at one scale; the keys an override may name are read once per file."""

    def __init__(self, scale: str) -> None:
        self.scale = scale
        self._keys: dict[tuple[str, str], dict] = {}

    def known_keys(self, group: str, name: str) -> dict:
        """The file's keys at every scale (an override must name one of them)."""
        if (group, name) not in self._keys:
            self._keys[group, name] = OmegaConf.to_container(
                OmegaConf.merge(*(load_config(group, name, s) for s in ("paper", "smoke"))))
        return self._keys[group, name]

    def load(self, group: str, name: str, overrides: list[str], patch: Any, optional: bool = False,
             known: dict | None = None) -> dict:
        """The resolved group config; unknown override keys and out-of-range values raise ConfigError.

        ``known``: further keys an override may name (those the experiment file adds)."""
        patch = OmegaConf.to_container(patch, resolve=True) if isinstance(patch, DictConfig) else patch
        where = f"configs/{group}/{name}.yaml"
        try:
            if overrides:  # every overridden key must exist in the config file (either scale)
                base = OmegaConf.to_container(OmegaConf.merge(self.known_keys(group, name), known or {}))
                extra = validate.COMMON_DATASET_KEYS if group == "dataset" else frozenset()
                prefix = f"protocol_cfg.{name}." if group == "protocol" else GROUP_PREFIXES_BY_GROUP[group]
                validate.check_override_keys(base, overrides, where, prefix, extra)
                validate.check_override_types(base, overrides, where, prefix)
            out = load_config(group, name, self.scale, overrides or None, patch=patch or None)
        except FileNotFoundError as e:
            if optional:  # a registered protocol without a config file runs with its defaults
                log.warning("%s; using the protocol's defaults", e)
                out = load_config_dict(name, self.scale, overrides, patch)
                where = f"protocol {name} (defaults)"
            else:
                raise ConfigError(str(e)) from None
        except ValueError as e:  # a malformed override or config
            raise ConfigError(f"{where}: {e}") from None
        validate.check_values(out, where)
        return out


def load_config_dict(name: str, scale: str, overrides: list[str], patch: Any) -> dict:
    """A config without a file: ``patch`` at ``scale`` with the overrides applied, named ``name``."""
    cfg = resolve_scale(patch or {}, scale)
    if overrides:
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    out = OmegaConf.to_container(cfg, resolve=True)
    out.setdefault("name", name)
    return out
