"""Head-to-head page: paired intervals computed from the records' per-repetition values, and the
unpaired comparison of comparable records with the papers' published intervals."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from evaluators.metrics import generation as G
from evaluators.provenance import entry
from evaluators.records import make_record, write_record
from leaderboards.head_to_head import compare, paired_groups, render_head_to_head
from leaderboards.make_tables import render_all


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


# the provenance configs/method/mld.yaml declares as the paper's setting (a comparable record)
MLD_PAPER = {"text_encoder": entry("clip-vit-l14", "CLIP ViT-L/14"), "evaluator": entry("official", "official"),
             "word_vectors": entry("glove", "GloVe"), "weights": entry("trained-here", "trained here"),
             "vae_loss": entry("smooth_l1_joints", "authors' loss")}


def _mld_record(fids, data="real", keep_reps=True):
    mean, ci = G.confidence_interval(fids)
    extra = {"repetitions": len(fids)}
    if keep_reps:
        extra["per_repetition"] = [{"fid": f} for f in fids]
    return make_record(provenance=MLD_PAPER, method="mld", dataset="humanml3d", protocol="text2motion", data=data,
                       scale="paper", seed=0, config={"x": 1}, metrics={"fid": {"value": mean, "ci95": ci}},
                       n_samples={"expected": 4384, "evaluated": 4384}, git={"commit": "abc", "dirty": False},
                       hardware={"cpu": "test-cpu", "cpu_count": 2, "gpu": None}, started="2026-11-22T00:00:00Z",
                       extra=extra)


def _vs_paper_row(md: str, method: str = "mld") -> dict[str, str]:
    section = md.split("## Against the paper (unpaired)")[1].split("### Text-to-motion on HumanML3D")[1]
    table = [line for line in section.splitlines() if line.startswith("|")]
    header = [c.strip() for c in table[0].strip("|").split("|")]
    row = next(line for line in table[2:] if line.strip("| ").startswith(method))
    return dict(zip(header, (c.strip() for c in row.strip("|").split("|")), strict=True))


def test_vs_paper_is_welchs_interval_of_both_runs(tmp_path):
    """MLD-1's published FID 0.473 ± .013 over 20 repetitions: rebuilding 20 repetitions with exactly
    that mean and interval, scipy's Welch interval of (ours, theirs) is the page's cell."""
    rng = np.random.default_rng(3)
    ours = rng.normal(0.50, 0.03, size=10)
    z = rng.normal(size=20)
    z = (z - z.mean()) / z.std()                        # population std 1
    theirs = 0.473 + 0.013 / 1.96 * np.sqrt(20) * z     # mean 0.473, 1.96 std_pop / sqrt(20) = 0.013
    assert G.confidence_interval(theirs) == (pytest.approx(0.473), pytest.approx(0.013))
    write_record(_mld_record(list(ours)), tmp_path)
    row = _vs_paper_row(render_all([tmp_path])["head_to_head.md"])
    ci = stats.ttest_ind(ours, theirs, equal_var=False).confidence_interval(0.95)
    diff = ours.mean() - 0.473
    assert row["vs paper row"] == "MLD-1" and row["R ours"] == "10" and row["R paper"] == "20"
    assert row["FID"].startswith(f"unpaired {diff:+.3f} [{ci.low:+.3f}, {ci.high:+.3f}]")
    assert row["MModality"] == ""          # published with a ±, but this record does not measure it


def test_vs_paper_from_the_record_interval_equals_the_per_repetition_value(tmp_path):
    fids = [0.60, 0.62, 0.58, 0.61, 0.63, 0.59]
    a, b = tmp_path / "a", tmp_path / "b"
    write_record(_mld_record(fids), a)
    write_record(_mld_record(fids, keep_reps=False), b)
    with_reps = _vs_paper_row(render_all([a])["head_to_head.md"])
    from_ci = _vs_paper_row(render_all([b])["head_to_head.md"])
    assert with_reps["FID"] == from_ci["FID"] and "**ours worse**" in with_reps["FID"]   # 0.605 vs 0.473


def test_vs_paper_leaves_out_records_that_are_not_comparable(tmp_path):
    write_record(_mld_record([0.6, 0.7, 0.65], data="synthetic"), tmp_path)
    md = render_all([tmp_path])["head_to_head.md"]
    assert "## Against the paper (unpaired)" in md and "_No comparable record" in md
    assert render_head_to_head([]).count("Against the paper") == 0   # no papers given: no section
