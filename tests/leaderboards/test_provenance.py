"""Provenance entries, collection and comparison with a paper setting (evaluators/provenance.py)."""

import hashlib

import pytest

from evaluators import provenance as P
from evaluators.records import RecordError, environment_info, make_record, validate_record


def test_sha256_file_matches_hashlib(tmp_path):
    f = tmp_path / "w.bin"
    f.write_bytes(b"abc" * 1000)
    assert P.sha256_file(f) == hashlib.sha256(b"abc" * 1000).hexdigest()


def test_sha256_tree_changes_with_content_and_name(tmp_path):
    (tmp_path / "a.json").write_text("{}")
    h1 = P.sha256_tree(tmp_path)
    (tmp_path / "a.json").write_text("{ }")
    h2 = P.sha256_tree(tmp_path)
    (tmp_path / "a.json").rename(tmp_path / "b.json")
    assert len({h1, h2, P.sha256_tree(tmp_path)}) == 3


def test_weights_defaults(tmp_path):
    ck = tmp_path / "m.ckpt"
    ck.write_bytes(b"x")
    assert P.weights_entry(checkpoint=ck)["sha256"] == hashlib.sha256(b"x").hexdigest()
    assert P.weights_entry(checkpoint=ck)["id"] == "official-converted"
    assert P.weights_entry(workdir=tmp_path)["id"] == "trained-here"
    assert P.weights_entry(trained=False)["id"] == "untrained"


def test_collect_merges_method_then_protocol_and_ours():
    class M:
        def provenance(self):
            return {"text_encoder": P.entry("minilm", "MiniLM"), "evaluator": P.entry("x", "x")}

    cfg = {"htm": {"alpha_0": 0.0}, "non_paper": [{"htm.alpha_0": "HGM3 endpoints unknown"}]}
    prov = P.collect(M(), method_cfg=cfg, protocol={"evaluator": P.entry("official", "official")})
    assert prov["evaluator"]["id"] == "official"            # protocol wins over method
    assert prov["text_encoder"]["id"] == "minilm"
    assert prov["weights"]["id"] == "trained-here"
    assert prov["ours.htm.alpha_0"]["value"] == 0.0
    assert P.ours_labels(prov) == ["htm.alpha_0 = 0.0"]


def test_non_paper_key_missing_is_an_error():
    with pytest.raises(P.ProvenanceError, match="htm.nope"):
        P.ours_entries({"non_paper": ["htm.nope"]})


def test_differences_one_line_per_reason():
    setting = {"evaluator": "official", "text_encoder": "clip-vit-l14", "weights": ["trained-here", "official-converted"]}
    ok = {"evaluator": P.entry("official"), "text_encoder": P.entry("clip-vit-l14"), "weights": P.entry("trained-here")}
    assert P.differences(ok, setting) == []
    k, e = P.recipe_entry("fusion", "on", paper=False, paper_value="off")
    assert P.differences({**ok, k: e}, setting) == ["recipe fusion on (paper: off)"]
    k2, e2 = P.recipe_entry("fusion", "off", paper=True)
    assert P.differences({**ok, k2: e2}, setting) == []
    bad = {**ok, "evaluator": P.entry("retrained", "evaluator retrained (MiniLM word vectors)"),
           "text_encoder": P.entry("minilm", "MiniLM")}
    assert P.differences(bad, setting) == ["evaluator retrained (MiniLM word vectors)", "text encoder MiniLM"]
    assert P.differences(ok, setting, data="synthetic", scale="smoke") == ["synthetic data", "smoke scale"]
    assert P.differences(None, setting) == [P.NO_PROVENANCE]
    assert "not recorded" in P.differences({}, {"evaluator": "official"})[0]


def test_record_schema2_carries_provenance_and_environment():
    rec = make_record(method="m", dataset="d", protocol="p", metrics={"fid": 1.0}, data="real", scale="paper",
                      seed=0, config={}, provenance={"weights": P.entry("untrained")})
    assert rec["schema"] == 2 and rec["provenance"]["weights"]["id"] == "untrained"
    assert set(environment_info()["packages"]) >= {"torch", "numpy", "scipy", "sentence-transformers"}
    bad = dict(rec, provenance={"weights": {"label": "no id"}})
    with pytest.raises(RecordError, match="weights"):
        validate_record(bad)
    old = {k: v for k, v in rec.items() if k not in ("provenance", "environment")}
    validate_record(dict(old, schema=1))   # committed schema-1 records still read
    with pytest.raises(RecordError, match="provenance"):
        validate_record(dict(old, schema=2))
