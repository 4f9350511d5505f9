"""Action recognisers (official key layouts, trainable) and the action2motion protocol end to end."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluators.networks.action_recognition import STGCN, Graph, MotionDiscriminatorA2M
from evaluators.networks.action_train import action_split, pad_motions, recognizer_outputs, train_recognizer
from evaluators.protocols import RunContext, get_protocol
from evaluators.records import make_record


class TinyAction:
    """k action classes of [T, 24, 3] joint sequences: class c oscillates joint group c (test-only)."""

    name = "tiny_action"
    split_names = ("train", "test")

    def __init__(self, n=48, k=4, seed=0):
        rng = np.random.default_rng(seed)
        self.num_classes = k
        self._s = {}
        for split in self.split_names:
            motions, labels = [], []
            for i in range(n):
                c = i % k
                t = int(rng.integers(20, 31))
                x = 0.1 * rng.normal(size=(t, 24, 3)).astype(np.float32)
                x[:, c * 6:(c + 1) * 6, c % 3] += np.sin(np.arange(t) / 3.0)[:, None] * 2
                motions.append(x)
                labels.append(c)
            self._s[split] = {"motions": motions, "labels": np.array(labels)}

    def split(self, name):
        return [{"motion": m, "label": lab} for m, lab in zip(self._s[name]["motions"], self._s[name]["labels"])]


class ClassGenerator:
    """Test-only action-conditioned generator: a random training motion of the class, cropped/looped."""

    def __init__(self, data, shuffle_labels=False):
        self.train = action_split(data, "train")
        self.rng = np.random.default_rng(0)
        self.shuffle_labels = shuffle_labels

    def fit(self, dataset):
        pass

    def generate(self, conditions, lengths, steps=None):
        out = np.zeros((len(conditions), max(lengths), 24, 3), np.float32)
        for b, (c, n) in enumerate(zip(conditions, lengths)):
            c = (c + 1) % 4 if self.shuffle_labels else c
            m = self.train.motions[int(self.rng.choice(np.flatnonzero(self.train.labels == c)))]
            out[b, :n] = np.concatenate([m] * (n // len(m) + 1))[:n]
        return torch.from_numpy(out)


def test_stgcn_official_key_layout_and_graph():
    m = STGCN(in_channels=6, num_class=40, layout="smpl")
    keys = set(m.state_dict())
    for k in ("A", "data_bn.running_mean", "st_gcn_networks.0.gcn.conv.weight", "st_gcn_networks.0.tcn.2.weight",
              "st_gcn_networks.4.residual.0.weight", "st_gcn_networks.7.residual.1.running_var",
              "edge_importance.9", "fcn.weight"):
        assert k in keys
    assert "st_gcn_networks.0.residual.0.weight" not in keys and "st_gcn_networks.1.residual.0.weight" not in keys
    assert tuple(m.state_dict()["st_gcn_networks.0.gcn.conv.weight"].shape) == (64 * 3, 6, 1, 1)
    assert tuple(m.state_dict()["data_bn.weight"].shape) == (6 * 24,)
    # strict round trip; columns of the normalised adjacency sum to 1 (normalize_digraph)
    STGCN(in_channels=6, num_class=40).load_state_dict(m.state_dict(), strict=True)
    a = Graph("smpl").A.sum(0)
    np.testing.assert_allclose(a.sum(0), np.ones(24), rtol=1e-6)
    # the graph built from a dataset's kinematic chains equals ACTOR's SMPL graph for SMPL chains
    smpl_chains = [[0, 2, 5, 8, 11], [0, 1, 4, 7, 10], [0, 3, 6, 9, 12, 15], [9, 14, 17, 19, 21, 23],
                   [9, 13, 16, 18, 20, 22]]
    np.testing.assert_array_equal(Graph("chains", 24, smpl_chains).A, Graph("smpl").A)
    g = MotionDiscriminatorA2M()
    assert sorted(k.split(".")[0] for k in g.state_dict()) .count("recurrent") == 8
    assert tuple(g.state_dict()["recurrent.weight_ih_l0"].shape) == (3 * 128, 72)


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
@pytest.mark.parametrize("kind,network", [("a2m_gru", {}), ("stgcn", {"widths": [8, 8, 16]})])
def test_recognizer_trains_above_chance(tmp_path, monkeypatch, kind, network):
    monkeypatch.setenv("MOTIONREPRO_CACHE", str(tmp_path))
    torch.set_num_threads(1)
    data = TinyAction()
    net = train_recognizer(data, kind=kind, steps=60, lr=3e-3, batch_size=32, network=network, num_frames=24)
    test = action_split(data, "test")
    torch.manual_seed(0)
    logits, feats = recognizer_outputs(net, *pad_motions(test.motions))
    acc = (logits.argmax(1) == test.labels).mean()
    assert acc > 0.6, acc  # chance 0.25
    assert len(list((tmp_path / "evaluators").glob("*.pt"))) == 1


def test_action2motion_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("MOTIONREPRO_CACHE", str(tmp_path))
    torch.set_num_threads(1)
    data = TinyAction()
    net = train_recognizer(data, kind="a2m_gru", steps=60, lr=3e-3, batch_size=32, num_frames=24)
    ctx = RunContext(seed=0, extra={"action_recognizer": net})
    cfg = {"repetitions": 2, "diversity_times": 50, "multimodality_times": 5, "num_frames": 24}
    spec = get_protocol("action2motion")
    real, gen = spec.fn(ClassGenerator(data), data, cfg, ctx)
    _, wrong = spec.fn(ClassGenerator(data, shuffle_labels=True), data, cfg, ctx)
    assert real.variant == "real" and gen.variant == ""
    for key in ("accuracy", "fid_train", "fid_test", "diversity", "multimodality"):
        assert np.isfinite(gen.metrics[key]["value"]) and gen.metrics[key]["ci95"] >= 0
    assert gen.metrics["accuracy"]["value"] > wrong.metrics["accuracy"]["value"]
    assert len(gen.extra["per_repetition"]) == 2
    rec = make_record(method="class_gen", dataset="tiny_action", protocol="action2motion", metrics=gen.metrics,
                      data="synthetic", scale="smoke", seed=0, config=cfg, n_samples=gen.n_samples, extra=gen.extra)
    assert rec["metrics"]["fid_train"]["higher_is_better"] is False
