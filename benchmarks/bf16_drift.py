"""bf16 quality drift of the text-to-motion generators on synth_t2m.

``python -m benchmarks.bf16_drift --out leaderboards/benchmarks/bf16-drift.json
[--methods mld momask hgm3] [--runs-dir DIR] [--repetitions R] [--seed S] [--device cpu]``

For each method: the smoke-scale model of its ``synth-t2m`` experiment (the demo's), taken from
``DIR/work/METHOD/synth_t2m/<tag>/method.pt`` (the runner's layout, ``evaluators/runner/run.py``) when
a finished run left one there, else trained through the same calls the runner makes and saved
there. Then the text2motion protocol (``evaluators/protocols/text2motion.py``, its own metric
functions) runs twice on those weights, once per sampler precision (``PRECISION_KEYS``), each
after ``seed_everything(seed)``, with one evaluator object, so both passes see the same
captions, crops, batches and generation noise. The JSON holds, per method and metric, the fp32
and bf16 values, their difference, the fp32 between-repetition std (is the drift inside the
evaluation noise?), the per-repetition values, a raw-output check (the bf16 pass really differs
from fp32 on one seeded batch, and fp32 repeats bit for bit), and the machine, torch and commit.

SYNTHETIC data, SMOKE-scale models: the numbers say how far bf16 sampling moves the protocol's
metrics on one trained model; they are not comparable with any paper number
(``leaderboards/speed.py`` renders them under that label).

The model side (resolve the experiment, reuse or train the weights, build at a precision) is in
:mod:`benchmarks.bf16_drift_models`; this module measures, writes the JSON and parses the command line.
"""

from __future__ import annotations

# isort: off
import evaluators  # noqa: F401  (thread defaults before torch: evaluators/core/threads.py)
# isort: on

import argparse
import json
import logging
import os
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.bf16_drift_models import (
    DATASET,
    INFERENCE_ONLY,
    PRECISION_KEYS,
    PROTOCOL_PATCH,
    Setup,
    build,
    config_differences,
    find_checkpoint,
    flatten,
    resolve,
    train,
    with_precision,
)
from evaluators.core.io import atomic_write_text
from evaluators.core.seeding import seed_everything
from evaluators.datasets import load_dataset
from evaluators.networks.t2m_data import t2m_split
from evaluators.protocols import RunContext, get_protocol
from evaluators.protocols import _t2m_helpers as H
from evaluators.protocols._t2m_helpers import call_generate
from evaluators.records import _jsonable, git_info, hardware_info
from evaluators.runner.run import load_plugins
from leaderboards.speed_drift import DRIFT_KIND as KIND  # speed.md renders files of this kind
from leaderboards.speed_drift import DRIFT_TITLE

log = logging.getLogger("benchmarks.bf16_drift")

SCHEMA = 1
# the model side (resolve, reuse or train, build at a precision) lives in bf16_drift_models.py; its names
# stay importable from here, where the drift tests and callers look for them
__all__ = ["DATASET", "INFERENCE_ONLY", "PRECISION_KEYS", "PROTOCOL_PATCH", "Setup", "build", "check_batch", "compare",
           "config_differences", "evaluate", "find_checkpoint", "main", "measure_method", "measure_pair",
           "raw_output_check", "resolve", "train", "with_precision"]
TABLE_METRICS = ("fid", "r_precision_top1", "r_precision_top2", "r_precision_top3", "mm_dist")
LABEL = ("SYNTHETIC data (synth_t2m), SMOKE-scale models trained here: the drift of bf16 sampling against fp32 "
         "on the same weights and seeds; not comparable with any paper number")
# -- the measurement -------------------------------------------------------------------------------------
def raw_output_check(models: dict[str, Any], captions: list, lengths: list[int], seed: int) -> dict:
    """Raw ``generate`` outputs of one seeded batch: fp32 twice and bf16 once.

    Returns the max |fp32 - fp32 again| (0 when sampling is deterministic for a seed) and the max
    and relative |bf16 - fp32|; a bf16 output equal to fp32 means the precision switch did nothing.
    """

    codes = {}

    def gen(m, key):
        seed_everything(seed)
        out = call_generate(m, list(captions), list(lengths), None)
        fn = getattr(m, "last_generation_codes", None)  # token generators (MoMask, HGM3): [B, N, Q], -1 = pad
        c = fn() if callable(fn) else None
        codes[key] = None if c is None else torch.as_tensor(c).clone()
        return out

    a, a2, b = gen(models["fp32"], "fp32"), gen(models["fp32"], "fp32_again"), gen(models["bf16"], "bf16")
    scale = float(a.abs().max()) or 1.0
    out = {"batch": len(captions), "fp32_repeat_max_abs_diff": float((a - a2).abs().max()),
           "bf16_max_abs_diff": float((b - a).abs().max()), "bf16_rel_max_abs_diff": float((b - a).abs().max()) / scale,
           "bf16_mean_abs_diff": float((b - a).abs().mean())}
    if codes.get("fp32") is not None and codes.get("bf16") is not None and codes["fp32"].shape == codes["bf16"].shape:
        valid = codes["fp32"] >= 0
        out["bf16_token_mismatch_fraction"] = float((codes["fp32"] != codes["bf16"])[valid].float().mean())
    out["deterministic"] = out["fp32_repeat_max_abs_diff"] == 0.0
    out["precision_switched"] = out["bf16_max_abs_diff"] > 0.0
    return out


def check_batch(data: Any, n: int = 16, unit: int = 4, max_len: int = 196) -> tuple[list[str], list[int]]:
    """The first ``n`` test captions with their motions' lengths (multiples of ``unit``)."""

    split = t2m_split(data, "test")
    n = min(n, len(split))
    lengths = [max(unit, min(len(split.motions[i]), max_len) // unit * unit) for i in range(n)]
    return [split.captions[i][0] for i in range(n)], lengths


def evaluate(method, data, pcfg: dict, ctx, seed: int):
    """One text2motion protocol run (seeded like the runner); its main (generated, default-steps) result."""

    seed_everything(seed)
    t0 = time.perf_counter()
    results = get_protocol("text2motion").fn(method, data, pcfg, ctx)
    res = next(r for r in (results if isinstance(results, list) else [results]) if r.variant == "")
    return res, time.perf_counter() - t0


def compare(per_rep: dict[str, list[dict[str, float]]], metrics: dict[str, dict[str, dict]]) -> dict[str, dict]:
    """Per metric: fp32, bf16 (protocol means), diff = bf16 - fp32, fp32 between-repetition std (ddof 1),
    |diff| / std, the protocol's ci95s and the paired per-repetition differences."""
    out = {}
    for k in metrics["fp32"]:
        if k not in metrics["bf16"]:
            continue
        a = np.array([r[k] for r in per_rep["fp32"]], np.float64)
        b = np.array([r[k] for r in per_rep["bf16"]], np.float64)
        fa, fb = float(metrics["fp32"][k]["value"]), float(metrics["bf16"][k]["value"])
        std = float(a.std(ddof=1)) if a.size > 1 else None
        paired = b - a
        out[k] = {"fp32": fa, "bf16": fb, "diff": fb - fa,
                  "fp32_std": std, "bf16_std": float(b.std(ddof=1)) if b.size > 1 else None,
                  "abs_diff_over_fp32_std": abs(fb - fa) / std if std else None,
                  "fp32_ci95": metrics["fp32"][k].get("ci95"), "bf16_ci95": metrics["bf16"][k].get("ci95"),
                  "paired_diff_std": float(paired.std(ddof=1)) if paired.size > 1 else None,
                  "per_repetition": {"fp32": a.tolist(), "bf16": b.tolist()}}
    return out


def measure_pair(models: dict[str, Any], data: Any, pcfg: dict, ctx, seed: int) -> dict:
    """Raw-output check, then the protocol at fp32 and at bf16 on the same data, evaluator and seed."""

    if "t2m_evaluator" not in (ctx.extra or {}):  # one evaluator object for both passes

        seed_everything(seed)
        ctx.extra = {**(ctx.extra or {}), "t2m_evaluator": H.build_evaluator(data, pcfg.get("evaluator") or {}, ctx)}
    ev = ctx.extra["t2m_evaluator"]
    caps, lens = check_batch(data, unit=ev.cfg.unit_length, max_len=ev.cfg.max_motion_length)
    raw = raw_output_check(models, caps, lens, seed)
    if not raw["precision_switched"]:
        raise RuntimeError(f"bf16 and fp32 gave identical raw outputs on one seeded batch of {len(caps)}: the precision "
                           "setting had no effect, so a zero drift would be meaningless")
    res, wall, per_rep, metrics, sampler = {}, {}, {}, {}, {}
    for prec in ("fp32", "bf16"):
        res[prec], wall[prec] = evaluate(models[prec], data, pcfg, ctx, seed)
        per_rep[prec] = res[prec].extra["per_repetition"]
        metrics[prec] = res[prec].metrics
        sampler[prec] = res[prec].extra.get("sampler")
    return {"metrics": compare(per_rep, metrics), "raw_output_check": raw, "sampler": sampler,
            "protocol_wall_s": wall, "n_samples": res["fp32"].n_samples,
            "evaluator": res["fp32"].extra.get("evaluator")}


def measure_method(method: str, runs_dir: Path, seed: int, device: str, repetitions: int | None,
                   evaluators_cache: dict) -> dict:
    """Resolve, reuse or train, build both precisions, measure."""

    t0 = time.perf_counter()
    s = resolve(method, runs_dir, seed, repetitions)
    seed_everything(seed)
    data = load_dataset(s.dataset_cfg)
    ck = find_checkpoint(s, runs_dir)
    models = None
    if ck is not None:
        try:
            models = {p: build(s, p, ck["path"], device) for p in ("fp32", "bf16")}
        except (ValueError, KeyError, FileNotFoundError, RuntimeError) as e:
            log.warning("%s: %s does not load with today's code (%s); training a fresh smoke model", method,
                        ck["path"], str(e).splitlines()[0] if str(e) else type(e).__name__)
            ck = {**ck, "load_error": str(e).splitlines()[0] if str(e) else type(e).__name__}
            models = None
    if models is None:
        failed = ck
        ck = train(s, device)
        if failed:
            ck["not_reused"] = failed
        models = {p: build(s, p, ck["path"], device) for p in ("fp32", "bf16")}
    ekey = (s.dataset_cfg["name"], repr(sorted(flatten(s.protocol_cfg.get("evaluator") or {}).items())))
    ctx = RunContext(seed=seed, device=device, workdir=s.workdir, data_source=s.dataset_cfg["source"], scale=s.scale,
                     extra={"dataset_cfg": s.dataset_cfg, "method_cfg": s.method_cfg,
                            **({"t2m_evaluator": evaluators_cache[ekey]} if ekey in evaluators_cache else {})})
    out = measure_pair(models, data, s.protocol_cfg, ctx, seed)
    evaluators_cache[ekey] = ctx.extra["t2m_evaluator"]
    out.update({"experiment": s.experiment, "dataset": s.dataset_cfg["name"], "data": s.dataset_cfg["source"],
                "scale": s.scale, "seed": seed, "checkpoint": ck, "precision_key": ".".join(PRECISION_KEYS[method]),
                "protocol_cfg": s.protocol_cfg, "wall_s": time.perf_counter() - t0})
    return out


def environment() -> dict:
    """Machine, torch, threads, commit, load: what a reader needs to place the numbers."""

    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
    return {"git": git_info(), "hardware": hardware_info(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "niceness": os.nice(0), "loadavg_start": load,
            "cpu_bf16": "avx512_bf16" in _cpu_flags() or "amx_bf16" in _cpu_flags()}


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            return next((ln for ln in fh if ln.startswith("flags")), "")
    except OSError:
        return ""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bf16_drift", description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True, help="JSON to write (e.g. leaderboards/benchmarks/bf16-drift.json)")
    ap.add_argument("--methods", nargs="+", default=sorted(PRECISION_KEYS), choices=sorted(PRECISION_KEYS))
    ap.add_argument("--runs-dir", type=Path, default=Path("runs"),
                    help="runs folder of finished smoke runs to reuse (work/ and records/, e.g. a demo's); fresh "
                         "models are trained into it")
    ap.add_argument("--repetitions", type=int, default=10, help="protocol repetitions per precision (ours: 10)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s %(name)s] %(message)s")

    load_plugins()
    started = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    t0 = time.perf_counter()
    doc = {"kind": KIND, "schema": SCHEMA, "title": DRIFT_TITLE,
           "label": LABEL, "data": "synthetic", "scale": "smoke", "dataset": "synth_t2m",
           "command": shlex.join(["python", "-m", "benchmarks.bf16_drift", *argv]), "started": started,
           "repetitions": args.repetitions, "seed": args.seed, "device": args.device,
           "table_metrics": list(TABLE_METRICS), **environment(), "methods": {}}
    cache: dict = {}
    for m in args.methods:
        log.info("bf16 drift: %s", m)
        doc["methods"][m] = measure_method(m, args.runs_dir, args.seed, args.device, args.repetitions, cache)
    doc["wall_s"] = time.perf_counter() - t0
    try:
        doc["loadavg_end"] = list(os.getloadavg())
    except OSError:
        pass

    atomic_write_text(args.out, json.dumps(_jsonable(doc), indent=1, sort_keys=True) + "\n")
    for m, r in doc["methods"].items():
        print(m, {k: f"{v['fp32']:.4g} -> {v['bf16']:.4g} (fp32 std {v['fp32_std']})"
                  for k, v in r["metrics"].items() if k in TABLE_METRICS})
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
