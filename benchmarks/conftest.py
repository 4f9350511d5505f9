"""Shared benchmark fixtures: scale switch, device, machine ceiling, memory and FLOP helpers.

Run: ``pytest benchmarks --benchmark-only --benchmark-json=leaderboards/benchmarks/<machine>.json``
(``--paper-scale`` for the papers' model sizes; default smoke sizes finish in minutes on a CPU).
Benchmarks are never part of the normal test run (``pytest`` collects only ``tests/``).
"""

from __future__ import annotations

import os
import platform
import resource
import time
from collections.abc import Callable
from typing import Any

import pytest
import torch


def pytest_addoption(parser):
    parser.addoption("--paper-scale", action="store_true", default=False,
                     help="benchmark the papers' model sizes instead of the smoke sizes")


def pytest_benchmark_update_machine_info(config, machine_info):
    """GPU name, driver and torch/CUDA versions beside pytest-benchmark's CPU info."""
    machine_info["torch"] = torch.__version__
    machine_info["cuda"] = torch.version.cuda
    machine_info["torch_threads"] = torch.get_num_threads()
    machine_info["cpu_count"] = os.cpu_count()
    machine_info["python_impl"] = platform.python_implementation()
    if torch.cuda.is_available():
        machine_info["gpu"] = torch.cuda.get_device_name(0)
        try:
            import pynvml

            pynvml.nvmlInit()
            machine_info["driver"] = pynvml.nvmlSystemGetDriverVersion()
        except Exception:  # noqa: BLE001 - NVML is optional information
            machine_info["driver"] = None
    machine_info["scale"] = "paper" if config.getoption("--paper-scale") else "smoke"


@pytest.fixture(scope="session")
def scale(request) -> str:
    return "paper" if request.config.getoption("--paper-scale") else "smoke"


@pytest.fixture(scope="session")
def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def sync(device: torch.device) -> None:
    """Wait for queued GPU work so the timer measures kernels, not launches."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_peak_gflops(device: torch.device, dtype: torch.dtype = torch.float32, n: int | None = None,
                       repeats: int = 5) -> float:
    """This machine's achieved dense matmul throughput (GFLOP/s, 2·n³ per product): the ceiling
    each denoiser's achieved FLOP/s is divided by, measured in the same run."""
    n = n or (8192 if device.type == "cuda" else 1024)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(2):
        a @ b
    sync(device)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


@pytest.fixture(scope="session")
def peak_gflops(device) -> dict[str, float]:
    out = {"fp32": matmul_peak_gflops(device, torch.float32)}
    try:
        out["bf16"] = matmul_peak_gflops(device, torch.bfloat16)
    except RuntimeError:
        pass
    return out


def flop_count(module: torch.nn.Module, inputs: tuple) -> tuple[float, list[str]]:
    """fvcore MACs (GMAC) of one forward, and the op types fvcore skipped."""
    from fvcore.nn import FlopCountAnalysis

    fca = FlopCountAnalysis(module, inputs)
    fca.unsupported_ops_warnings(False)
    fca.uncalled_modules_warnings(False)
    total = fca.total() / 1e9
    return total, sorted(fca.unsupported_ops().keys())


def count_flops_of_call(fn: Callable[[], Any]) -> float:
    """FLOPs (not MACs) of an arbitrary call via torch's FlopCounterMode (whole generation loops)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        fn()
    return float(fc.get_total_flops())


def memory_stats(device: torch.device) -> dict[str, float]:
    """Labelled peak memory: CPU peak RSS of the process; on CUDA the allocator and NVML numbers."""
    out = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.type == "cuda":
        out["max_memory_allocated_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
        out["max_memory_reserved_mib"] = torch.cuda.max_memory_reserved(device) / 2**20
        try:
            import pynvml

            pynvml.nvmlInit()
            h = pynvml.nvmlDeviceGetHandleByIndex(device.index or 0)
            out["nvml_used_mib"] = pynvml.nvmlDeviceGetMemoryInfo(h).used / 2**20
        except Exception:  # noqa: BLE001
            pass
    return out


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
