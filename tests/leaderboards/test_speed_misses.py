"""speed.md's "Why the misses": the floor and profiles of side-by-side files, rendered from fabricated files."""

from __future__ import annotations

import json

from leaderboards.speed import render_speed
from tests._markdown import table_rows


def _side(workload: str, ratio: float, target: float | None, **extra) -> dict:
    return {"workload": workload, "method": "m", "batch": 1, "official_s": 2.0 * ratio, "suite_s": 2.0,
            "ratio": ratio, "target": target, "machine": "Test CPU", "threads": 1, "cpu_over_wall": 1.0,
            "distorted": False, "commit": "abc", "date": "2026-12-06T06:00:00Z", **extra}


def _floor(official: float, suite: float, floor: float) -> dict:
    return {"official_s": official, "suite_s": suite, "floor_s": floor, "hot_s": floor / 2,
            "best_possible_ratio": official / floor, "suite_over_floor": suite / floor,
            "products": {"addmm": 3, "mm": 1}, "cpu_over_wall": 0.5}


PROFILE = {"top_ops": [{"op": "aten::addmm", "self_s": 0.6, "share": 0.6, "calls": 9},
                       {"op": "aten::copy_", "self_s": 0.2, "share": 0.2, "calls": 4}],
           "ops_self_s": 1.0, "dense_self_s": 0.7, "profiled_wall_s": 1.25, "events": 5}


def test_floors_say_whether_a_target_is_reachable_and_profiles_say_where_time_goes(tmp_path):
    side = tmp_path / "bench" / "side_by_side"
    side.mkdir(parents=True)
    docs = {  # official / floor = 1.125 < 1.2: no implementation reaches the target
        "a": _side("a", 1.13, 1.2, floor=_floor(13.5, 12.0, 12.0), profile={"suite": PROFILE, "official": PROFILE},
                   evidence_run={"commit": "def", "date": "2026-12-06T12:00:00Z", "cpu_over_wall": 0.4}),
        # official / floor = 2.0 against 1.5: the suite must come within 2.0 / 1.5 of its floor
        "b": _side("b", 1.49, 1.5, floor=_floor(4.0, 3.0, 2.0)),
        "c": _side("c", 2.0, 1.5),  # no evidence: not in the section
    }
    for name, doc in docs.items():
        (side / f"{name}.json").write_text(json.dumps(doc))
    page = render_speed([tmp_path / "bench"], [])
    section = page[page.index("## Why the misses"):]
    assert page.index("# Details") < page.index("## Why the misses")
    rows = {r["workload"]: r for r in table_rows(section, "best possible ratio")}
    assert set(rows) == {"a", "b"}
    assert rows["a"]["target needs"] == "unreachable (best possible 1.12 < 1.20)"
    assert rows["a"]["verdict"] == "missed" and rows["a"]["best possible ratio"] == "1.12"
    assert rows["b"]["target needs"] == "suite ≤ 1.33 × floor"
    assert rows["b"]["suite / floor"] == "1.5" and rows["b"]["products replayed"] == "addmm 3, mm 1"
    assert ("  - suite: `aten::addmm` 60.0 %, `aten::copy_` 20.0 % (ops 80 % of the profiled call's 1.25 s; "
            "dense products 70 % of the ops' time)") in section
    assert "measured at def, 2026-12-06T12:00, cpu/wall 0.4; the timing above is the earlier quiet run's" in section
    assert "**c**" not in section


def test_no_evidence_no_section(tmp_path):
    side = tmp_path / "bench" / "side_by_side"
    side.mkdir(parents=True)
    (side / "c.json").write_text(json.dumps(_side("c", 2.0, 1.5)))
    assert "Why the misses" not in render_speed([tmp_path / "bench"], [])
