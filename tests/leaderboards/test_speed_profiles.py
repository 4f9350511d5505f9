"""Timing spans, the profile of a target miss, and the text2motion repetition table in speed.md."""

from __future__ import annotations

import json
import time

import torch

from benchmarks.profiling import top_ops
from evaluators.protocols._timing import Spans, recording, repetitions, share_outside, span
from leaderboards.speed import render_speed
from tests._clock import FakeClock


def test_spans_are_exclusive_and_add_up_to_the_wall_time():
    """Nested spans on a clock the test moves: the child's time is not in the parent, the parts sum
    to the time inside the outermost span, and time outside every span is in no part."""
    clock = FakeClock()
    rec = Spans(clock=clock.wall, cpu_clock=clock.cpu)
    with recording(rec):
        clock.sleep(4.0)  # before any span: nobody's time
        with span("outer"):
            clock.work(0.25)
            with span("inner"):
                clock.sleep(0.5)
                clock.work(0.125)
            clock.sleep(0.0625)
        with span("outer"):  # a second call of the same part accumulates
            clock.work(0.5)
    assert rec.parts == {"outer": {"wall_s": 0.25 + 0.0625 + 0.5, "cpu_s": 0.25 + 0.5, "calls": 2},
                         "inner": {"wall_s": 0.625, "cpu_s": 0.125, "calls": 1}}
    inside = clock.wall_s - 4.0
    assert sum(v["wall_s"] for v in rec.parts.values()) == inside
    assert share_outside(rec.parts, "inner") == 1 - 0.625 / inside
    assert share_outside({}, "inner") is None  # nothing timed: no share
    with span("nobody_listens"):  # no active recorder: a no-op
        clock.work(1.0)
    assert "nobody_listens" not in rec.parts


def test_spans_on_the_real_clocks_are_non_negative_and_within_the_measured_wall():
    """The default clocks (perf_counter, process_time): exclusive parts are >= 0 and their sum is
    no more than the wall time measured around the outermost span, whatever the machine's load."""
    rec = Spans()
    t0 = time.perf_counter()
    with recording(rec):
        with span("outer"):
            sum(range(1000))
            with span("inner"):
                sum(range(1000))
    wall = time.perf_counter() - t0
    assert {k: v["calls"] for k, v in rec.parts.items()} == {"outer": 1, "inner": 1}
    assert all(v["wall_s"] >= 0 and v["cpu_s"] >= 0 for v in rec.parts.values()), rec.parts
    assert sum(v["wall_s"] for v in rec.parts.values()) <= wall


def test_repetitions_record_each_loop_body():
    """Each loop body's parts (its own time under ``repetition``, its children under their names),
    in loop order."""
    clock = FakeClock()
    rec = Spans(clock=clock.wall, cpu_clock=clock.cpu)
    with recording(rec):
        for i in repetitions(range(3)):
            clock.work(0.0625)  # the body's own time
            with span("generation"):
                clock.sleep(0.125 * (i + 1))
    assert rec.repetitions == [{"repetition": {"wall_s": 0.0625, "cpu_s": 0.0625, "calls": 1},
                                "generation": {"wall_s": 0.125 * (i + 1), "cpu_s": 0.0, "calls": 1}}
                               for i in range(3)]
    assert rec.parts["generation"] == {"wall_s": 0.75, "cpu_s": 0.0, "calls": 3}
    # no recorder: the items pass through untouched
    assert list(repetitions(range(3))) == [0, 1, 2]


def test_top_ops_names_the_op_that_dominates():
    """A large matmul beside a tiny add: the profile ranks the matmul first with most of the self time."""
    a, b = torch.randn(512, 512), torch.randn(512, 512)
    c = torch.randn(8)

    def fn():
        for _ in range(3):
            a @ b
        c + 1

    prof = top_ops(fn, top=3)
    assert prof["top_ops"][0]["op"] in ("aten::mm", "aten::matmul")
    assert prof["top_ops"][0]["share"] > 0.5 and prof["top_ops"][0]["calls"] == 3
    assert 0 < prof["ops_self_s"] <= prof["profiled_wall_s"]
    assert sum(o["share"] for o in prof["top_ops"]) <= 1 + 1e-9


def _bench(name, median, **extra):
    return {"name": name, "stats": {"median": median, "iqr": 0.0, "rounds": 1}, "extra_info": extra}


def test_speed_md_shows_miss_profiles_and_the_repetition_table(tmp_path):
    prof = {"top_ops": [{"op": "aten::addmm", "self_s": 0.3, "share": 0.6, "calls": 10},
                        {"op": "aten::copy_", "self_s": 0.1, "share": 0.2, "calls": 4}],
            "ops_self_s": 0.5, "profiled_wall_s": 1.2}
    samp = {"what": "sampling", "steps": 50, "cpu_over_wall": 1.0, "threads": 1, "contended": False}
    data = {"machine_info": {"scale": "paper", "peak_gflops": {"fp32": 60.0}}, "datetime": "2026-01-01",
            "benchmarks": [
                _bench("test_sampling_batch1[mld-50]", 1.0, method="mld", batch=1, fraction_of_peak=0.15,
                       target_fraction=0.40, profile=prof, **samp),
                _bench("test_sampling_batch32[mld-default]", 10.0, method="mld", batch=32, fraction_of_peak=0.75,
                       target_fraction=0.70, profile=prof, **samp),
                _bench("test_text2motion_repetition[mld]", 30.0, method="mld", what="text2motion repetition",
                       evaluated_samples=32, mm_generations=30, generation_s=27.0, evaluator_motion_s=2.0,
                       evaluator_text_s=0.1, metrics_s=0.5, data_s=0.2, other_s=0.2, repetition_wall_s=30.0,
                       share_outside_generation=0.1, target_share_outside=0.10, parts_s={"metric_fid": 0.4},
                       share_outside_generation_warm=0.06,
                       cpu_over_wall=0.5, threads=1, contended=True, note="one batch"),
                _bench("test_text2motion_repetition[momask]", 40.0, method="momask", what="text2motion repetition",
                       evaluated_samples=32, mm_generations=30, generation_s=39.0, repetition_wall_s=40.0,
                       share_outside_generation=0.025, target_share_outside=0.10, cpu_over_wall=0.99, threads=1,
                       contended=False)]}
    (tmp_path / "cpu-paper.json").write_text(json.dumps(data))
    md = render_speed([tmp_path], [])
    lines = md.splitlines()
    miss = [ln for ln in lines if ln.startswith("- mld b")]
    # only the b1 row misses (0.15 < 0.40); the b32 row meets its target, so no profile for it
    profiled = [ln for ln in miss if "`aten::addmm` 60.0 %" in ln]
    assert len(profiled) == 1 and profiled[0].startswith("- mld b1")
    assert "`aten::copy_` 20.0 %" in profiled[0] and "time in ops 50 % of the timed median" in profiled[0]
    rep_rows = {ln.split("|")[1].strip(): ln for ln in lines if ln.startswith("| ") and "32 / 30" in ln}
    # 10 % is not below the 10 % target: a miss by 0 points; 2.5 % meets it
    assert "10.0 % / < 10 % (misses by 0.0 pts)" in rep_rows["mld"] and "†" in rep_rows["mld"]
    assert "6.0 % (met)" in rep_rows["mld"]
    assert "2.5 % / < 10 % (met)" in rep_rows["momask"]
    assert "Reduced run: one batch" in md and "`fid`" in md
