"""CUDA paths that never run on the CPU: timer synchronisation, the allocator and
NVML memory readings, nccl process groups, bf16 and compiled sampling. Run by
``benchmarks/gpu_check.sh``; skipped without a GPU."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.gpu
ROOT = Path(__file__).resolve().parents[2]


def test_cuda_timing_needs_synchronize():
    """Kernel launches return at once; only a synchronised timer sees the work (the benchmarks' timers
    synchronise). Measured against CUDA events, which time the device itself."""
    a = torch.randn(4096, 4096, device="cuda")
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    t0 = time.perf_counter()
    start.record()
    for _ in range(20):
        a = a @ a / 64
    end.record()
    torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    assert wall >= 0.8 * start.elapsed_time(end) / 1000


def test_allocator_and_nvml_memory_agree_in_order_of_magnitude():
    pynvml = pytest.importorskip("pynvml")
    pynvml.nvmlInit()
    handle = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
    before = pynvml.nvmlDeviceGetMemoryInfo(handle).used
    torch.cuda.reset_peak_memory_stats()
    x = torch.empty(256 * 2**20, dtype=torch.uint8, device="cuda")  # 256 MiB
    peak = torch.cuda.max_memory_allocated()
    after = pynvml.nvmlDeviceGetMemoryInfo(handle).used
    assert peak >= 256 * 2**20
    assert after - before >= 0  # NVML counts the caching allocator's reservation (>= what tensors hold)
    del x


def test_nccl_one_process_all_reduce(tmp_path):
    script = tmp_path / "nccl.py"
    script.write_text("import torch, torch.distributed as dist\n"
                      "dist.init_process_group('nccl')\n"
                      "t = torch.ones(4, device='cuda') * (dist.get_rank() + 1)\n"
                      "dist.all_reduce(t)\n"
                      "n = dist.get_world_size()\n"
                      "assert torch.allclose(t, torch.full_like(t, n * (n + 1) / 2)), t\n"
                      "dist.destroy_process_group()\n")
    n = min(2, torch.cuda.device_count())
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
                          str(script)], capture_output=True, text=True, timeout=300, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stderr[-3000:]


def test_mld_bf16_sampling_close_to_fp32_on_cuda():
    from evaluators.core.config import load_config
    from methods import get_method

    cfg = load_config("method", "mld", "smoke")
    cfg["render"] = {"n": 0}
    m = get_method("mld")(cfg, device="cuda", seed=0)
    lens = [40, 32]
    torch.manual_seed(0)
    ref = m.generate(["a person walks forward", "a person jumps"], lens)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        torch.manual_seed(0)
        low = m.generate(["a person walks forward", "a person jumps"], lens)
    ref, low = torch.as_tensor(ref).float().cpu(), torch.as_tensor(low).float().cpu()
    assert torch.isfinite(low).all()
    assert (low - ref).abs().max() <= 0.1 * ref.abs().max() + 1e-3
