"""MacDiff pretraining through the shared loop: resume after interruption, torchrun 2 processes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.macdiff.ddp_pretrain import build, run

REPO = Path(__file__).resolve().parents[2]


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_after_interruption_is_bit_identical(tmp_path):
    full, st_full = run(6, str(tmp_path / "full"))
    part, st_part = run(6, str(tmp_path / "part"), stop_after=3)  # "killed" after step 3 (checkpoint written)
    assert st_part.step == 3 and (tmp_path / "part" / "last.pt").exists()
    resumed, st_res = run(6, str(tmp_path / "part"))  # a fresh process re-run with the same arguments
    assert st_res.resumed_from == 3 and st_res.step == 6
    for comp in ("encoder", "decoder"):
        assert _same(resumed.state_dict()[comp], full.state_dict()[comp])
    assert st_res.history == st_full.history
    assert not _same(part.state_dict()["encoder"], full.state_dict()["encoder"])


@pytest.mark.slow  # two fresh interpreters importing every method package
def test_torchrun_two_processes_pretrain(tmp_path):
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    env.pop("WORLD_SIZE", None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(Path(__file__).with_name("ddp_pretrain.py")), "--steps", "4", "--out", str(out),
           "--ckpt", str(tmp_path / "ck")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = (torch.load(f"{out}.rank{r}.pt", weights_only=False) for r in (0, 1))
    assert r0["world_size"] == 2 and r0["step"] == r1["step"] == 4
    for comp in ("encoder", "decoder"):  # gradients averaged across ranks: replicas stay identical
        assert _same(r0["weights"][comp], r1["weights"][comp])
    init = build(4, None).state_dict()["encoder"]["blocks.0.attn.qkv.weight"]  # the same seed's starting point
    assert not torch.equal(r0["weights"]["encoder"]["blocks.0.attn.qkv.weight"], init)
    assert r0["history"] == r1["history"] and all(torch.isfinite(torch.tensor(r0["history"])))
    assert torch.load(tmp_path / "ck" / "last.pt", weights_only=False)["world_size"] == 2


def test_zero_pretraining_steps_is_refused_not_read_as_unset():
    """``total_steps: 0`` is an error naming the key, before any step; only null means "the epoch budget"
    (a 0 used to fall through to the paper's epochs: 1200 steps of this tiny model)."""
    from tests.macdiff.conftest import make_tiny

    m = build(0, None)
    with pytest.raises(ValueError, match=r"pretrain\.total_steps must be a whole number >= 1"):
        m.pretrain(make_tiny(n_train=24, n_test=6))
