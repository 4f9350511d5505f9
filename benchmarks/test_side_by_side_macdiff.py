"""Side by side with the authors' MacDiff: the pretraining step and one denoising-decoder step.

Optional: runs only when ``MOTIONREPRO_OFFICIAL_MACDIFF`` points at a local checkout of the
authors' MacDiff (``Wenrui-Shen/MacDiff`` at 692888f; skipped with the reason otherwise; the
authors' code is never vendored). Both sides hold the same random weights at the paper shapes
of the NTU-60 xsub pretraining config (:mod:`benchmarks.official_macdiff`) and are checked to
compute the same thing before anything is timed: the same loss and gradients on the same
inputs and noise (training), the same decoder output (denoising). Calls alternate in one
process (:func:`benchmarks.alternate.alternate`) at the torch thread count set by
``MOTIONREPRO_SIDE_BY_SIDE_THREADS`` (default 1, as the published ratios), and each workload
writes ``leaderboards/benchmarks/side_by_side/<cpu>/<workload>.json`` (ratio = official median /
suite median; ``distorted`` when the run's CPU/wall shows another process took the cores).

The authors' code has no sampling or reconstruction call at 692888f, so sampling is compared
only through the network a sampler calls at every step (``macdiff_denoise_*``, no target).

Run: ``MOTIONREPRO_OFFICIAL_MACDIFF=/path/to/MacDiff OMP_NUM_THREADS=1
pytest benchmarks/test_side_by_side_macdiff.py -s``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from benchmarks.alternate import Alternation, alternate, record_side_by_side, side_by_side_threads
from benchmarks.official_macdiff import Pair, official_root, same_denoise, same_loss

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "leaderboards" / "benchmarks" / "side_by_side"

# workload -> (kind, batch, target ratio from the speed issue, repeats)
WORKLOADS = {
    "macdiff_train_b32": ("train", 32, 1.2, 3),   # official per-GPU batch 32 (pretrain_madiff.yaml)
    "macdiff_denoise_b32": ("denoise", 32, None, 3),
    "macdiff_denoise_b1": ("denoise", 1, None, 9),  # ours: more rounds, a call takes a fraction of a second
}


def write_record(workload: str, batch: int, target: float | None, alt: Alternation, **extra) -> dict:
    """The JSON row speed.md renders (one file per workload and machine), plus the equivalence figures."""
    return record_side_by_side(OUT, workload, "macdiff", batch, target, alt, **extra)


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
    pair = Pair(root, batch)
    if kind == "train":
        same = same_loss(pair)
        off_loss, suite_loss = same["loss"]
        assert abs(off_loss - suite_loss) <= 1e-6 * abs(off_loss), same  # same t, eps, masks: the same loss
        assert same["max_rel_grad_gap"] < 1e-4, same
        contenders = {"official": pair.official_train_step(), "suite": pair.suite_train_step()}
        extra = {"equivalence": {"batch": 4, **same}, "suite_path": "MacDiff.pretrain step (AdamW, fp32)"}
    else:
        gap = same_denoise(pair)
        assert gap < 1e-4, f"the two decoders do not give the same output (max |diff| {gap:.3g})"
        d = pair.denoise_inputs()
        contenders = {"official": pair.official_denoise(d), "suite": pair.suite_denoise(d)}
        extra = {"equivalence": {"max_abs_output_gap": gap},
                 "note": "one denoising-decoder forward; the authors' code has no sampler to time"}
    alt = alternate(contenders, repeats=repeats, threads=torch.get_num_threads())
    print(json.dumps(write_record(workload, batch, target, alt, **extra)))
