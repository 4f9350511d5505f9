"""Records -> leaderboards: comparable rows beside the paper, pipeline checks apart, stale check."""

from __future__ import annotations

import json

import pytest

from evaluators.provenance import entry
from evaluators.records import RecordError, make_record, read_record, write_record
from leaderboards.__main__ import main as lb_main
from leaderboards.make_tables import regenerate, render_all, summary_table

# the provenance configs/method/mld.yaml declares as the paper's setting
MLD_PAPER = {"text_encoder": entry("clip-vit-l14", "CLIP ViT-L/14"), "evaluator": entry("official", "official"),
             "word_vectors": entry("glove", "GloVe"), "weights": entry("trained-here", "trained here"),
             "vae_loss": entry("smooth_l1_joints", "authors' loss")}


def _rec(**kw):
    base = dict(provenance=MLD_PAPER, method="mld", dataset="humanml3d", protocol="text2motion", data="real", scale="paper", seed=0,
                config={"x": 1}, metrics={"fid": {"value": 0.5, "ci95": 0.01}, "r_precision_top3": 0.75},
                n_samples={"expected": 4384, "evaluated": 4384}, git={"commit": "abc", "dirty": False},
                hardware={"cpu": "test-cpu", "cpu_count": 2, "gpu": None}, started="2026-11-22T00:00:00Z")
    base.update(kw)
    return make_record(**base)


def test_record_round_trip_and_validation(tmp_path):
    rec = _rec()
    path = write_record(rec, tmp_path)
    assert read_record(path) == rec
    assert rec["metrics"]["fid"]["higher_is_better"] is False
    bad = dict(rec, data="made-up")
    p2 = tmp_path / "bad.json"
    p2.write_text(json.dumps(bad))
    with pytest.raises(RecordError, match="bad.json"):
        read_record(p2)


def test_missing_key_is_reported_by_file_name(tmp_path, caplog):
    rec = _rec()
    del rec["scale"]
    p = tmp_path / "r.json"
    p.write_text(json.dumps(rec))
    with pytest.raises(RecordError, match=r"r\.json.*scale"):
        read_record(p)
    # regenerating skips it with one warning naming the file; --check (what CI runs) refuses it
    with caplog.at_level("WARNING"):
        assert lb_main(["--results", str(tmp_path), "--out", str(tmp_path / "out")]) == 0
    assert any("r.json" in r.getMessage() and "scale" in r.getMessage() for r in caplog.records)
    assert lb_main(["--check", "--results", str(tmp_path), "--out", str(tmp_path / "out")]) == 2


def test_real_paper_row_is_beside_the_paper_with_delta(tmp_path):
    write_record(_rec(), tmp_path)
    md = render_all([tmp_path])["mld.md"]
    section = md.split("## Text-to-motion on HumanML3D")[1].split("## ")[0]
    reproduced = section.split("**Reproduced (real data, paper scale):**")[1]
    assert "0.500 ± 0.010" in reproduced
    assert "Δ +0.027" in reproduced  # 0.500 - 0.473 (MLD-1 FID)
    assert "MLD-1" in reproduced


def test_synthetic_rows_only_in_pipeline_checks(tmp_path):
    write_record(_rec(dataset="synth_t2m", data="synthetic", scale="smoke",
                      metrics={"fid": 123.25}), tmp_path)
    md = render_all([tmp_path])["mld.md"]
    head, checks = md.split("## Pipeline checks")
    assert "123.25" not in head
    assert "123.25" in checks and "synthetic" in checks


def test_dirty_or_undersampled_records_are_daggered(tmp_path):
    write_record(_rec(git={"commit": "abc", "dirty": True}), tmp_path)
    md = render_all([tmp_path])["mld.md"]
    assert "mld †" in md


def test_check_detects_stale_and_regenerate_fixes(tmp_path):
    out = tmp_path / "lb"
    res = tmp_path / "res"
    res.mkdir()
    regenerate([res], out, bench_dirs=[], plots=False)
    assert regenerate([res], out, bench_dirs=[], check=True) == []
    write_record(_rec(), res)
    stale = regenerate([res], out, bench_dirs=[], check=True)
    assert out / "mld.md" in stale
    regenerate([res], out, bench_dirs=[], plots=False)
    assert regenerate([res], out, bench_dirs=[], check=True) == []


def test_summary_table_lists_records():
    txt = summary_table([_rec()])
    row = next(line for line in txt.splitlines() if line.startswith("mld"))
    assert row.split()[:5] == ["mld", "humanml3d", "0.500", "±", "0.010"] and row.endswith("comparable")
    assert txt.splitlines()[1].split()[3:5] == ["fid", "↓"]
    assert "not comparable: text encoder MiniLM" in summary_table(
        [_rec(provenance={**MLD_PAPER, "text_encoder": entry("minilm", "MiniLM")})])


def test_committed_leaderboards_are_fresh():
    """The committed markdown equals what the committed references/results generate."""
    assert regenerate(check=True) == []


def _submitted(**kw):
    """A record as ``./reproduce.sh score`` writes it (evaluators/runner/score.py)."""
    prov = {"weights": entry("submitted", "submitted (mld)", sha256="ab" * 32, model="mld", paper="MLD, CVPR 2023"),
            "evaluator": entry("official", "official"), "word_vectors": entry("glove", "GloVe")}
    cfg = {"method": {"submission": {"model": "mld"}, "paper_setting": {"evaluator": "official", "word_vectors": "glove"}}}
    return _rec(provenance=prov, config=cfg, metrics={"fid": {"value": 0.61, "ci95": 0.02}}, **kw)


def test_submission_is_listed_as_submitted_never_as_reproduction(tmp_path):
    """A submitted record named like a suite method (mld) appears only under Submitted, with the
    evaluator-side verdict (official evaluator, real data, paper scale: comparable)."""
    write_record(_submitted(), tmp_path)
    md = render_all([tmp_path])["mld.md"]
    section = md.split("## Text-to-motion on HumanML3D")[1].split("## ")[0]
    reproduced, submitted = section.split("**Reproduced (real data, paper scale):**")[1].split("**Submitted")
    assert "0.610" not in reproduced and "_none yet_" in reproduced
    assert "0.610 ± 0.020" in submitted and "MLD, CVPR 2023" in submitted and "abababababab" in submitted
    assert "| comparable" in submitted
    rest = md.split("## Not comparable")[1]
    assert "0.610" not in rest and "submitted" not in rest


def test_submission_with_a_retrained_evaluator_is_not_comparable(tmp_path):
    rec = _submitted()
    rec["provenance"]["evaluator"] = entry("retrained", "T2M evaluator retrained here")
    write_record(rec, tmp_path)
    submitted = render_all([tmp_path])["mld.md"].split("**Submitted")[1].split("## ")[0]
    assert "not comparable: T2M evaluator retrained here" in submitted
