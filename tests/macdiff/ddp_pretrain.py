"""MacDiff pretraining as a script (also under ``torchrun``): tiny model, tiny data.

Each rank saves its final weights and the train state to ``OUT.rank<r>.pt``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import make_tiny  # noqa: E402

from evaluators.core import distributed as D  # noqa: E402
from evaluators.core.config import load_config  # noqa: E402
from methods import get_method  # noqa: E402

TINY = dict(dim_feat=32, depth=2, decoder_depth=2, num_heads=4, num_frames=16, dim_t_embed=16)
IDENTITY_NORM = {"input_mean": [0.0, 0.0, 0.0], "input_var": [1.0, 1.0, 1.0]}  # the test runs on raw coordinates


def build(steps: int, ckpt_dir: str | None, stop_after: int | None = None, seed: int = 0):
    """The tiny MacDiff, initialised (not trained)."""
    cfg = {"model": TINY, "pretrain": {"total_steps": steps, "batch_size": 8, "warmup_epochs": 0.2,
                                       "min_lr_epochs": 0, "ckpt_dir": ckpt_dir, "ckpt_every": 2,
                                       "stop_after": stop_after}}
    return get_method("macdiff")(load_config("method", "macdiff", "paper", patch={**IDENTITY_NORM, **cfg}), seed=seed)


def run(steps: int, ckpt_dir: str | None, stop_after: int | None = None, seed: int = 0):
    m = build(steps, ckpt_dir, stop_after, seed)
    state = m.pretrain(make_tiny(n_train=24, n_test=6))
    return m, state


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--out", required=True)
    ap.add_argument("--ckpt", default=None)
    a = ap.parse_args()
    m, state = run(a.steps, a.ckpt)
    torch.save({"weights": m.state_dict(), "step": state.step, "history": state.history,
                "world_size": D.world_size()}, f"{a.out}.rank{D.rank()}.pt")
    D.shutdown_distributed()
