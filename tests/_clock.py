"""A clock a test advances itself, for timing code that accepts its clocks as arguments.

Sleeping a known time and comparing the measured span with it tests the machine's load as much
as the code: on a shared machine a 30 ms sleep can take 300 ms. With a clock that moves only
when the test says so, the timing bookkeeping (exclusive spans, sums, ratios) is checked to the
exact value.
"""

from __future__ import annotations


class FakeClock:
    """``wall()`` / ``cpu()`` / ``busy()`` read counters that only :meth:`sleep`, :meth:`work` and
    :meth:`others` move (``busy``: the machine's CPU time, as ``/proc/stat`` counts it).

    Use dyadic amounts (0.5, 0.25, 0.125, ...): their float sums are exact, so tests compare with ``==``.
    """

    def __init__(self) -> None:
        self.wall_s = 0.0
        self.cpu_s = 0.0
        self.busy_s = 0.0  # CPU time of every process on the machine, this one included

    def busy(self) -> float:
        return self.busy_s

    def others(self, cpu_seconds: float) -> None:
        """Another process runs ``cpu_seconds`` of CPU; no wall time passes for this one."""
        self.busy_s += cpu_seconds

    def wall(self) -> float:
        return self.wall_s

    def cpu(self) -> float:
        return self.cpu_s

    def sleep(self, seconds: float) -> None:
        """Wall time passes, the process uses no CPU (a wait)."""
        self.wall_s += seconds

    def work(self, seconds: float, threads: int = 1) -> None:
        """Wall time passes with ``threads`` threads busy (CPU time = threads x wall time)."""
        self.wall_s += seconds
        self.cpu_s += threads * seconds
        self.busy_s += threads * seconds
