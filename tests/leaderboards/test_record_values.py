"""Run records reject non-finite metric values and malformed intervals (by file name)."""

from __future__ import annotations

import json

import pytest

from evaluators.records import RecordError, make_record, read_record


def _rec(**metrics):
    return make_record(method="mld", dataset="synth_t2m", protocol="text2motion", metrics=metrics or {"fid": 1.0},
                       data="synthetic", scale="smoke", seed=0, config={}, git={"commit": "abc", "dirty": False},
                       hardware={"device": "cpu"})


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_metric_is_rejected_on_write(value):
    with pytest.raises(RecordError, match="fid"):
        _rec(fid=value)


@pytest.mark.parametrize("ci", ["wide", float("inf"), True])
def test_bad_ci95_is_rejected_on_read_naming_the_file(tmp_path, ci):
    rec = _rec(fid={"value": 1.0, "ci95": 0.1})
    rec["metrics"]["fid"]["ci95"] = ci
    path = tmp_path / "r.json"
    path.write_text(json.dumps(rec))
    with pytest.raises(RecordError, match=r"r\.json.*ci95"):
        read_record(path)


def test_finite_value_and_interval_pass():
    assert _rec(fid={"value": 1.5, "ci95": 0.2})["metrics"]["fid"]["ci95"] == pytest.approx(0.2)
