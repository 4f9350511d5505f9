"""speed.md's "bf16 quality drift" table from a drift JSON (``benchmarks/bf16_drift.py``), and no table without one."""

from __future__ import annotations

import json

import pytest

from leaderboards.speed import BenchmarkFileError, render_speed
from leaderboards.speed_drift import DRIFT_KIND, DRIFT_TITLE


def _metric(fp32, bf16, std):
    return {"fp32": fp32, "bf16": bf16, "diff": bf16 - fp32, "fp32_std": std,
            "abs_diff_over_fp32_std": abs(bf16 - fp32) / std}


def _doc():
    return {"kind": DRIFT_KIND, "schema": 1, "label": "SYNTHETIC data, SMOKE scale, not paper numbers",
            "data": "synthetic", "scale": "smoke", "command": "python -m benchmarks.bf16_drift --out x.json",
            "repetitions": 10, "seed": 0, "niceness": 10, "torch": "2.x", "torch_threads": 1,
            "git": {"commit": "abc123", "dirty": False}, "hardware": {"cpu": "Test CPU", "cpu_count": 2},
            "methods": {"mld": {"precision_key": "diffusion.precision", "checkpoint": {"match": "config hash"},
                                "raw_output_check": {"bf16_max_abs_diff": 0.02, "bf16_rel_max_abs_diff": 0.01,
                                                     "fp32_repeat_max_abs_diff": 0.0},
                                "n_samples": {"evaluated": 96}, "protocol_wall_s": {"fp32": 20.0, "bf16": 30.0},
                                "metrics": {"fid": _metric(17.5, 17.25, 0.5),
                                            "r_precision_top1": _metric(0.05, 0.0625, 0.0125),
                                            "mm_dist": _metric(8.5, 8.5, 0.25),
                                            "diversity": _metric(9.0, 9.5, 0.1)}},
                        "hgm3": {"precision_key": "sampler.precision", "metrics": {"fid": _metric(6.0, 9.0, 1.0)}}}}


def _rows(md: str, title: str) -> list[list[str]]:
    sec = md.split(f"## {title}", 1)[1].split("\n## ", 1)[0]
    table = sec.split("\n\n| method", 1)[1].split("\n\n", 1)[0]
    return [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines()[2:]]


def test_drift_table_rows(tmp_path):
    (tmp_path / "bf16-drift.json").write_text(json.dumps(_doc()))
    md = render_speed([tmp_path], [])
    assert f"## {DRIFT_TITLE}" in md and "not paper numbers" in md and "SYNTHETIC" in md
    assert "`python -m benchmarks.bf16_drift --out x.json` at niceness 10" in md and "abc123" in md
    rows = {(r[0], r[1]): r[2:] for r in _rows(md, DRIFT_TITLE)}
    # methods sorted, metrics in table order; diversity is not a table metric
    assert list(rows) == [("hgm3", "FID"), ("mld", "FID"), ("mld", "R-precision top-1"), ("mld", "MM-Dist")]
    assert rows[("mld", "FID")] == ["17.5", "17.25", "-0.25", "0.5", "0.50"]
    assert rows[("mld", "R-precision top-1")] == ["0.05", "0.0625", "+0.0125", "0.0125", "1.00"]
    assert rows[("mld", "MM-Dist")][2] == "+0" and rows[("hgm3", "FID")][4] == "3.00"
    checks = "\n".join(line for line in md.split(f"## {DRIFT_TITLE}", 1)[1].splitlines() if line.startswith("| mld"))
    assert "`method_cfg.diffusion.precision`" in checks and "config hash" in checks and "20 / 30" in checks


def test_no_drift_file_no_table_and_benchmarks_still_render(tmp_path):
    bench = {"machine_info": {"scale": "smoke"}, "datetime": "2026-01-01",
             "benchmarks": [{"name": "test_fid", "stats": {"median": 0.02, "iqr": 0.0, "rounds": 3},
                             "extra_info": {"what": "FID"}}]}
    (tmp_path / "cpu.json").write_text(json.dumps(bench))
    md = render_speed([tmp_path], [])
    assert DRIFT_TITLE not in md and "test_fid" in md
    assert DRIFT_TITLE not in render_speed([tmp_path / "missing"], [])
    # beside a pytest-benchmark file, the drift file is not read as one (and both render)
    (tmp_path / "bf16-drift.json").write_text(json.dumps(_doc()))
    md = render_speed([tmp_path], [])
    assert DRIFT_TITLE in md and "test_fid" in md


def test_malformed_drift_file_names_the_file(tmp_path):
    doc = _doc()
    del doc["methods"]
    (tmp_path / "bf16-drift.json").write_text(json.dumps(doc))
    with pytest.raises(BenchmarkFileError, match="bf16-drift.json.*methods"):
        render_speed([tmp_path], [])
