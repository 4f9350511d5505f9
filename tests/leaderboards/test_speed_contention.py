"""Contention flag of the benchmarks (benchmarks/conftest.py::CpuWall) and its marks in speed.md."""

from __future__ import annotations

import json

import torch

from benchmarks.conftest import CpuWall
from leaderboards.speed import render_speed
from tests._clock import FakeClock


def test_cpuwall_flags_a_region_that_gets_no_cpu():
    """A region that waits half its wall time has cpu/wall 0.5: below 0.9 x threads, so contended;
    one whose threads all ran is not. (A clock the test moves: the check cannot depend on load.)"""
    threads = torch.get_num_threads()
    clock = FakeClock()
    cw = CpuWall(clock=clock.wall, cpu_clock=clock.cpu)

    def half_waiting():
        clock.sleep(0.5)
        clock.work(0.5, threads)

    cw.wrap(half_waiting)()
    cw.wrap(half_waiting)()
    info = cw.info
    assert (info["wall_s"], info["cpu_s"], cw.calls) == (2.0, threads * 1.0, 2)
    assert info["cpu_over_wall"] == threads * 0.5
    assert info["threads"] == threads and info["contended"] is True
    busy = CpuWall(clock=clock.wall, cpu_clock=clock.cpu)
    busy.wrap(lambda: clock.work(0.25, threads))()
    assert busy.info["cpu_over_wall"] == threads and busy.info["contended"] is False
    assert CpuWall().info["cpu_over_wall"] is None  # nothing timed yet


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
