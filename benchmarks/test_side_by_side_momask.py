"""Side by side with the authors' MoMask: sampling and the masked-transformer training step.

Optional: runs only when ``MOTIONREPRO_OFFICIAL_MOMASK`` points at a local checkout of
EricGuo5513/momask-codes (skipped with the reason otherwise; the authors' code is never vendored).
Both sides hold the same random weights at paper shapes (:mod:`benchmarks.official_momask`); calls
alternate in one process (:func:`benchmarks.alternate.alternate`) at the thread count torch runs
set by ``MOTIONREPRO_SIDE_BY_SIDE_THREADS`` (default 1, as the published ratios), and each workload writes
``leaderboards/benchmarks/side_by_side/<cpu>/<workload>.json`` (ratio = official median / suite median;
``distorted`` when the run's CPU/wall shows another process took the cores). Sampling is timed for
the suite's default (eager) path and, in the same alternation, for ``sampler.compile: true``
(``<workload>_compile``; its ``first_call_s`` holds the one-time compilation), for
``sampler.fused_encoder: true`` (``<workload>_fused_encoder``; no compilation, nothing to amortise) and
for ``sampler.onednn_linear: true`` (``<workload>_onednn``: the encoder's products on oneDNN; its
``first_call_s`` includes packing the weights; its floor replays its own oneDNN products). Every workload with a
target also stores the profiles of both sides (``profile``, :func:`benchmarks.profiling.top_ops`) and
the time of the suite's dense products replayed alone (``floor``, :mod:`benchmarks.floor`): what
explains a miss, and the best ratio any implementation of the same math could reach. A run on a
loaded machine adds them to a quiet file without replacing its timing
(:func:`benchmarks.alternate.write_side_by_side`).

Run: ``MOTIONREPRO_OFFICIAL_MOMASK=/path/to/momask-codes OMP_NUM_THREADS=1
pytest benchmarks/test_side_by_side_momask.py -s``. ``MOTIONREPRO_SIDE_BY_SIDE_AS_RUN=1`` adds the
training step as the authors' script runs it (anomaly detection on), which has no target.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from benchmarks import floor as fl
from benchmarks.alternate import alternate, record_side_by_side, side_by_side_threads
from benchmarks.official_momask import Pair, official_root, same_logits
from benchmarks.profiling import top_ops
from methods.common import onednn_linear

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "leaderboards" / "benchmarks" / "side_by_side"

# workload -> (kind, batch, target ratio official/suite median to reach (ours: the goal set per workload), repeats)
WORKLOADS = {
    "momask_sample_b1": ("sample", 1, 1.5, 9),
    "momask_sample_b32": ("sample", 32, 1.2, 3),
    "momask_train_b64": ("train", 64, 1.2, 3),
    "momask_train_b64_as_run": ("train_as_run", 64, None, 3),
}


def write_record(workload: str, batch: int, target: float | None, alt, official: str = "official",
                 suite: str = "suite", **extra) -> dict:
    """The JSON row speed.md renders (one file per workload and machine); ``extra``: evidence (profile, floor)."""
    return record_side_by_side(OUT, workload, "momask", batch, target, alt, official, suite, **extra)


@pytest.fixture(scope="module")
def root():
    r, why = official_root()
    if r is None:
        pytest.skip(why)
    with side_by_side_threads():
        yield r


@pytest.mark.parametrize("workload", list(WORKLOADS))
def test_side_by_side(root, workload):
    kind, batch, target, repeats = WORKLOADS[workload]
    if kind == "train_as_run" and os.environ.get("MOTIONREPRO_SIDE_BY_SIDE_AS_RUN") != "1":
        pytest.skip("as-run training step (anomaly detection on) only with MOTIONREPRO_SIDE_BY_SIDE_AS_RUN=1")
    pair = Pair(root, batch)
    err = same_logits(pair)
    assert err < 1e-4, f"the two sides do not compute the same guided logits (max |diff| {err:.3g})"
    onednn = onednn_linear.unavailable() is None
    if onednn:
        with onednn_linear.LinearMode():
            err = same_logits(pair)
        assert err < 1e-4, f"on oneDNN's linear the suite's guided logits differ (max |diff| {err:.3g})"
    if kind == "sample":  # the default eager path and the opt-in compiled and fused ones, in the same alternation
        contenders = {"official": pair.official_sample, "suite": pair.suite_sample,
                      "suite_compile": pair.suite_sample_compiled, "suite_fused": pair.suite_sample_fused}
        if onednn:
            contenders["suite_onednn"] = pair.suite_sample_onednn
    else:
        contenders = {"official": pair.official_train_step(anomaly=kind == "train_as_run"),
                      "suite": pair.suite_train_step()}
        if kind == "train" and onednn:
            contenders["suite_onednn"] = pair.suite_train_step(onednn=True)
    alt = alternate(contenders, repeats=repeats, threads=torch.get_num_threads())
    extra = {} if target is None else evidence(pair, contenders["official"], contenders["suite"], repeats)
    print(json.dumps(write_record(workload, batch, target, alt, **extra)))
    for opt_in, suffix in (("suite_compile", "compile"), ("suite_fused", "fused_encoder")):
        if opt_in in contenders:  # the same math: the same floor (its suite_* fields are the default path's)
            floor = {k: v for k, v in extra["floor"].items() if not k.startswith("suite")}
            print(json.dumps(write_record(f"{workload}_{suffix}", batch, target, alt, suite=opt_in, floor=floor)))
    if "suite_onednn" in contenders:  # other kernels: its own profile and floor (oneDNN's packed products)
        own = evidence(pair, contenders["official"], contenders["suite_onednn"], repeats)
        own["profile"] = {"suite": own["profile"]["suite"]}
        print(json.dumps(write_record(f"{workload}_onednn", batch, target, alt, suite="suite_onednn", **own)))


def evidence(pair: Pair, official, suite, repeats: int) -> dict:
    """Where each side's time goes (one profiled call each) and the floor of the suite's products."""
    modules = list(pair.suite.components().values())
    return {"profile": {"suite": top_ops(suite), "official": top_ops(official)},
            "floor": fl.measure({"official": official, "suite": suite}, record=suite, modules=modules,
                                repeats=repeats, threads=torch.get_num_threads())}
