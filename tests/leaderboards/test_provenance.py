"""Provenance entries, collection and comparison with a paper setting (evaluators/provenance.py)."""

import hashlib
import json

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


# -- leaderboard routing of hand-made records ------------------------------------------
from evaluators.provenance import entry  # noqa: E402
from evaluators.records import write_record  # noqa: E402
from leaderboards.make_tables import paper_setting, render_all  # noqa: E402

MLD_PAPER = {"text_encoder": entry("clip-vit-l14", "CLIP ViT-L/14"), "evaluator": entry("official", "official"),
             "word_vectors": entry("glove", "GloVe 6B-300d"), "weights": entry("trained-here", "trained here"),
             "vae_loss": entry("smooth_l1_joints", "authors' loss")}
# one departure from the paper setting each, with the words the Not-comparable line must show
ONE_OFF = {
    "text_encoder": (entry("minilm", "MiniLM"), "text encoder MiniLM"),
    "evaluator": (entry("retrained", "evaluator retrained (MiniLM word vectors)"),
                  "evaluator retrained (MiniLM word vectors)"),
    "word_vectors": (entry("minilm-projected", "MiniLM projected"), "word vectors MiniLM projected"),
    "weights": (entry("untrained", "untrained"), "weights untrained"),
    "vae_loss": (entry("mse", "MSE features + KL"), "vae loss MSE features + KL"),
}


def _mld(fid: float, prov, **kw):
    base = dict(method="mld", dataset="humanml3d", protocol="text2motion", data="real", scale="paper", seed=0,
                config={}, metrics={"fid": fid}, n_samples={"expected": 4384, "evaluated": 4384},
                git={"commit": "abc", "dirty": False}, hardware={"cpu": "c", "cpu_count": 2, "gpu": None},
                started="2026-11-22T00:00:00Z", provenance=prov)
    base.update(kw)
    return make_record(**base)


def _sections(md: str) -> tuple[str, str, str]:
    body, rest = md.split("## Not comparable", 1)
    nc, checks = rest.split("## Pipeline checks", 1)
    return body, nc, checks


def test_mld_paper_setting_is_declared_in_its_config():
    assert set(paper_setting("mld")) == set(MLD_PAPER)


@pytest.mark.parametrize("key", sorted(ONE_OFF))
def test_one_provenance_difference_never_reaches_a_reproduced_row(tmp_path, key):
    bad, words = ONE_OFF[key]
    # a distinct variant per record keeps them apart in latest(); fid values are unique markers
    write_record(_mld(0.777, {**MLD_PAPER, key: bad}, variant=f"off-{key}"), tmp_path)
    body, nc, _ = _sections(render_all([tmp_path])["mld.md"])
    assert "0.777" not in body and "Δ" not in body
    line = [ln for ln in nc.splitlines() if f"off-{key}" in ln]
    assert len(line) == 1 and words in line[0], nc


def test_non_paper_recipe_switch_and_schema1_are_not_comparable(tmp_path):
    prov = {**MLD_PAPER, "recipe.cfg": {**entry("cfg=off", "classifier-free guidance off (paper: on)"),
                                        "paper": False}}
    write_record(_mld(0.555, prov, variant="recipe"), tmp_path)
    old = _mld(0.444, MLD_PAPER, variant="old")
    old = {k: v for k, v in old.items() if k not in ("provenance", "environment")}
    old["schema"] = 1
    (tmp_path / "old.json").write_text(json.dumps(old))
    body, nc, _ = _sections(render_all([tmp_path])["mld.md"])
    assert "0.555" not in body and "0.444" not in body
    assert "recipe classifier-free guidance off (paper: on)" in nc
    assert "no provenance (recorded before schema 2)" in nc


def test_fully_matching_record_reaches_its_row_with_delta(tmp_path):
    write_record(_mld(0.5, MLD_PAPER), tmp_path)
    body, nc, _ = _sections(render_all([tmp_path])["mld.md"])
    reproduced = body.split("## Text-to-motion on HumanML3D")[1].split("## ")[0]
    assert "0.500 (Δ +0.027" in reproduced  # 0.500 - 0.473 (MLD-1 FID, references/mld.yaml)
    assert "_none_" in nc


def test_ours_values_get_a_footnote_on_comparable_cells(tmp_path):
    ours = {"ours.zeta": {**entry("zeta=2.0", "zeta = 2.0"), "ours": True}}
    write_record(_mld(0.5, {**MLD_PAPER, **ours}), tmp_path)
    body, _, _ = _sections(render_all([tmp_path])["mld.md"])
    assert "‡1" in body and "‡1 depends on values we chose (no paper or official code fixes them): zeta = 2.0" in body


def test_ours_entry_scoped_to_protocols():
    cfg = {"augment": {"t_start": 400}, "non_paper": [{"key": "augment.t_start", "why": "w", "protocols": ["semi"]},
                                                      {"name": "rule", "value": "x"}]}
    prov = P.ours_entries(cfg)
    assert P.ours_labels(prov, "semi10") == ["augment.t_start = 400", "rule = x"]
    assert P.ours_labels(prov, "linear") == ["rule = x"]
    with pytest.raises(P.ProvenanceError, match="value"):
        P.ours_entries({"non_paper": [{"name": "rule"}]})


@pytest.mark.parametrize("method", ["macdiff", "mld", "momask", "hgm3", "diffusionpose", "heatmap_baseline"])
def test_every_method_config_declares_a_resolvable_paper_setting(method):
    from evaluators.core.config import load_config

    assert paper_setting(method), f"configs/method/{method}.yaml declares no paper_setting"
    for scale in ("paper", "smoke"):
        P.ours_entries(load_config("method", method, scale))  # every non_paper key exists in the config


def test_mld_action_records_name_their_representation_departure():
    from evaluators.core.config import load_config
    from methods import get_method

    cfg = load_config("method", "mld", "smoke")
    cfg.update(condition="action", nclasses=3, nfeats=72)
    prov = P.collect(get_method("mld")(cfg, seed=0), method_cfg=cfg)
    why = P.differences(prov, paper_setting("mld"))
    assert "recipe action motions as joint positions (paper: ACTOR VAE on SMPL rot6d)" in why


@pytest.mark.parametrize("method,key", [("mld", ("diffusion", "precision")), ("momask", ("sampler", "precision")),
                                        ("hgm3", ("sampler", "precision")), ("macdiff", ("sampling", "precision")),
                                        ("diffusionpose", ("precision",))])
def test_bf16_sampling_makes_a_record_non_comparable(method, key):
    """The papers' numbers are fp32: a bf16 run names that departure; an fp32 run carries no entry."""
    from evaluators.core.config import load_config
    from methods import get_method

    for value in ("fp32", "bf16"):
        cfg = load_config("method", method, "smoke")
        node = cfg
        for k in key[:-1]:
            node = node.setdefault(k, {})
        node[key[-1]] = value
        prov = P.collect(get_method(method)(cfg, seed=0), method_cfg=cfg)
        why = P.differences(prov, paper_setting(method))
        if value == "fp32":
            assert "recipe.precision" not in prov and not any("precision" in w or "bf16" in w for w in why)
        else:
            assert prov["recipe.precision"]["paper"] is False
            assert "recipe bf16 sampling (paper: fp32)" in why
