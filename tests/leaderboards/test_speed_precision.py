"""bf16 sampling rows (benchmarks/test_methods.py::test_sampling_bf16_*) in speed.md."""

from __future__ import annotations

import json

from leaderboards.speed import render_speed


def _samp(name, median, batch, precision=None, **extra):
    info = {"what": "sampling", "method": "mld", "batch": batch, "steps": 50, "aits_s": median / batch,
            "target_fraction": 0.7, **extra}
    if precision:
        info.update(precision=precision, peak_dtype=precision)
    return {"name": name, "stats": {"median": median, "iqr": 0.0, "rounds": 1}, "extra_info": info}


def test_bf16_rows_get_their_own_table_and_leave_the_fp32_rows_alone(tmp_path):
    data = {"machine_info": {"scale": "paper", "peak_gflops": {"fp32": 100.0, "bf16": 400.0}}, "datetime": "d",
            "benchmarks": [_samp("test_sampling_batch32[mld-default]", 8.0, 32, fraction_of_peak=0.25),
                           _samp("test_sampling_bf16_batch32[mld]", 4.0, 32, "bf16", fraction_of_peak=0.125)]}
    (tmp_path / "cpu-paper.json").write_text(json.dumps(data))
    md = render_speed([tmp_path], [])
    per_method = md.split("### Per method")[1].split("###")[0]
    mld = next(line for line in per_method.splitlines() if line.startswith("| mld"))
    assert "0.25" in mld and "0.125" not in mld  # the per-method row is the fp32 one
    table = md.split("### Sampling at bf16")[1].split("###")[0]
    row = next(line for line in table.splitlines() if line.startswith("| mld"))
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[:4] == ["mld", "32", "50", "bf16"]
    assert "0.25" in cells[4] and "0.125" in cells[5] and "×2.00" in cells[6]  # AITS fp32, bf16, speed-up
    assert "0.125 / 0.70 (misses by 57.5 pts) (of the bf16 peak)" in row
