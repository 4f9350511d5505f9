"""Contention flag of the benchmarks (benchmarks/conftest.py::CpuWall) and its marks in speed.md."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import torch

from benchmarks.conftest import OTHERS_CORE_SHARE, CpuWall, system_busy_cpu_s
from leaderboards.speed import render_speed
from tests._clock import FakeClock


def test_cpuwall_flags_a_region_others_took_cores_from():
    """Contended means other processes ran while the region was timed (more than a fifth of a core
    on average), not that the region's own threads idled: a batch-1 call has serial parts on an
    idle machine too. (A clock the test moves: the check cannot depend on load.)"""
    threads = torch.get_num_threads()
    clock = FakeClock()
    serial = CpuWall(clock=clock.wall, cpu_clock=clock.cpu, busy_clock=clock.busy, busy_resolution_s=0.0)

    def half_serial():  # one thread for half the time, all threads for the other half; nothing else runs
        clock.work(0.5, 1)
        clock.work(0.5, threads)

    serial.wrap(half_serial)()
    serial.wrap(half_serial)()
    info = serial.info
    assert (info["wall_s"], info["cpu_s"], serial.calls) == (2.0, 1.0 + threads, 2)
    assert info["others_cores"] == 0.0 and info["contended"] is False

    shared = CpuWall(clock=clock.wall, cpu_clock=clock.cpu, busy_clock=clock.busy, busy_resolution_s=0.0)

    def beside_another_process():  # all our threads ran, and another process took a quarter of a core
        clock.work(1.0, threads)
        clock.others(0.25)

    shared.wrap(beside_another_process)()
    assert shared.info["others_cores"] == 0.25 and shared.info["contended"] is True
    quiet = CpuWall(clock=clock.wall, cpu_clock=clock.cpu, busy_clock=clock.busy, busy_resolution_s=0.0)
    quiet.wrap(lambda: (clock.work(1.0, threads), clock.others(0.125)))()  # a shell: under the fifth
    assert quiet.info["others_cores"] == 0.125 and quiet.info["contended"] is False
    assert CpuWall().info["cpu_over_wall"] is None  # nothing timed yet


def test_others_time_within_the_counters_rounding_is_not_contention():
    """/proc/stat counts whole ticks: ten 1/16 s calls, each read to within 1/64 s, cannot show
    others' time of 1/64 s per call; the same share of others' time over one long region can."""
    threads = torch.get_num_threads()
    clock = FakeClock()
    short = CpuWall(clock=clock.wall, cpu_clock=clock.cpu, busy_clock=clock.busy, busy_resolution_s=1 / 64)
    for _ in range(10):
        short.wrap(lambda: (clock.work(1 / 16, threads), clock.others(1 / 64)))()
    assert short.info["others_cores"] == 0.25 and short.info["contended"] is False
    long = CpuWall(clock=clock.wall, cpu_clock=clock.cpu, busy_clock=clock.busy, busy_resolution_s=1 / 64)
    long.wrap(lambda: (clock.work(10 / 16, threads), clock.others(10 / 64)))()
    assert long.info["others_cores"] == 0.25 and long.info["contended"] is True


def test_without_a_system_counter_a_region_that_gets_no_cpu_is_contended():
    """Where ``/proc/stat`` cannot be read, the region's own cpu/wall under 0.9 x threads decides."""
    threads = torch.get_num_threads()
    clock = FakeClock()
    cw = CpuWall(clock=clock.wall, cpu_clock=clock.cpu, busy_clock=lambda: None)
    cw.wrap(lambda: (clock.sleep(0.5), clock.work(0.5, threads)))()
    assert cw.info["others_cores"] is None and cw.info["cpu_over_wall"] == threads * 0.5
    assert cw.info["contended"] is True
    busy = CpuWall(clock=clock.wall, cpu_clock=clock.cpu, busy_clock=lambda: None)
    busy.wrap(lambda: clock.work(0.25, threads))()
    assert busy.info["cpu_over_wall"] == threads and busy.info["contended"] is False


@pytest.mark.skipif(system_busy_cpu_s() is None, reason="no /proc/stat (not Linux)")
def test_a_process_spinning_beside_the_region_is_counted():
    """On the real counters: a child process that spins while the region sleeps is seen as others'
    CPU time (at least a fifth of a core over the region: it spins the whole time)."""
    cw = CpuWall()
    child = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 30: pass"])
    try:
        time.sleep(0.3)  # the child is running before the region starts
        cw.wrap(lambda: time.sleep(1.0))()
    finally:
        child.kill()
        child.wait()
    assert cw.info["others_cores"] > OTHERS_CORE_SHARE and cw.info["contended"] is True


def test_cpuwall_on_the_real_clocks_counts_each_call():
    cw = CpuWall()
    assert cw.wrap(lambda: sum(range(1000)))() == sum(range(1000))
    assert cw.calls == 1 and cw.wall_s >= 0 and cw.cpu_s >= 0


def _bench(name, what, median, **extra):
    return {"name": name, "stats": {"median": median, "iqr": 0.0, "rounds": 3}, "extra_info": {"what": what, **extra}}


def test_speed_md_marks_contended_rows_and_shows_one_peak(tmp_path):
    data = {"machine_info": {"scale": "smoke", "peak_gflops": {"fp32": 123.0, "bf16": 456.0}},
            "datetime": "2026-01-01",
            "benchmarks": [_bench("test_matmul_peak_fp32", "fp32 matmul", 0.01, gflops=99.0, cpu_over_wall=0.4,
                                  threads=1, contended=True),
                           _bench("test_fid", "FID", 0.02, cpu_over_wall=0.99, threads=1, contended=False)]}
    (tmp_path / "m.json").write_text(json.dumps(data))
    md = render_speed([tmp_path], [])
    header = next(line for line in md.splitlines() if line.startswith("Machine:"))
    assert "123 GFLOP/s" in header and "bf16 456" in header and "1 timed rows contended" in header
    rows = {line.split("|")[1].strip(): line for line in md.splitlines() if line.startswith("| test_")}
    assert "†" in rows["test_matmul_peak_fp32"] and "**contended**" in rows["test_matmul_peak_fp32"]
    assert "†" not in rows["test_fid"] and "contended" not in rows["test_fid"]
