"""Machine ceiling and evaluator cost: matmul peak (fp32/bf16), FID on 10k×512 features."""

from __future__ import annotations

import numpy as np
import torch

from benchmarks.conftest import CpuWall, sync
from evaluators.metrics.generation import fid


def test_matmul_peak_fp32(benchmark, device, peak_gflops):
    n = 4096 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)

    def run():
        a @ b
        sync(device)

    run()
    cw = CpuWall()
    benchmark.pedantic(cw.wrap(run), rounds=10, warmup_rounds=0, iterations=1)
    # "gflops": this row's own best round; the file's one ceiling is the session's (speed.md header)
    benchmark.extra_info.update({"what": "fp32 matmul", "gflops": 2 * n**3 / benchmark.stats.stats.min / 1e9,
                                 **cw.info})


def test_matmul_peak_bf16(benchmark, device, peak_gflops):
    n = 4096 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)

    def run():
        a @ b
        sync(device)

    run()
    cw = CpuWall()
    benchmark.pedantic(cw.wrap(run), rounds=5, warmup_rounds=0, iterations=1)
    benchmark.extra_info.update({"what": "bf16 matmul", "gflops": 2 * n**3 / benchmark.stats.stats.min / 1e9,
                                 **cw.info})


def test_fid_10k_by_512(benchmark):
    rng = np.random.default_rng(0)
    real = rng.standard_normal((10_000, 512))
    gen = rng.standard_normal((10_000, 512)) + 0.1
    cw = CpuWall()
    value = benchmark.pedantic(cw.wrap(lambda: fid(real, gen)), rounds=2, warmup_rounds=0, iterations=1)
    assert np.isfinite(value)
    benchmark.extra_info.update({"what": "FID 10k x 512 (scipy sqrtm)", **cw.info})
