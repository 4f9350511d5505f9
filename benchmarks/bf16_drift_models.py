"""The smoke model each bf16-drift measurement reads, at a chosen sampler precision.

For one text-to-motion method: its ``synth-t2m`` experiment resolved at smoke scale as the
runner resolves it (``Setup``), a finished run's ``method.pt`` reused when its recorded configs
match today's up to sampling-only keys (``INFERENCE_ONLY``), else a model trained through the
runner's calls, then built twice from the same weights, once per precision. Kept apart from
:mod:`benchmarks.bf16_drift` (the measurement, its JSON and the command line) because finding
or making the weights is a separate question from measuring them.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.settings import precision_keys
from evaluators.core.seeding import seed_everything
from evaluators.datasets import load_dataset
from evaluators.records import read_records
from evaluators.runner.run import build_plan, compose, experiment_name

log = logging.getLogger(__name__)

DATASET = "synth-t2m"  # experiment alias (configs/experiment/<method>_synth-t2m.yaml)
# where each text-to-motion generator reads its sampler precision (fp32 | bf16): its class's precision_key
PRECISION_KEYS: dict[str, tuple[str, ...]] = precision_keys(task="text2motion")
# method-config keys that only change sampling, never the trained weights: a finished run whose
# config differs from today's in these alone (e.g. it predates the key) still has today's weights;
# the sampler group that holds ``precision`` also holds its ``compile`` switch
INFERENCE_ONLY: dict[str, tuple[str, ...]] = {
    m: tuple(".".join((*key[:-1], leaf)) for leaf in ("precision", "compile")) for m, key in PRECISION_KEYS.items()}
# protocol settings of the drift run (ours): no AITS (timing is in the benchmark files), no step sweep,
# no GT row (it does not depend on the generator's precision); the rest is the smoke protocol config
PROTOCOL_PATCH: dict[str, Any] = {"aits": {"enabled": False}, "steps_sweep": None, "real_row": False}


# -- configuration -----------------------------------------------------------------------------------
def with_precision(method: str, mcfg: dict, precision: str) -> dict:
    """A deep copy of ``mcfg`` with the method's sampler precision set to ``precision``."""
    if method not in PRECISION_KEYS:
        raise ValueError(f"bf16_drift: no precision setting known for method {method!r} "
                         f"(known: {sorted(PRECISION_KEYS)})")
    if precision not in ("fp32", "bf16"):
        raise ValueError(f"bf16_drift: precision must be fp32 or bf16, got {precision!r}")
    out = copy.deepcopy(dict(mcfg))
    node = out
    *parents, leaf = PRECISION_KEYS[method]
    for k in parents:
        node[k] = dict(node.get(k) or {})
        node = node[k]
    node[leaf] = precision
    return out


@dataclass
class Setup:
    """One method's smoke run on synth_t2m as the runner resolves it."""

    method: str
    cls: type
    method_cfg: dict
    dataset_cfg: dict
    protocol_cfg: dict
    seed: int
    scale: str
    workdir: Path
    experiment: str
    extra: dict = field(default_factory=dict)


def resolve(method: str, runs_dir: Path, seed: int = 0, repetitions: int | None = None) -> Setup:
    """The method, dataset and text2motion configs of ``METHOD_synth-t2m`` at smoke scale (``plan``)."""

    exp = experiment_name(method, DATASET)
    cfg = compose([f"+experiment={exp}", "scale=smoke", f"seed={seed}"])
    p = build_plan(cfg, [])
    if len(p.datasets) != 1 or "text2motion" not in p.datasets[0].protocol_cfgs:
        raise ValueError(f"bf16_drift: experiment {exp} must run text2motion on one dataset")
    ds = p.datasets[0]
    pcfg = copy.deepcopy(ds.protocol_cfgs["text2motion"])
    for k, v in PROTOCOL_PATCH.items():
        pcfg[k] = {**(pcfg.get(k) or {}), **v} if isinstance(v, dict) else v
    if repetitions is not None:
        pcfg["repetitions"] = int(repetitions)
    # the runner's work folder (named by the settings' hash), under this benchmark's runs_dir
    return Setup(method, p.method_cls, dict(ds.method_cfg), ds.dataset_cfg, pcfg, seed, "smoke",
                 runs_dir / "work" / method / ds.name / ds.workdir.name, exp)


# -- checkpoints: reuse a finished smoke run, else train one ---------------------------------------------
def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dict -> ``{dotted.key: leaf}`` (an empty dict is a leaf)."""
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(flatten(v, f"{prefix}{k}.") if isinstance(v, dict) and v else {f"{prefix}{k}": v})
    return out


def config_differences(old: dict, new: dict) -> list[str]:
    """Dotted keys whose value differs between two configs (a key missing on one side counts)."""
    a, b = flatten(old), flatten(new)
    missing = object()
    return sorted(k for k in set(a) | set(b) if a.get(k, missing) != b.get(k, missing))


def find_checkpoint(s: Setup, runs_dir: Path) -> dict | None:
    """A finished smoke run's ``method.pt`` for this setup, or None.

    1. ``s.workdir/method.pt`` (the runner's folder for today's config hash);
    2. else a sibling ``smoke_s<seed>_*`` folder whose run record (under ``runs_dir/records``) used
       the same dataset config and a method config that differs from today's only in
       ``INFERENCE_ONLY`` keys (a run made before such a key existed trained the same weights).
    """
    exact = s.workdir / "method.pt"
    if exact.is_file():
        return {"path": str(exact), "match": "config hash"}

    recs = read_records(runs_dir / "records", skip_invalid=True) if (runs_dir / "records").is_dir() else []
    allowed = set(INFERENCE_ONLY.get(s.method, ()))
    parent = s.workdir.parent
    for d in sorted(parent.glob(f"smoke_s{s.seed}_*")) if parent.is_dir() else []:
        ck = d / "method.pt"
        if not ck.is_file():
            continue
        tail = f"work/{s.method}/{s.dataset_cfg['name']}/{d.name}/method.pt"
        for r in recs:
            if (r.get("method"), r.get("scale"), r.get("seed")) != (s.method, "smoke", s.seed):
                continue
            if not str((r.get("extra") or {}).get("checkpoint", "")).endswith(tail):
                continue
            conf = r.get("config") or {}
            ddiff = config_differences(conf.get("dataset") or {}, s.dataset_cfg)
            mdiff = config_differences(conf.get("method") or {}, s.method_cfg)
            if not ddiff and set(mdiff) <= allowed:
                return {"path": str(ck), "match": "run record config", "record_git": r.get("git"),
                        "config_differences": mdiff}
            log.info("%s: not reused (method config differs in %s, dataset config in %s)", ck,
                     [k for k in mdiff if k not in allowed], ddiff)
            break
    return None


def train(s: Setup, device: str) -> dict:
    """Train at smoke scale as ``evaluators.runner.run.run_experiment`` does (seed, load the data, build,
    ``fit``) and save ``workdir/method.pt``."""

    seed_everything(s.seed)
    data = load_dataset(s.dataset_cfg)
    method = s.cls(dict(s.method_cfg), device=device, seed=s.seed, workdir=s.workdir)
    t0 = time.perf_counter()
    method.fit(data)
    path = s.workdir / "method.pt"
    method.save_checkpoint(path)
    return {"path": str(path), "match": "trained by this run", "train_wall_s": time.perf_counter() - t0}


def build(s: Setup, precision: str, checkpoint: str, device: str):
    """The method at ``precision`` with the checkpoint's weights (strict load)."""
    m = s.cls(with_precision(s.method, s.method_cfg, precision), device=device, seed=s.seed, workdir=s.workdir)
    m.load_checkpoint(checkpoint)
    got = (m.sampler_settings() or {}).get("precision") if hasattr(m, "sampler_settings") else None
    if got != precision:
        raise RuntimeError(f"{s.method}: asked for sampler precision {precision}, its sampler_settings() say "
                           f"{got!r}; does this method read {'.'.join(PRECISION_KEYS[s.method])}?")
    return m
