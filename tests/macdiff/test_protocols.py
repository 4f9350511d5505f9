"""linear / semi1 / semi10 / finetune protocols end to end on tiny data with a test-only method.

The protocols are generic: the method here is a small pooled-MLP encoder (not MacDiff) that
implements ``encode``, ``finetune_model`` and, optionally, ``augment``.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from evaluators.core.config import load_config
from evaluators.protocols import RunContext, get_protocol
from evaluators.protocols import transfer as transfer_protocol
from evaluators.protocols._skeleton_common import Finetunable, draw_subset, layer_decay_groups
from evaluators.protocols.linear import LinearProbe, fit_linear_probe
from evaluators.records import make_record
from methods.registry import get_method
from tests.macdiff.conftest import make_tiny


class _Classifier(nn.Module):
    def __init__(self, enc: nn.Module, num_classes: int) -> None:
        super().__init__()
        self.enc, self.head = enc, nn.Linear(16, num_classes)
        self.num_layers = 2

    def layer_id(self, name: str) -> int:
        return 1 if name.startswith("enc.") else 2

    def forward(self, x):
        return self.head(self.enc(x))


class _Enc(nn.Module):
    """``[B, 3, T, 25, M]`` -> per-joint motion energy ``[B, 25]`` -> MLP ``[B, 16]``."""

    def __init__(self) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(25 * 3, 16), nn.ReLU())

    def forward(self, x):
        vel = (x[:, :, 1:] - x[:, :, :-1]).abs().mean(dim=(2, 4))  # [B, 3, 25]
        return self.mlp(vel.flatten(1) * 10)


class ProbeMethod:
    """Test-only representation learner (no registry entry)."""

    window = 32
    device = "cpu"

    def __init__(self, with_augment: bool = False) -> None:
        torch.manual_seed(0)
        self.enc = _Enc()
        self.augment_calls: list[tuple[int, float]] = []
        if with_augment:
            self.augment = self._augment

    def pretrain(self, dataset) -> None:  # nothing to learn
        pass

    @torch.inference_mode()
    def encode(self, skeletons, pooling="joint"):
        f = self.enc(skeletons)
        return f if pooling == "joint" else f[:, :8]

    def finetune_model(self, num_classes, drop_path=0.3, head_dropout=0.3):
        return _Classifier(copy.deepcopy(self.enc), num_classes)

    def _augment(self, x, y, ratio, seed=0):
        self.augment_calls.append((len(x), ratio))
        n = int(round(ratio * len(x)))
        idx = torch.arange(n) % len(x)
        return x[idx] * 1.01, torch.as_tensor(y)[idx]


@pytest.fixture(scope="module")
def data():
    return make_tiny(n_train=48, n_test=24)


def _record(res, protocol):
    return make_record(method="probe", dataset="tiny", protocol=protocol, metrics=res.metrics, data="synthetic",
                       scale="smoke", seed=0, config={}, split=res.split, variant=res.variant,
                       n_samples=res.n_samples, extra=res.extra)


def test_linear_protocol_two_poolings_valid_records(data):
    out = get_protocol("linear").fn(ProbeMethod(), data, {"epochs": 15, "joint": {"batch_size": 16},
                                                          "mean": {"batch_size": 16}, "features": "frozen_once"},
                                    RunContext())
    assert [r.variant for r in out] == ["pool=joint,features=frozen_once", "pool=mean,features=frozen_once"]
    for r in out:
        rec = _record(r, "linear")
        assert rec["metrics"]["top1"]["value"] >= rec["metrics"]["top1_last"]["value"] - 1e-9
        assert r.n_samples == {"expected": 24, "evaluated": 24}
        assert r.extra["feature_dim"] == (16 if r.variant.startswith("pool=joint") else 8)
        assert r.extra["curve"][-1] == pytest.approx(r.metrics["top1_last"])
        assert max(r.extra["curve"]) == pytest.approx(r.metrics["top1"])
    # the probe learns the classes of the tiny set (chance = 33%)
    assert out[0].metrics["top1"] > 60


def test_linear_probe_separable_features_and_bn_is_not_affine():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(90) % 3
    f = torch.randn(90, 5, generator=g) * 0.1 + nn.functional.one_hot(y, 5).float() * 3
    out = fit_linear_probe(f[:60], y[:60], f[60:], y[60:], 3, epochs=10, batch_size=16)
    assert out["top1_best"] == 100.0 and len(out["curve"]) == 10
    assert not LinearProbe(5, 3).bn.affine and LinearProbe(5, 3).bn.eps == 1e-6


def test_finetune_protocol_and_layer_decay(data):
    m = ProbeMethod()
    assert isinstance(m, Finetunable)
    before = m.enc.mlp[0].weight.clone()
    res = get_protocol("finetune").fn(m, data, {"epochs": 2, "batch_size": 8, "warmup_epochs": 1}, RunContext())
    rec = _record(res, "finetune")
    assert 0 <= rec["metrics"]["top1"]["value"] <= 100 and len(res.extra["curve"]) == 2
    torch.testing.assert_close(m.enc.mlp[0].weight, before)  # the method's own encoder is untouched
    groups = layer_decay_groups(m.finetune_model(3), weight_decay=0.05, layer_decay=0.8)
    scales = sorted({round(g["lr_scale"], 6) for g in groups})
    assert scales == [0.8, 1.0]  # layer 1 -> 0.8^(2-1), head (layer 2) -> 1
    assert all(g["weight_decay"] == 0.0 for g in groups if all(p.ndim == 1 for p in g["params"]))


def test_subset_draw_is_seeded_shared_and_official_count():
    a, b = draw_subset(1000, 0.01, 3), draw_subset(1000, 0.01, 3)
    np.testing.assert_array_equal(a, b)  # every rank computes the same subset
    assert len(a) == 10 and len(np.unique(a)) == 10
    assert not np.array_equal(a, draw_subset(1000, 0.01, 4))  # repeats differ
    ref = np.sort(np.random.RandomState(3).permutation(1000)[:10])  # MAMP: first int(N*r) of a shuffle
    np.testing.assert_array_equal(a, ref)
    with pytest.raises(ValueError, match="selects no sample"):
        draw_subset(50, 0.01, 0)


def test_semi_protocol_repeats_ci_and_augmentation_hook(data):
    m = ProbeMethod(with_augment=True)
    cfg = {"repeats": 3, "epochs": 1, "batch_size": 4, "augment": True, "warmup_epochs": 0, "subset_rule": "shared"}
    out = get_protocol("semi10").fn(m, data, cfg, RunContext())
    assert [r.variant for r in out] == ["labels=10%,aug=off,subset=shared", "labels=10%,aug=on,subset=shared"]
    for r in out:
        reps = np.asarray(r.extra["repeats"])
        assert len(reps) == 3
        # independent CI: 1.96 * population std / sqrt(R)
        assert r.metrics["top1"]["value"] == pytest.approx(reps.mean())
        assert r.metrics["top1"]["ci95"] == pytest.approx(1.96 * reps.std() / np.sqrt(3))
        _record(r, "semi10")
    n_lab = int(48 * 0.1)
    assert m.augment_calls == [(n_lab, 0.25)] * 3  # paper ratio for 10% labels
    assert out[1].extra["labelled_plus_generated"] == [n_lab + round(0.25 * n_lab)] * 3
    # without an augment() hook only the aug=off variant runs
    out1 = get_protocol("semi1").fn(ProbeMethod(), data, {**cfg, "repeats": 1, "min_labelled": 6}, RunContext())
    assert [r.variant for r in out1] == ["labels=1%,aug=off,subset=shared"]
    assert out1[0].extra["labelled_plus_generated"] == [6]


class ConfiguredProbe(ProbeMethod):
    """A probe with a method config holding a ``finetune`` block, recording what fine-tuning saw."""

    def __init__(self) -> None:
        super().__init__()
        self.cfg = {"finetune": {"input_mean": [1.0, 2.0, 3.0], "self_shift": False}, "other": [1, 2]}
        self.seen: list[tuple[dict, dict | None]] = []

    def finetune_model(self, num_classes, drop_path=0.3, head_dropout=0.3, finetune=None):
        self.seen.append((copy.deepcopy(self.cfg), finetune))
        return super().finetune_model(num_classes, drop_path, head_dropout)


def test_transfer_passes_the_target_finetune_block_and_never_changes_the_method(monkeypatch):
    """The old protocol wrote ``method_finetune`` into ``method.cfg`` for the call (and restored it):
    during fine-tuning the method's config was not its own. Now the block is an argument."""
    target = make_tiny(n_train=24, n_test=9, num_classes=3, seed=5)
    monkeypatch.setattr(transfer_protocol, "load_target",
                        lambda cfg, ctx: ({"name": "tiny_target", "source": "synthetic"}, target))
    m = ConfiguredProbe()
    own = copy.deepcopy(m.cfg)
    block = {"input_mean": [0.0, 0.0, 0.0], "input_var": [1.0, 1.0, 1.0], "self_shift": True}
    get_protocol("transfer").fn(m, make_tiny(n_train=12, n_test=6),
                                {"target": "x", "epochs": 1, "batch_size": 8, "warmup_epochs": 0, "min_lr_epochs": 0,
                                 "method_finetune": block}, RunContext())
    assert m.seen == [(own, block)]  # the config as fine-tuning saw it is the method's own
    assert m.cfg == own


def test_macdiff_finetune_block_argument_sets_the_classifier_normalisation():
    """``finetune_model(..., finetune=B)``: mean = B.input_mean, std = sqrt(B.input_var) (self_shift off),
    mean = 0 with self_shift (official transformer_downstream.py); the method's config is untouched."""
    tiny = dict(dim_feat=16, depth=1, decoder_depth=2, num_heads=2, num_frames=32, num_joints=25, t_patch_size=4)
    cfg = load_config("method", "macdiff", "smoke")  # every default from the YAML, a tiny model over it
    cfg["model"] = {**cfg["model"], **tiny, "dim_t_embed": 8}
    cfg["sampling"] = {**cfg["sampling"], "ddim_steps": 2}
    m = get_method("macdiff")(cfg, seed=0)
    own = copy.deepcopy(m.cfg)
    block = {"input_mean": [0.1, -0.2, 0.3], "input_var": [0.04, 0.09, 0.16], "self_shift": False}
    model = m.finetune_model(5, finetune=block)
    torch.testing.assert_close(model.mean.flatten(), torch.tensor([0.1, -0.2, 0.3]))
    torch.testing.assert_close(model.std.flatten(), torch.tensor([0.2, 0.3, 0.4]))
    shifted = m.finetune_model(5, finetune={**block, "self_shift": True})
    torch.testing.assert_close(shifted.mean.flatten(), torch.zeros(3))
    assert m.cfg == own
