"""The published pipeline-check records are what the code at HEAD produces: the cheapest published
chains are rerun with the demo's command and compared with ``leaderboards/results/`` field by field,
wall-clock and machine fields aside. Every model is trained by the code at HEAD: the run's cache is
the suite's model cache, keyed by the code version (``tests/_model_cache.py``), so the evaluator the
in-process tests share (the ``smoke_t2m`` fixture, trained with this code at the published thread
count) is loaded instead of trained again, and nothing older code trained is ever reused. The demo runs
with ``--records-only``: the leaderboards it regenerates and the gallery it exports after the chains
are rendered from the records, never read back into them, so they are not made here (about 15
CPU-s of GIFs and plots); the records, every field of which is compared, are the same.

The chains rerun, and why they cover what can drift:

- MoMask, through the text-to-motion evaluator: the evaluator's training is where a change of
  numbers last slipped in unnoticed, and it carries synth_t2m, the HumanML3D loader, the
  text2motion and reconstruction protocols and the generation metrics.
- heatmap_baseline, the one pose chain: it runs every piece the two pose methods share (the
  synth_coco generator, the top-down crops and transforms of ``evaluators/datasets/pose2d``, the
  HRNet backbone, heatmap head and loss of ``methods/common/hrnet.py``, the training loop of
  ``methods/common/pose_estimation.py``, the coco_ap protocol's OKS matching with ground-truth and
  detected boxes) at about half of DiffusionPose's cost (39 against 66 CPU-s, each with a cold
  synth_coco, 2 threads). DiffusionPose's published records are not rerun here: what only it adds
  is its diffusion head and the diffusers scheduler (pinned by the lock file), whose behaviour, not
  its exact numbers, its own tests check (tests/diffusionpose, tests/samplers).

Bit for bit holds only where the CPU kernels round as on the machine that published the records
(``hardware.numerics``, or for records older than it the CPU model and torch version): elsewhere the
test skips before training anything, naming both machines (``evaluators.records.bitwise_mismatch``).

A change that moves a published number fails here until the records are republished in the same
commit (``./reproduce.sh demo`` and copy ``runs/records/*.json`` over ``leaderboards/results/``).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evaluators.metrics.info import metric_info
from evaluators.records import bitwise_mismatch, read_records
from tests._model_cache import PUBLISHED_THREADS

REPO = Path(__file__).resolve().parents[2]
METHODS = ("heatmap_baseline", "momask")  # the cheapest chains that cover what can drift (docstring)
# fields that describe the machine, the moment or the folder, not the numbers
VOLATILE = {"started", "wall_s", "git", "hardware", "environment"}
VOLATILE_EXTRA_SUFFIXES = ("wall_s", "_s_per_instance", "checkpoint", "overlays", "aits", "timing", "gifs")


def _key(rec: dict) -> tuple:
    return rec["method"], rec["dataset"], rec["protocol"], rec["variant"], rec["split"]


def _stable(rec: dict) -> dict:
    out = {k: v for k, v in rec.items() if k not in VOLATILE}
    out["extra"] = {k: v for k, v in rec.get("extra", {}).items() if not k.endswith(VOLATILE_EXTRA_SUFFIXES)}
    out["metrics"] = {k: v for k, v in rec["metrics"].items() if metric_info(k).unit != "s"}  # timings
    weights = dict(out.get("provenance", {}).get("weights", {}))
    for k in ("workdir", "workdir_sha256"):
        weights.pop(k, None)
    out["provenance"] = {**out.get("provenance", {}), "weights": weights}
    return out


def _diff(a, b, path="") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b)) for d in _diff(a.get(k, "<absent>"), b.get(k, "<absent>"), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _diff(x, y, f"{path}[{i}]")]
    if isinstance(a, float) and isinstance(b, float) and math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9):
        return []
    return [] if a == b else [f"{path}: published {a!r} vs HEAD {b!r}"]


def _hardware_of_a_process(env: dict, cwd: Path) -> dict:
    """The ``hardware`` block a process started with ``env`` writes into its records."""
    code = "import json; from evaluators.records import hardware_info; print(json.dumps(hardware_info()))"
    p = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_the_cheapest_published_chains_reproduce(tmp_path, request):
    published = [r for r in read_records(REPO / "leaderboards" / "results") if r["method"] in METHODS]
    assert {r["method"] for r in published} == set(METHODS)
    # The records were published by the demo at 2 threads (its default on the 2-core machine that ran
    # it); the thread count changes the trained weights, so the rerun uses 2 whatever the caller's
    # OMP_NUM_THREADS (the evaluator's cache key includes it: a 1-thread one is never loaded here)
    threads = str(PUBLISHED_THREADS)
    env = {k: v for k, v in os.environ.items() if k != "MOTIONREPRO_RUNS"}
    env.update(PYTHONPATH=str(REPO), OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    # Bit for bit only where the CPU kernels round as on the machine that published them: across CPU
    # vendors or instruction sets the same seed trains to other weights (the published heatmap_baseline
    # AP 0.272 on an Intel Xeon came out 0.268 on an AMD EPYC, same commit and lock). Decided before
    # anything is trained, so a machine that cannot compare does not pay the rerun; asked of a process
    # configured as the rerun (numpy's BLAS reads its thread count at start-up).
    here = _hardware_of_a_process(env, tmp_path)
    reasons = {why for r in published if (why := bitwise_mismatch(r["hardware"], here))}
    if reasons:
        pytest.skip("the published records cannot be reproduced bit for bit here: " + "; ".join(sorted(reasons)))
    # the suite's model cache (keyed by the code version: nothing trained by older code is reused;
    # an evaluator's key holds the thread count and torch version): the synth_t2m evaluator the
    # smoke_t2m fixture trained (or loaded) at PUBLISHED_THREADS is loaded, not trained a second time.
    model_cache = request.getfixturevalue("model_cache")
    request.getfixturevalue("smoke_t2m")
    env.update(MOTIONREPRO_CACHE=str(model_cache))
    # the demo's default runs_dir, ``runs`` relative to where it starts (as the published run), so
    # the paths inside the records read the same; in a scratch folder, never the checkout's runs/
    p = subprocess.run([sys.executable, "-m", "evaluators.run", "--demo", "--records-only", "--only", *METHODS], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=1800)
    runs = tmp_path / "runs"
    assert p.returncode == 0, p.stderr[-4000:]
    assert not (runs / "leaderboards").exists()  # --records-only: nothing rendered that nobody compares
    fresh = {_key(r): r for r in read_records(runs / "records")}
    problems = []
    for rec in published:
        got = fresh.get(_key(rec))
        if got is None:
            problems.append(f"{_key(rec)}: published but not produced at HEAD")
            continue
        problems += [f"{_key(rec)}{d}" for d in _diff(_stable(rec), _stable(got))]
    produced = {_key(r) for r in published}
    problems += [f"{k}: produced at HEAD but not published" for k in fresh if k not in produced]
    assert not problems, "republish leaderboards/results/ in the same commit:\n" + "\n".join(problems[:40])
