"""``benchmarks/gpu_check.sh``: its CPU dry run goes through every step it would run
on a GPU (test selection, paper-scale benchmark collection, the composed config of every DDP
run, speed.md rendering) without doing the work, and without a GPU the real run refuses
instead of pretending."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from evaluators.runner.demo import demo_experiments

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
pytestmark = pytest.mark.slow


def _env(tmp_path):
    return {**os.environ, "MOTIONREPRO_VENV": str(Path(sys.executable).parent.parent),
            "MOTIONREPRO_GPU_CHECK_OUT": str(tmp_path)}


def test_dry_run_passes_every_step(tmp_path):
    res = subprocess.run([str(SCRIPT), "--dry-run"], cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True,
                         timeout=900)
    summary = (tmp_path / "summary.txt").read_text()
    assert res.returncode == 0, summary + res.stderr[-3000:]
    for step in ("gpu_tests", "benchmarks", "ddp_mld", "ddp_momask", "ddp_hgm3", "ddp_macdiff",
                 "ddp_diffusionpose", "ddp_heatmap_baseline", "leaderboards"):
        assert f"{step}: exit 0" in summary, summary
    assert "nothing ran on a GPU" in summary
    for m in ("mld", "momask", "hgm3", "macdiff", "diffusionpose", "heatmap_baseline"):  # each composed config
        log = (tmp_path / f"ddp_{m}.log").read_text()
        assert f"\nmethod: {m}\n" in log and "--nproc_per_node=1 -m evaluators.run +experiment=" in log, log[-2000:]
        for exp in demo_experiments(m):  # every chain the demo runs (MLD: text and action)
            assert f"-m evaluators.run +experiment={exp} scale=smoke" in log, (exp, log[-2000:])
    assert "test_nccl_one_process_all_reduce" in (tmp_path / "gpu_tests.log").read_text()
    assert (tmp_path / "leaderboards" / "speed.md").stat().st_size > 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_real_run_refuses_without_cuda(tmp_path):
    res = subprocess.run([str(SCRIPT)], cwd=ROOT, env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert res.returncode == 2
    assert "no CUDA device visible" in res.stderr
