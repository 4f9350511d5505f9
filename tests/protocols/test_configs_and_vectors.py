"""Protocol configs resolve at both scales with known keys; official GloVe loader and POS rules."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from evaluators.core.config import REPO, load_config
from evaluators.networks import t2m_train
from evaluators.networks.word_vectors import POS_ENUMERATOR, GloveVectors, pos_onehot

# the files that read each protocol's config (the YAML holds the defaults; the code reads keys by name)
PROTOCOL_SOURCES = {"text2motion": ("text2motion.py", "_t2m_helpers.py"), "action2motion": ("action2motion.py",),
                    "reconstruction": ("reconstruction.py", "_t2m_helpers.py")}
TRAIN_KEYS = set(t2m_train.DEFAULTS)


def _unknown(cfg: dict, source: str, prefix: str = "") -> list[str]:
    """Keys of ``cfg`` that no reading code names (a typo in the YAML would be silently ignored)."""
    bad = []
    for k, v in cfg.items():
        if k == "name" and not prefix:  # load_config adds the name
            continue
        if f'"{k}"' not in source and f"'{k}'" not in source:
            bad.append(prefix + k)
        elif isinstance(v, dict) and k not in ("train", "network"):
            bad += _unknown(v, source, prefix + k + ".")
    return bad


@pytest.mark.parametrize("name", sorted(PROTOCOL_SOURCES))
@pytest.mark.parametrize("scale", ["paper", "smoke"])
def test_protocol_config_keys_are_known(name, scale):
    cfg = load_config("protocol", name, scale)
    source = "".join((REPO / "evaluators" / "protocols" / f).read_text() for f in PROTOCOL_SOURCES[name])
    assert not _unknown(cfg, source), _unknown(cfg, source)
    if name in ("text2motion", "reconstruction"):
        assert set(cfg["evaluator"]["train"]) <= TRAIN_KEYS
    if name == "text2motion":
        assert cfg["batch_size"] == 32 and cfg["diversity_times"] == 300
        if scale == "paper":
            assert cfg["repetitions"] == 20 and cfg["mm"]["num_samples"] == 100
            assert cfg["mm"]["num_repeats"] == 30 and cfg["mm"]["num_times"] == 10
    if name == "action2motion" and scale == "paper":
        assert cfg["repetitions"] == 20 and cfg["diversity_times"] == 200 and cfg["multimodality_times"] == 20


def test_glove_vectors_official_files_and_vip_rules(tmp_path):
    words = ["sos", "eos", "unk", "walk", "the", "left"]
    vecs = np.arange(len(words) * 300, dtype=np.float32).reshape(len(words), 300)
    np.save(tmp_path / "our_vab_data.npy", vecs)
    with open(tmp_path / "our_vab_words.pkl", "wb") as fh:
        pickle.dump(words, fh)
    with open(tmp_path / "our_vab_idx.pkl", "wb") as fh:
        pickle.dump({w: i for i, w in enumerate(words)}, fh)
    g = GloveVectors(tmp_path)
    v, p = g["walk/VERB"]
    np.testing.assert_array_equal(v, vecs[3])
    assert p.argmax() == POS_ENUMERATOR["Act_VIP"]  # VIP list overrides the spaCy tag
    assert g["the/DET"][1].argmax() == POS_ENUMERATOR["DET"]
    assert g["left/ADJ"][1].argmax() == POS_ENUMERATOR["Loc_VIP"]
    v, p = g["zebra/NOUN"]  # unknown word -> unk vector, OTHER
    np.testing.assert_array_equal(v, vecs[2])
    assert p.argmax() == POS_ENUMERATOR["OTHER"]
    w, pos, n = g.encode_tokens(["walk/VERB"] * 25)
    assert w.shape == (22, 300) and pos.shape == (22, 15) and n == 22  # 20 tokens + sos + eos
    w, pos, n = g.encode_tokens(["the/DET", "walk/VERB"])
    assert n == 4 and np.array_equal(w[0], vecs[0]) and np.array_equal(w[3], vecs[1]) and np.array_equal(w[4], vecs[2])
    assert pos_onehot("nonsense").argmax() == POS_ENUMERATOR["OTHER"]
    with pytest.raises(FileNotFoundError):
        GloveVectors(tmp_path / "missing")
