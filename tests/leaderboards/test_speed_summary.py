"""The top layer of speed.md: the short per-machine table, one sentence per method, and the
side-by-side timings against the authors' code, rendered from fabricated files."""

from __future__ import annotations

import json

import pytest

from leaderboards.md_format import BenchmarkFileError
from leaderboards.speed import render_speed
from tests._markdown import table_rows


def _bench(name: str, median: float, **extra) -> dict:
    return {"name": name, "stats": {"median": median, "iqr": 0.0, "rounds": 3}, "extra_info": extra}


def _write_benchmark(folder, scale: str = "paper") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"machine_info": {"cpu": {"brand_raw": "Test CPU 9000", "count": 4}, "torch": "2.x", "scale": scale},
           "datetime": "2026-01-02T03:04:05",
           "benchmarks": [
               _bench("test_forward[mld]", 0.01, method="mld", what="one denoiser forward", params_m=8.15, gmacs=0.05),
               _bench("test_sampling[mld-b1]", 0.9, method="mld", what="sampling", batch=1, steps=50, aits_s=0.9,
                      fraction_of_peak=0.10, target_fraction=0.40, contended=True,
                      note="misses target by 30.0 points of peak"),
               _bench("test_sampling[mld-b32]", 3.2, method="mld", what="sampling", batch=32, steps=50, aits_s=0.1,
                      fraction_of_peak=0.75, target_fraction=0.70, heap_delta_mib=92.0,
                      note="measured at 2 of 50 steps (--max-steps); meets target"),
               _bench("test_train[mld]", 0.07, method="mld", what="train step", samples_per_s=450.0, batch=32)]}
    (folder / f"cpu-{scale}.json").write_text(json.dumps(doc), encoding="utf-8")


SIDE = {"workload": "mld ddim sampling", "method": "mld", "batch": 32, "official_s": 2.0, "suite_s": 1.6,
        "ratio": 1.25, "target": 1.0, "machine": "Test CPU 9000", "threads": 2, "cpu_over_wall": 1.3,
        "distorted": True, "first_call_s": {"official": 4.0, "suite": 3.5}, "commit": "abc1234",
        "date": "2026-12-06T04:00:00Z"}


def test_the_page_opens_with_the_short_table_before_the_details(tmp_path):
    _write_benchmark(tmp_path / "bench")
    page = render_speed([tmp_path / "bench"], [])
    first_table = page.index("\n|")
    assert page.index("## At a glance") < first_table < page.index("# Details")
    row = table_rows(page, "sample, batch 1")[0]
    assert row["method"] == "mld" and row["on"] == "Test CPU 9000 (4 cpus)"
    assert row["sample, batch 1 (s / sample)"] == "0.9 †"  # contended row: its cell carries the dagger
    assert row["sample, batch 32 (s / sample)"] == "0.1"
    assert row["train (samples/s, batch)"] == "450 (32)"
    # the sentence says where the method stands: 0.40 - 0.10 = 30 points missed at batch 1, met at 32
    sentence = next(line for line in page.splitlines() if line.startswith("- **mld**"))
    assert "misses by 30.0 points" in sentence and "0.75 of peak at batch 32 against a target of 0.70 (meets it)" \
        in sentence


def test_verdict_notes_become_a_column_and_other_notes_survive(tmp_path):
    _write_benchmark(tmp_path / "bench")
    page = render_speed([tmp_path / "bench"], [])
    assert "misses target by" not in page  # no bullet restating the table
    rows = {r["batch"]: r for r in table_rows(page, "against target")}
    assert rows["1"]["against target"] == "misses by 30.0 pts"
    assert rows["32"]["against target"] == "met"
    assert rows["32"]["note"] == "measured at 2 of 50 steps (--max-steps)"


@pytest.mark.parametrize("ratio, sense, verdict", [(1.25, "authors / suite", "met"),
                                                   (0.8, "suite / authors", "met")])
def test_side_by_side_renders_each_ratio_beside_its_target(tmp_path, ratio, sense, verdict):
    """Either ratio convention (2.0 / 1.6 = 1.25 or 1.6 / 2.0 = 0.8) reads as the suite being faster;
    the target's direction follows the convention."""
    bench = tmp_path / "bench"
    _write_benchmark(bench)
    target = 1.0
    (bench / "side_by_side").mkdir()
    (bench / "side_by_side" / "mld.json").write_text(json.dumps({**SIDE, "ratio": ratio, "target": target}),
                                                     encoding="utf-8")
    page = render_speed([bench], [])
    assert page.index("## Versus the authors' code") < page.index("# Details")
    (row,) = table_rows(page, "authors' code (s)")
    assert row["ratio"] == f"{ratio:.2f} ({sense})"
    assert row["target"] == ("≥ 1.00" if sense.startswith("authors") else "≤ 1.00")
    assert row["against target"] == f"not judged (distorted; would read {verdict})"
    assert row["authors' code (s)"] == "2" and row["suite (s)"] == "1.6"
    assert "**distorted**" in row["cpu/wall"] and row["machine"] == "Test CPU 9000, 2 thr"
    assert row["commit, date"] == "abc1234, 2026-12-06"


def test_a_missed_side_by_side_target_says_so(tmp_path):
    bench = tmp_path / "bench"
    (bench / "side_by_side").mkdir(parents=True)
    # the suite is slower: authors / suite = 0.5 against a target of at least 0.9
    (bench / "side_by_side" / "x.json").write_text(json.dumps(
        {**SIDE, "official_s": 1.0, "suite_s": 2.0, "ratio": 0.5, "target": 0.9, "distorted": False}),
        encoding="utf-8")
    (row,) = table_rows(render_speed([bench], []), "authors' code (s)")
    assert row["against target"] == "missed"


def test_a_side_by_side_file_without_its_fields_is_named(tmp_path):
    bench = tmp_path / "bench"
    (bench / "side_by_side").mkdir(parents=True)
    (bench / "side_by_side" / "broken.json").write_text(json.dumps({"workload": "x"}), encoding="utf-8")
    with pytest.raises(BenchmarkFileError, match=r"broken\.json.*official_s"):
        render_speed([bench], [])


def test_each_machine_keeps_its_ratios_and_one_workload_sits_together(tmp_path):
    """A ratio holds on the CPU that measured it: files of two CPU models, each in its own folder,
    are both rendered, the rows of one workload next to each other, each with its own verdict."""
    bench = tmp_path / "bench"
    for folder, machine, ratio in (("cpu-b", "CPU B", 1.1), ("cpu-a", "CPU A", 2.1)):
        (bench / "side_by_side" / folder).mkdir(parents=True)
        for workload in ("w1", "w2"):
            (bench / "side_by_side" / folder / f"{workload}.json").write_text(json.dumps(
                {**SIDE, "workload": workload, "machine": machine, "ratio": ratio, "official_s": 2.0 * ratio,
                 "suite_s": 2.0, "target": 2.0, "distorted": False}), encoding="utf-8")
    rows = table_rows(render_speed([bench], []), "authors' code (s)")
    assert [(r["workload"], r["machine"]) for r in rows] == [
        ("w1", "CPU A, 2 thr"), ("w1", "CPU B, 2 thr"), ("w2", "CPU A, 2 thr"), ("w2", "CPU B, 2 thr")]
    assert [r["against target"] for r in rows] == ["met", "missed", "met", "missed"]
