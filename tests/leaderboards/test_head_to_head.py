"""Head-to-head page: paired intervals computed from the records' per-repetition values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from leaderboards.head_to_head import compare, paired_groups, render_head_to_head


def _rec(method, fids, seed=0, variant=""):
    return {"method": method, "dataset": "synth_t2m", "protocol": "text2motion", "variant": variant,
            "data": "synthetic", "scale": "smoke", "seed": seed,
            "extra": {"per_repetition": [{"fid": f, "r_precision_top3": 0.5} for f in fids]}}


def test_interval_equals_the_paired_t_interval():
    a, b = [1.0, 1.4, 0.9, 1.2, 1.1], [2.0, 2.1, 1.7, 2.4, 1.9]
    got = compare(_rec("x", a), _rec("y", b))["fid"]
    ci = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert got["diff"] == pytest.approx(np.mean(np.subtract(a, b)))
    assert (got["low"], got["high"]) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert got["excludes_zero"] and got["verdict"] == "A better"  # lower FID is better


def test_only_records_sharing_their_draws_are_paired():
    recs = [_rec("x", [1, 2]), _rec("y", [1, 3]), _rec("z", [1, 2], seed=1), _rec("w", [5, 6], variant="steps=5")]
    groups = paired_groups(recs)
    assert [[r["method"] for r in g] for g in groups.values()] == [["x", "y"]]


def test_not_significant_is_printed_and_not_ranked():
    text = render_head_to_head([_rec("x", [1.0, 2.0, 1.5]), _rec("y", [1.5, 1.5, 1.6])])
    row = next(line for line in text.splitlines() if line.startswith("| x vs y"))
    assert "not significant" in row and "better" not in row.split("|")[3] and "worse" not in row.split("|")[3]
