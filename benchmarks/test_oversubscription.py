"""One process alone vs two concurrent ones (thread oversubscription on a shared CPU).

Each process runs the same loop of small matmuls (per-op parallel regions, as a sampling loop).
``concurrent_over_alone`` = wall time of the slower of two concurrent processes / wall time of
one alone; 2 means the cores were simply shared, far above 2 means threads spun while waiting
for descheduled peers. ``suite`` uses the defaults of ``evaluators/core/threads.py`` (passive wait,
threads from affinity mask and load); ``openmp_default`` unsets them and uses every core.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from evaluators.core.threads import configure

_WORK = ("import time, torch\nx = torch.randn(64, 512); w = torch.randn(512, 512) / 23\n"
         "t0 = time.perf_counter()\nfor _ in range(800):\n    x = torch.nn.functional.gelu(x @ w)\n"
         "print(time.perf_counter() - t0)")


def _env(mode: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "MOTIONREPRO_THREADS")}
    if mode == "suite":
        configure(env)
    else:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(len(os.sched_getaffinity(0)))
    return env


def _spawn(env):
    return subprocess.Popen([sys.executable, "-c", _WORK], env=env, stdout=subprocess.PIPE, text=True)


def _loop_s(p) -> float:
    out, _ = p.communicate(timeout=300)
    return float(out.strip().splitlines()[-1])


@pytest.mark.parametrize("mode", ["suite", "openmp_default"])
def test_two_processes_vs_one(benchmark, mode):
    env = _env(mode)
    alone = _loop_s(_spawn(env))

    def both():
        ps = [_spawn(env), _spawn(env)]
        return max(_loop_s(p) for p in ps)

    t0 = time.perf_counter()
    concurrent = benchmark.pedantic(both, rounds=1, warmup_rounds=0, iterations=1)
    benchmark.extra_info.update({
        "what": f"two concurrent processes vs one ({mode})", "alone_s": alone, "concurrent_s": concurrent,
        "concurrent_over_alone": concurrent / alone, "wall_incl_startup_s": time.perf_counter() - t0,
        "threads_per_process": int(env["OMP_NUM_THREADS"]), "omp_wait_policy": env.get("OMP_WAIT_POLICY", "unset"),
    })
