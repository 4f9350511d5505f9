"""The closing table of a run / the demo: one table per protocol, headline metrics with units,
one number format, within 120 columns."""

from __future__ import annotations

from pathlib import Path

from evaluators.records import read_records
from leaderboards.make_tables import summary_table
from leaderboards.summary import cell, header, headline_metrics

REPO = Path(__file__).resolve().parents[2]


def test_published_records_fit_120_columns_one_table_per_protocol():
    recs = read_records(REPO / "leaderboards" / "results")
    text = summary_table(recs)
    assert max(map(len, text.splitlines())) <= 120
    protocols = {r["protocol"] for r in recs}
    for p in protocols:
        assert f"\n{p}\n" in f"\n{text}\n"
    t2m = text.split("\ntext2motion\n", 1)[1].split("\n\n", 1)[0]
    assert t2m.splitlines()[0].split()[3:5] == ["fid", "↓"]  # the headline metric leads


def test_headline_order_and_formats():
    recs = [{"metrics": {"r_precision_top1": {}, "r_precision_top3": {}, "mm_dist": {}, "fid": {}, "diversity": {}}}]
    assert headline_metrics(recs) == ["fid", "r_precision_top3", "mm_dist", "r_precision_top1"]
    assert cell({"value": 9.142, "ci95": 5.09e-4}) == "9.142 ± 0.001"
    assert cell({"value": 12.3456, "ci95": 0.25}) == "12.35 ± 0.25"
    assert cell({"value": 2e-4, "ci95": 1e-5}) == "2.00e-04 ± 1.00e-05"
    assert header("mpjpe_mm") == "mpjpe ↓ [mm]" and header("r_precision_top3") == "R@3 ↑"
