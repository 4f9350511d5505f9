"""Shared benchmark fixtures: scale switch, device, machine ceiling, memory and FLOP helpers.

Run: ``pytest benchmarks --benchmark-only --benchmark-json=leaderboards/benchmarks/<machine>.json``
(``--paper-scale`` for the papers' model sizes; default smoke sizes finish in minutes on a CPU).
Benchmarks are never part of the normal test run (``pytest`` collects only ``tests/``).
"""

from __future__ import annotations

import ctypes
import os
import platform
import resource
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

# isort: off
import evaluators  # noqa: F401  (OpenMP wait policy / thread count before torch: evaluators/core/threads.py)
import torch
from torch.utils.flop_counter import FlopCounterMode
# isort: on


def pytest_addoption(parser):
    parser.addoption("--paper-scale", action="store_true", default=False,
                     help="benchmark the papers' model sizes instead of the smoke sizes")
    parser.addoption("--max-steps", type=str, default=None,
                     help="cap the sampling steps actually run: N for every method or METHOD=N[,METHOD=N] "
                          "for some (paper scale on a CPU: the per-step cost, and so the fraction of peak, "
                          "does not depend on the step count; recorded in the JSON and in each capped row)")
    parser.addoption("--train-batch", type=str, default=None,
                     help="batch of the training-step benchmark: N for every method or METHOD=N[,METHOD=N] for "
                          "some, instead of the configured batch (e.g. one device's share of a multi-GPU batch "
                          "that does not fit one CPU's memory; recorded in the JSON and in each row)")
    parser.addoption("--profile-top", type=int, default=8,
                     help="sampling benchmarks with a target: top N ops by self CPU time of one extra, untimed "
                          "call (torch.profiler) in extra_info['profile']; 0 = off")


def pytest_benchmark_update_machine_info(config, machine_info):
    """GPU name, driver and torch/CUDA versions beside pytest-benchmark's CPU info."""
    machine_info["torch"] = torch.__version__
    machine_info["cuda"] = torch.version.cuda
    machine_info["torch_threads"] = torch.get_num_threads()
    machine_info["omp_wait_policy"] = os.environ.get("OMP_WAIT_POLICY")
    machine_info["cpu_count"] = os.cpu_count()
    machine_info["python_impl"] = platform.python_implementation()
    if torch.cuda.is_available():
        machine_info["gpu"] = torch.cuda.get_device_name(0)
        try:
            import pynvml  # lazy: NVML exists only where an NVIDIA driver does

            pynvml.nvmlInit()
            machine_info["driver"] = pynvml.nvmlSystemGetDriverVersion()
        except Exception:  # noqa: BLE001 - NVML is optional information
            machine_info["driver"] = None
    machine_info["scale"] = "paper" if config.getoption("--paper-scale") else "smoke"
    if config.getoption("--max-steps"):
        machine_info["max_steps"] = config.getoption("--max-steps")
    if config.getoption("--train-batch"):
        machine_info["train_batch"] = config.getoption("--train-batch")
    if SESSION_PEAK:  # the one ceiling of this file (header of its speed.md section)
        machine_info["peak_gflops"] = dict(SESSION_PEAK)
    if os.environ.get("MOTIONREPRO_BENCH_NOTE"):  # e.g. "shared VM under load": printed in speed.md
        machine_info["note"] = os.environ["MOTIONREPRO_BENCH_NOTE"]


@pytest.fixture(scope="session")
def scale(request) -> str:
    return "paper" if request.config.getoption("--paper-scale") else "smoke"


@pytest.fixture(scope="session")
def max_steps(request) -> dict[str, int] | int | None:
    return parse_max_steps(request.config.getoption("--max-steps"))


@pytest.fixture(scope="session")
def train_batch(request) -> dict[str, int] | int | None:
    return parse_max_steps(request.config.getoption("--train-batch"), "--train-batch")


def parse_max_steps(text: str | None, option: str = "--max-steps") -> dict[str, int] | int | None:
    """``--max-steps`` (or another per-method ``option``): ``None``, ``N`` (every method) or
    ``{method: N}`` from ``m=N,m2=N2``."""
    if not text:
        return None
    try:
        if "=" not in text:
            n = int(text)
            if n < 1:
                raise ValueError
            return n
        out = {}
        for part in text.split(","):
            name, _, v = part.partition("=")
            out[name.strip()] = int(v)
            if out[name.strip()] < 1 or not name.strip():
                raise ValueError
        return out
    except ValueError:
        raise pytest.UsageError(f"{option}: expected N or METHOD=N[,METHOD=N] with N >= 1, got {text!r}") from None


def cap_for(max_steps: dict[str, int] | int | None, method: str) -> int | None:
    """The value ``--max-steps`` (or ``--train-batch``) sets for ``method`` (``None``: not set)."""
    return max_steps.get(method) if isinstance(max_steps, dict) else max_steps


@pytest.fixture(scope="session")
def profile_top(request) -> int:
    return int(request.config.getoption("--profile-top"))


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


SESSION_PEAK: dict[str, float] = {}


@pytest.fixture(scope="session")
def peak_gflops(device) -> dict[str, float]:
    """The matmul ceiling measured ONCE per run; every ``fraction_of_peak`` of the file divides by
    it, and it is written to ``machine_info["peak_gflops"]`` (shown once in speed.md)."""
    out = {"fp32": matmul_peak_gflops(device, torch.float32)}
    try:
        out["bf16"] = matmul_peak_gflops(device, torch.bfloat16)
    except RuntimeError:
        pass
    SESSION_PEAK.update(out)
    return out


# ours: the other processes may use a fifth of one core, on average over a timed region, before its
# row is marked contended (a shell, the kernel's own threads and a terminal stay well below it)
OTHERS_CORE_SHARE = 0.2


def system_busy_cpu_s() -> float | None:
    """CPU seconds every process on the machine has run (``/proc/stat``: user, nice, system, irq,
    softirq and steal, the time a hypervisor gave another guest); ``None`` where it cannot be read."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = fh.readline().split()
        ticks = [int(v) for v in fields[1:9]]
        user, nice, system, _idle, _iowait, irq, softirq, steal = ticks
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def _busy_tick_s() -> float:
    """How far one reading of the machine's CPU time can be off: a clock tick per CPU."""
    return (os.cpu_count() or 1) / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.0


class CpuWall:
    """Process CPU time (``time.process_time``: all threads), wall time and, where ``/proc/stat``
    is readable, the CPU time every other process ran, over the calls of a timed region.

    A row is marked contended when the other processes (and a hypervisor's steal) took more than
    :data:`OTHERS_CORE_SHARE` of a core on average while it was timed, beyond the counters' rounding
    (a region of a few ticks cannot show it): what it measures is then not this machine's speed. A low ``cpu_s / wall_s`` alone is no such sign: a batch-1 call has serial
    parts (Python, kernels too small to split across threads) on an idle machine too. Without a
    system-wide counter (not Linux) the old rule stands: ``cpu_s / wall_s`` under 0.9 x the threads.
    ``clock`` / ``cpu_clock`` / ``busy_clock`` default to ``time.perf_counter`` /
    ``time.process_time`` / :func:`system_busy_cpu_s` (a test passes clocks it advances itself)."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter,
                 cpu_clock: Callable[[], float] = time.process_time,
                 busy_clock: Callable[[], float | None] = system_busy_cpu_s,
                 busy_resolution_s: float | None = None) -> None:
        self._clock, self._cpu_clock, self._busy_clock = clock, cpu_clock, busy_clock
        # /proc/stat counts in clock ticks, each CPU's counter rounded down: one reading of the machine's
        # total is off by up to a tick per CPU, so a short region cannot show others' time below that
        self._resolution = busy_resolution_s if busy_resolution_s is not None else _busy_tick_s()
        self.cpu_s = self.wall_s = 0.0
        self.others_cpu_s: float | None = 0.0 if busy_clock() is not None else None
        self.calls = 0

    def wrap(self, fn: Callable[[], Any]) -> Callable[[], Any]:
        def timed():
            b0, c0, w0 = self._busy_clock(), self._cpu_clock(), self._clock()
            try:
                return fn()
            finally:
                cpu, wall, busy = self._cpu_clock() - c0, self._clock() - w0, self._busy_clock()
                self.cpu_s += cpu
                self.wall_s += wall
                if self.others_cpu_s is not None and b0 is not None and busy is not None:
                    self.others_cpu_s += max(0.0, busy - b0 - cpu)
                self.calls += 1

        return timed

    @property
    def info(self) -> dict[str, Any]:
        threads = torch.get_num_threads()
        ratio = self.cpu_s / self.wall_s if self.wall_s > 0 else None
        others = self.others_cpu_s / self.wall_s if self.others_cpu_s is not None and self.wall_s > 0 else None
        if others is not None:  # beyond what the counters' rounding can explain (a tick per CPU per reading)
            contended = self.others_cpu_s - self.calls * self._resolution > OTHERS_CORE_SHARE * self.wall_s
        else:
            contended = bool(ratio is not None and ratio < 0.9 * threads)
        return {"cpu_s": self.cpu_s, "wall_s": self.wall_s, "cpu_over_wall": ratio, "threads": threads,
                "others_cores": others, "contended": contended}


def flop_count(module: torch.nn.Module, inputs: tuple) -> tuple[float, list[str]]:
    """fvcore MACs (GMAC) of one forward, and the op types fvcore skipped."""
    from fvcore.nn import FlopCountAnalysis  # lazy: fvcore's FLOP counter is slow to import and used only for GMACs

    fca = FlopCountAnalysis(module, inputs).set_op_handle(**{"aten::scaled_dot_product_attention": _sdpa_macs})
    fca.unsupported_ops_warnings(False)
    fca.uncalled_modules_warnings(False)
    total = fca.total() / 1e9
    return total, sorted(fca.unsupported_ops().keys())


def _sdpa_macs(inputs, outputs) -> int:
    """fvcore handle (fvcore has none for SDPA): MACs of QKᵀ and of A·V, q ``[..., Lq, e]``,
    k ``[..., Lk, e]``, v ``[..., Lk, ev]``; softmax and scaling are not counted, as for linear layers' bias."""
    from fvcore.nn.jit_handles import get_shape  # lazy: fvcore's FLOP counter is slow to import and used only for GMACs

    q, k, v = (get_shape(x) for x in inputs[:3])
    lead = 1
    for d in q[:-2]:
        lead *= d
    return lead * q[-2] * k[-2] * (q[-1] + v[-1])


def count_flops_of_call(fn: Callable[[], Any]) -> float:
    """FLOPs (not MACs) of an arbitrary call via torch's FlopCounterMode (whole generation loops)."""

    # keyed by the overload (stops the counter from decomposing it into CPU kernels it has no formula
    # for) and by the packet (what the counter looks formulas up by)
    sdpa = {}
    for name in ("scaled_dot_product_attention", "_scaled_dot_product_flash_attention_for_cpu",
                 "_scaled_dot_product_attention_math"):
        op = getattr(torch.ops.aten, name, None)
        if op is not None:
            sdpa.update({op.default: _sdpa_flops, op: _sdpa_flops})
    with FlopCounterMode(display=False, custom_mapping=sdpa) as fc:
        fn()
    return float(fc.get_total_flops())


def _sdpa_flops(q_shape, k_shape, v_shape, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of SDPA for torch's counter, which has no CPU formula (it sees the composite op):
    2 · lead · Lq · Lk · (e + ev), QKᵀ and A·V, as :func:`_sdpa_macs` × 2."""
    lead = 1
    for d in q_shape[:-2]:
        lead *= d
    return 2 * lead * q_shape[-2] * k_shape[-2] * (q_shape[-1] + v_shape[-1])


def memory_stats(device: torch.device) -> dict[str, float]:
    """Labelled peak memory: CPU peak RSS of the process; on CUDA the allocator and NVML numbers."""
    out = {"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if device.type == "cuda":
        out["max_memory_allocated_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
        out["max_memory_reserved_mib"] = torch.cuda.max_memory_reserved(device) / 2**20
        try:
            import pynvml  # lazy: NVML exists only where an NVIDIA driver does

            pynvml.nvmlInit()
            h = pynvml.nvmlDeviceGetHandleByIndex(device.index or 0)
            out["nvml_used_mib"] = pynvml.nvmlDeviceGetMemoryInfo(h).used / 2**20
        except Exception:  # noqa: BLE001
            pass
    return out


class _MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                "fsmblks", "uordblks", "fordblks", "keepcost")]


def _heap_reader() -> Callable[[], float] | None:
    """glibc ``mallinfo2``: bytes in use (``uordblks`` + mmapped ``hblkhd``) in MiB; None elsewhere."""
    try:
        fn = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return None
    fn.restype = _MallInfo2

    def read() -> float:
        m = fn()
        return (m.uordblks + m.hblkhd) / 2**20

    return read


class RssPeak:
    """Peak CPU memory WHILE a block runs: resident size (``/proc/self/statm``) and, on glibc,
    heap bytes in use (``mallinfo2``), polled by a thread every ``interval`` s.

    ``ru_maxrss`` is a process-lifetime maximum and the resident size rarely grows once the
    allocator holds freed pages, so the per-call figure is ``heap_delta_mib``: the peak of heap
    bytes in use above their level at entry (activations and workspaces of the measured call).
    """

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.start_mib = self.peak_mib = self.heap_start = self.heap_peak = 0.0
        self._stop = threading.Event()
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self._heap = _heap_reader()

    def _rss_mib(self) -> float:
        try:
            with open("/proc/self/statm", "rb") as fh:
                return int(fh.read().split()[1]) * self._page / 2**20
        except OSError:  # not Linux: fall back to the lifetime maximum
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    def _sample(self) -> None:
        self.peak_mib = max(self.peak_mib, self._rss_mib())
        if self._heap:
            self.heap_peak = max(self.heap_peak, self._heap())

    def _poll(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> RssPeak:
        self.start_mib = self.peak_mib = self._rss_mib()
        self.heap_start = self.heap_peak = self._heap() if self._heap else 0.0
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def stats(self) -> dict[str, float]:
        out = {"rss_mib": self.peak_mib, "rss_delta_mib": self.peak_mib - self.start_mib}
        if self._heap:
            out["heap_delta_mib"] = self.heap_peak - self.heap_start
        return out


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
