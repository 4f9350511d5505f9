"""Where the cost estimate's seconds come from: timed on this machine, or read from a benchmark file.

``probe_costs`` builds nothing itself: it times the method's own benchmark hooks
(``Method.train_step_example``, ``Method.denoiser_example``) for a few steps and records how
much CPU the probe and every other process used meanwhile, so a contended machine is flagged
instead of silently inflating the estimate. ``bench_costs`` reads the same two numbers from a
committed pytest-benchmark JSON of a named machine. Kept apart from :mod:`evaluators.runner.estimate`
(the cost model and its table) because measuring is the part that touches the machine.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

PROBE_BATCH = 4  # ours: small enough for paper-scale models on a 2-core CPU


@dataclass
class Costs:
    """Seconds per training sample and per generated/evaluated sample, and the peak memory seen."""
    train_s: float | None
    infer_s: float | None
    peak_mib: float | None
    source: str


_LOAD: dict[str, Any] = {"cpu_s": 0.0, "wall_s": 0.0}


def _busy_cpu_s() -> float | None:
    """CPU-seconds every process on the machine has used (``/proc/stat``; None elsewhere)."""
    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None


def _median_time(fn, reps: int = 3) -> float:
    """Median wall seconds of ``fn`` after one warm-up. The probe's own CPU time and the whole
    machine's busy CPU time are summed too, so other processes' share can be reported."""
    fn()  # warm-up (lazy init, allocator)
    times = []
    for _ in range(reps):
        b0, t0, c0 = _busy_cpu_s(), time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t0)
        b1 = _busy_cpu_s()
        _LOAD["cpu_s"] += time.process_time() - c0
        _LOAD["wall_s"] += times[-1]
        if b0 is not None and b1 is not None:
            _LOAD["machine_cpu_s"] = _LOAD.get("machine_cpu_s", 0.0) + (b1 - b0)
    return statistics.median(times)


OTHER_LOAD_LIMIT = 0.25  # ours: CPUs used by other processes during the probe above which it is flagged


def probe_load() -> tuple[float, float | None]:
    """(CPUs the probe used, CPUs other processes used meanwhile; None without /proc/stat)."""
    if not _LOAD["wall_s"]:
        return 0.0, None
    own = _LOAD["cpu_s"] / _LOAD["wall_s"]
    machine = _LOAD.get("machine_cpu_s")
    return own, None if machine is None else max(0.0, machine / _LOAD["wall_s"] - own)


def probe_failures() -> str | None:
    """What the probe could not time (and how to help it), or None when every probe ran."""
    return _LOAD.get("failed")


def contention_note(device: str) -> str:
    """One line on the probe's CPU use; CONTENDED when other processes took CPU meanwhile."""

    if device.startswith("cuda") or not _LOAD["wall_s"]:
        return ""
    own, other = probe_load()
    threads = torch.get_num_threads()
    if other is not None and other > OTHER_LOAD_LIMIT:
        return (f"CONTENDED: other processes used {other:.2f} CPUs during the probe (it used {own:.2f} with "
                f"{threads} threads); its seconds are too high, rerun on a quiet machine")
    return (f"probe used {own:.2f} CPUs with {threads} threads; other processes "
            f"{'unknown' if other is None else f'{other:.2f}'} CPUs (not contended)")


def probe_costs(method, device: str, batch: int = PROBE_BATCH) -> Costs:
    """Time the method's own benchmark hooks on this machine."""

    sync = (lambda: torch.cuda.synchronize()) if device.startswith("cuda") else (lambda: None)
    train_s = infer_s = None
    failed = []
    try:
        step = method.train_step_example(batch)
        if step is not None:
            train_s = _median_time(lambda: (step(), sync())) / batch
    except Exception as e:  # noqa: BLE001 - a probe that cannot run leaves its stages untimed, said in the table
        failed.append(f"train-step probe failed ({type(e).__name__}: {e})")
    try:
        ex = method.denoiser_example(batch)
        if ex is not None:
            module, inputs = ex
            n_steps = _sampler_steps(method)
            with torch.inference_mode():
                infer_s = _median_time(lambda: (module(*inputs), sync())) * n_steps / batch
    except Exception as e:  # noqa: BLE001
        failed.append(f"sampling probe failed ({type(e).__name__}: {e})")
    if failed:
        _LOAD["failed"] = "; ".join(failed) + (" - sizes a method takes from its data at fit time can be set "
                                               "on the command line, e.g. method_cfg.nfeats=N")
    if device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return Costs(train_s, infer_s, peak, f"probe (batch {batch}, {device})")


def _sampler_steps(method) -> int:
    return int(method.default_steps or 1)


def bench_costs(method_name: str, path: str | os.PathLike) -> Costs:
    """Costs from a committed pytest-benchmark JSON of a named machine."""

    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"--estimate-from {path}: cannot read benchmark JSON ({e})") from None
    train_s = infer_s = peak = None
    for b in data.get("benchmarks", []):
        info = b.get("extra_info", {})
        if info.get("method") != method_name:
            continue
        if b["name"].startswith("test_train_step") and info.get("samples_per_s"):
            train_s = 1.0 / float(info["samples_per_s"])
        if b["name"].startswith("test_sampling_batch32"):
            infer_s = float(b["stats"]["mean"]) / float(info.get("batch", 32))
            steps = info.get("steps")
            if info.get("max_steps") and steps:  # measured at fewer steps: per-step cost is the same
                infer_s *= steps / info["max_steps"]
        for k in ("peak_allocated_mib", "peak_rss_mib"):
            if info.get(k):
                peak = max(peak or 0.0, float(info[k]))
    machine = data.get("machine_info", {})
    label = machine.get("gpu") or (machine.get("cpu") or {}).get("brand_raw") or "?"
    return Costs(train_s, infer_s, peak, f"bench:{path.name} ({label})")
