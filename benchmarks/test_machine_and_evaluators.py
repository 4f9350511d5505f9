"""Machine ceiling and evaluator cost: matmul peak (fp32/bf16), FID on 10k×512 features."""

from __future__ import annotations

import numpy as np
import torch

from benchmarks.conftest import matmul_peak_gflops, sync


def test_matmul_peak_fp32(benchmark, device):
    n = 4096 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)

    def run():
        a @ b
        sync(device)

    benchmark.pedantic(run, rounds=10, warmup_rounds=2, iterations=1)
    benchmark.extra_info.update({"what": "fp32 matmul", "peak_gflops": 2 * n**3 / benchmark.stats.stats.min / 1e9})


def test_matmul_peak_bf16(benchmark, device):
    gf = matmul_peak_gflops(device, torch.bfloat16)
    n = 4096 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)

    def run():
        a @ b
        sync(device)

    benchmark.pedantic(run, rounds=5, warmup_rounds=1, iterations=1)
    benchmark.extra_info.update({"what": "bf16 matmul", "peak_gflops": gf})


def test_fid_10k_by_512(benchmark):
    from evaluators.metrics.generation import fid

    rng = np.random.default_rng(0)
    real = rng.standard_normal((10_000, 512))
    gen = rng.standard_normal((10_000, 512)) + 0.1
    value = benchmark.pedantic(fid, args=(real, gen), rounds=2, warmup_rounds=0, iterations=1)
    assert np.isfinite(value)
    benchmark.extra_info.update({"what": "FID 10k x 512 (scipy sqrtm)"})
