"""CPU thread defaults that degrade gracefully on a shared machine (imported before torch).

Measured on the 2-core CPU (``benchmarks/test_oversubscription.py``): with OpenMP's
default wait policy a worker that finishes a parallel region keeps spinning for its next one, so
two 2-thread processes (or one beside other load) spend their time slices spinning: a loop of
small matmuls took 7.7 s alone and 22 s as one of two processes, against 0.86 s / 1.6 s with
``OMP_WAIT_POLICY=PASSIVE`` and 0.70 s / 1.06 s with one thread. So, unless the user set them:

- ``OMP_WAIT_POLICY=PASSIVE`` (idle workers sleep instead of spinning);
- ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` = the cores of this process's affinity mask.

The thread count is deliberately NOT derived from the machine's load by default: a different
thread count can change the reduction order of CPU kernels, and a seed must give the same
numbers on every run (resume and determinism tests compare bit for bit). ``auto`` (load-aware)
is an opt-in for interactive use on a shared machine.

Override: ``MOTIONREPRO_THREADS=N`` (a fixed count), ``cores`` (default), ``auto`` (cores minus the
1-minute load, at least 1), or set ``OMP_NUM_THREADS`` /
``OMP_WAIT_POLICY`` yourself; ``MOTIONREPRO_THREADS=off`` leaves the environment untouched.
These variables only act before torch is first imported (OpenMP reads them at start-up), so the
package ``__init__`` of ``methods`` and ``evaluators`` call :func:`configure`.
"""

from __future__ import annotations

import os
import sys

ENV = "MOTIONREPRO_THREADS"


def affinity_cores() -> int:
    """Cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def auto_threads() -> int:
    """Cores of the affinity mask minus the 1-minute load, clamped to [1, cores]."""
    cores = affinity_cores()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = 0.0
    return max(1, min(cores, round(cores - load)))


def configure(environ=None) -> dict[str, str]:
    """Set the defaults above in ``environ`` (``os.environ``) where unset; returns what it set.
    Does nothing once torch is imported, or with ``MOTIONREPRO_THREADS=off``."""
    env = os.environ if environ is None else environ
    choice = env.get(ENV, "cores").strip().lower()
    if choice == "off" or (environ is None and "torch" in sys.modules):
        return {}
    if choice == "cores":
        n = affinity_cores()
    elif choice == "auto":
        n = auto_threads()
    else:
        try:
            n = int(choice)
        except ValueError:
            raise ValueError(f"{ENV} must be an integer, 'cores', 'auto' or 'off', got {env[ENV]!r}") from None
        if n < 1:
            raise ValueError(f"{ENV} must be >= 1, got {n}")
    out = {}
    for key, value in (("OMP_WAIT_POLICY", "PASSIVE"), ("OMP_NUM_THREADS", str(n)), ("MKL_NUM_THREADS", str(n))):
        if key not in env:
            env[key] = out[key] = value
    return out
