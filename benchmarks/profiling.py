"""Top ops by self CPU time of one call (torch.profiler): the profile that explains a target miss.

A missed target is reported as it is, with the profile (top ops by self time) that explains it.
The sampling benchmarks run :func:`top_ops` once, untimed, after their timed rounds, and store
its result in ``extra_info["profile"]``; ``leaderboards/speed.py`` prints it under the
per-method table for every row that misses its target.

``ops_self_s`` is the sum of every op's self time: the time the calling thread spent inside
ATen ops. Compared with the row's (unprofiled) median it says how much of the call is *not*
in ops at all: Python, dispatch and the sampler's bookkeeping. ``dense_self_s`` is the part of it
in dense products (matmuls, convolutions; :data:`benchmarks.floor.DENSE_OPS` and the convolution
kernels under them): the rest of the ops' time is what a faster implementation could still remove.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from benchmarks.floor import DENSE_OPS

DEFAULT_TOP = 8  # ours: enough to name what dominates, short enough for one line of speed.md


def top_ops(fn: Callable[[], Any], top: int = DEFAULT_TOP) -> dict[str, Any]:
    """Profile one call of ``fn`` (CPU activity) and return its ``top`` ops by self CPU time.

    Returns ``{"top_ops": [{"op", "self_s", "share", "calls"}], "ops_self_s", "dense_self_s",
    "profiled_wall_s", "events"}``; ``share`` is the op's fraction of ``ops_self_s``.
    """
    from torch.profiler import (  # lazy: the profiler is loaded only when a profile is asked for
        ProfilerActivity,
        profile,
    )

    with profile(activities=[ProfilerActivity.CPU], record_shapes=False, with_stack=False) as prof:
        t0 = time.perf_counter()  # inside: the profiler's start-up (seconds on first use) is not the call's
        fn()
        wall = time.perf_counter() - t0
    avgs = [e for e in prof.key_averages() if e.self_cpu_time_total > 0]
    total_us = sum(e.self_cpu_time_total for e in avgs)
    dense_us = sum(e.self_cpu_time_total for e in avgs if e.key in DENSE_OPS or "convolution" in e.key)
    ranked = sorted(avgs, key=lambda e: e.self_cpu_time_total, reverse=True)[:max(int(top), 0)]
    return {
        "top_ops": [{"op": e.key, "self_s": e.self_cpu_time_total / 1e6,
                     "share": e.self_cpu_time_total / total_us if total_us else None, "calls": int(e.count)}
                    for e in ranked],
        "ops_self_s": total_us / 1e6, "dense_self_s": dense_us / 1e6, "profiled_wall_s": wall, "events": len(avgs),
    }
