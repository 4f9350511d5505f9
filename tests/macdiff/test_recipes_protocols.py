"""The authors' MacDiff evaluation recipes: the per-epoch augmented linear probe, per-rank semi
subsets, the fine-tune lr hold and statistics, the transfer protocol, reconstruction on the
masked joints and the augmentation sampler grid.

Expected values come from the official code read at Wenrui-Shen/MacDiff@692888f or from closed
forms computed here, independent of the code under test. The pre-training recipes (per-dataset
settings, motion-aware masking, shared rotation, per-layer condition masking) are in
``test_recipes.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from evaluators.protocols import RunContext, get_protocol
from evaluators.protocols._skeleton_common import cosine_lr
from evaluators.protocols.linear import TokenProbe
from evaluators.protocols.semi import PerRankBatchSampler, per_rank_subsets
from tests.macdiff.conftest import make_tiny
from tests.macdiff.test_model import macdiff_cfg
from tests.macdiff.test_recipes import TINY


# -- 3. linear probe ------------------------------------------------------------------------------------------
def test_token_dropout_before_pooling_has_the_closed_form_variance():
    p, tp = 0.3, 30
    probe = TokenProbe(64, 3, "joint", dropout=p).train()
    tok = torch.ones(2000, 1, tp, 1, 64)
    f = probe.features(tok)  # [2000, 64]: mean over 30 tokens of Bernoulli(1-p)/(1-p)
    var = (p / (1 - p)) / tp
    assert float(f.mean()) == pytest.approx(1.0, abs=0.01)
    assert float(f.var()) == pytest.approx(var, rel=0.08)  # dropout on the pooled vector would give p/(1-p)


class _TokenMethod:
    """Records the windows it encodes; token features [B, M, TP=8, VP=25, D=2] from per-joint motion."""

    window = 32
    device = "cpu"

    def __init__(self) -> None:
        self.seen: list[torch.Tensor] = []

    @torch.inference_mode()
    def encode(self, x, pooling="joint"):
        if pooling == "tokens":
            self.seen.append(x.clone())
        b, _, t, v, m = x.shape
        vel = (x[:, :, 1:] - x[:, :, :-1]).abs().mean(dim=1)  # [B, T-1, V, M]
        tok = torch.stack([vel.mean(1), x.mean(dim=(1, 2))], -1).permute(0, 2, 1, 3)  # [B, M, V, 2]
        tok = tok[:, :, None].expand(b, m, 8, v, 2) * 10
        if pooling == "tokens":
            return tok
        return tok.mean(dim=(1, 2)).reshape(b, -1) if pooling == "joint" else tok.mean(dim=(1, 2, 3))


def test_default_linear_probe_reencodes_augmented_windows_every_epoch():
    data = make_tiny(n_train=24, n_test=12)
    m = _TokenMethod()
    out = get_protocol("linear").fn(m, data, {"epochs": 3, "poolings": ["joint"], "joint": {"batch_size": 8}},
                                    RunContext())
    assert [r.variant for r in out] == ["pool=joint,features=per_epoch_augmented"]
    assert out[0].provenance["recipe.linear_features"]["paper"] is True
    assert len(m.seen) == 3 * 3 + 1  # 3 batches x 3 epochs (+ one probe of the token API)
    ep0, ep1 = torch.cat(m.seen[1:4]), torch.cat(m.seen[4:7])
    assert not torch.allclose(ep0.sort(0).values, ep1.sort(0).values)  # fresh crops/rotations each epoch
    fixed = data.feeder("train", train=False, window=32)
    fixed_x = torch.stack([fixed[i][0] for i in range(len(fixed))])
    assert not any(torch.allclose(a, b) for a in ep0[:4] for b in fixed_x)  # not the test crop


# -- 4. semi-supervised subsets --------------------------------------------------------------------------------
def test_per_rank_subsets_equal_an_explicit_four_rank_emulation():
    n, ratio, seed = 4000, 0.01, 0
    ours = per_rank_subsets(n, ratio, seed, 4)
    state = np.random.get_state()
    try:
        for rank in range(4):  # main_finetune.py: np.random.seed(seed + rank); feeder: np.random.shuffle(arange(N))
            np.random.seed(seed + rank)
            idx = np.arange(n)
            np.random.shuffle(idx)
            np.testing.assert_array_equal(ours[rank], idx[: int(n * ratio)])
    finally:
        np.random.set_state(state)
    assert len({tuple(sorted(o)) for o in ours}) == 4  # every rank its own draw


def test_per_rank_batches_take_an_equal_share_from_every_rank():
    sizes = [10, 10, 10, 10]
    bs = PerRankBatchSampler(sizes, batch_size=8)
    covered = [set() for _ in sizes]
    for epoch in range(6):
        bs.set_epoch(epoch)
        batches = list(bs)
        assert len(batches) == len(bs) == math.ceil(10 / 4) // 2
        for b in batches:
            ranks = [i // 10 for i in b]
            assert sorted(ranks) == [0, 0, 1, 1, 2, 2, 3, 3]
            for i in b:
                covered[i // 10].add(i % 10)
    assert all(len(c) > 5 for c in covered)


def test_semi_runs_both_rules_and_names_them():
    from tests.macdiff.test_protocols import ProbeMethod

    data = make_tiny(n_train=48, n_test=12)
    cfg = {"repeats": 1, "epochs": 1, "batch_size": 8, "warmup_epochs": 0, "min_lr_epochs": 0,
           "subset_rule": ["per_rank_official", "shared"], "min_labelled": 8}
    out = get_protocol("semi10").fn(ProbeMethod(), data, cfg, RunContext())
    assert [r.variant for r in out] == ["labels=10%,aug=off,subset=per_rank_official", "labels=10%,aug=off,subset=shared"]
    assert out[0].extra["labelled_plus_generated"] == [4 * 8] and out[1].extra["labelled_plus_generated"] == [8]
    assert out[0].extra["distinct_labelled"][0] > 8
    assert [r.provenance["recipe.semi_subset_rule"]["paper"] for r in out] == [True, False]


def test_semi_configs_use_the_mamp_batch():
    from evaluators.core.config import load_config

    for name in ("semi1", "semi10"):
        c = load_config("protocol", name, "paper")
        assert c["batch_size"] == 48 and c["subset_rule"] == ["per_rank_official", "shared"]
        assert c["official_world_size"] == 4


# -- 5. fine-tune -------------------------------------------------------------------------------------------------
def _official_lr(epoch: float, epochs: int, warmup: int, hold: int, lr: float, min_lr: float) -> float:
    """util/lr_sched.py::adjust_learning_rate at 692888f, written out from the source."""
    if epoch > epochs - hold:
        return min_lr
    if epoch < warmup:
        return lr * epoch / warmup
    return min_lr + (lr - min_lr) * 0.5 * (1 + math.cos(math.pi * (epoch - warmup) / (epochs - hold - warmup)))


def test_finetune_lr_holds_min_lr_for_the_last_ten_epochs():
    per, epochs = 7, 100
    total, warmup, hold = epochs * per, 5 * per, 10 * per
    for step in range(total):
        ours = cosine_lr(step, total, warmup, 3e-4, 1e-5, hold)
        assert ours == pytest.approx(_official_lr(step / per, epochs, 5, 10, 3e-4, 1e-5), rel=1e-9, abs=1e-15)
    assert cosine_lr(total - 1, total, warmup, 3e-4, 1e-5, hold) == 1e-5
    from evaluators.core.config import load_config

    assert load_config("protocol", "finetune", "paper")["min_lr_epochs"] == 10


def test_finetune_statistics_per_dataset():
    from methods.registry import get_method

    p = _plan_with(["+experiment=macdiff_ntu120", "scale=smoke"])
    cls = get_method("macdiff")
    m = cls(dict(next(d.method_cfg for d in p.datasets if d.config_name == "ntu120_xsub")), seed=0)
    mean, std, shift = m.finetune_normalisation()
    torch.testing.assert_close(mean, torch.tensor([-0.0021, -0.2198, -0.0404]))  # finetune_madiff.yaml ntu120_xsub
    torch.testing.assert_close(std, torch.tensor([0.0298, 0.1424, 0.0358]).sqrt())
    assert not shift
    model = m.finetune_model(120)
    torch.testing.assert_close(model.mean, mean)
    # pretraining keeps the NTU-60 statistics (pretrain yaml)
    torch.testing.assert_close(m.core.mean, torch.tensor([-0.0058, -0.1333, -0.0246]))
    pku1 = cls(dict(_plan_with(["+experiment=macdiff_pku1", "scale=smoke"]).method_cfg), seed=0)
    assert pku1.core.self_shift and not pku1.finetune_normalisation()[2]  # pkuv1 finetune yaml: no self_shift
    torch.testing.assert_close(pku1.finetune_normalisation()[0], torch.tensor([-0.0058, -0.1333, -0.0246]))


# -- 6. transfer ----------------------------------------------------------------------------------------------------
def test_transfer_finetunes_on_the_target(monkeypatch):
    from evaluators.protocols import transfer as tr
    from tests.macdiff.test_protocols import ProbeMethod

    target = make_tiny(n_train=24, n_test=9, num_classes=3, seed=5)
    target.name = "tiny_target"
    monkeypatch.setattr(tr, "load_target", lambda cfg, ctx: ({"name": "tiny_target", "source": "synthetic"}, target))
    out = get_protocol("transfer").fn(ProbeMethod(), make_tiny(n_train=12, n_test=6),
                                      {"target": "x", "epochs": 1, "batch_size": 8, "warmup_epochs": 0,
                                       "min_lr_epochs": 0}, RunContext())
    assert [r.variant for r in out] == ["target=tiny_target"]
    assert out[0].n_samples == {"expected": 9, "evaluated": 9}
    assert get_protocol("transfer").fn(ProbeMethod(), target, {"enabled": False}, RunContext()) == []


# -- 8. reconstruction on the masked joints -------------------------------------------------------------------------
def test_reconstruction_reports_mpjpe_on_the_masked_joints():
    from methods.registry import get_method

    cfg = {"model": {**TINY, "dim_t_embed": 8}, "sampling": {"ddim_steps": 2}}
    m = get_method("macdiff")(macdiff_cfg(cfg), seed=0)
    data = make_tiny(n_train=4, n_test=6)
    res = get_protocol("reconstruction").fn(m, data, {"window": 32, "batch_size": 6, "max_samples": 6}, RunContext())
    assert "mpjpe_masked_mm" in res.metrics and "mpjpe_mm" in res.metrics
    te = data.feeder("test", train=False, window=32)
    x = torch.stack([te[i][0] for i in range(6)])
    out = m.reconstruct(x, return_mask=True)
    mask = out["mask"].numpy()  # [B, T, V, M]
    assert mask.shape == (6, 32, 25, 2)
    tok = mask[:, ::4]  # one value per 4-frame token, constant inside it
    np.testing.assert_array_equal(np.repeat(tok, 4, axis=1), mask)
    assert tok[..., 0].reshape(6, -1).sum(1).tolist() == [200 - round(200 * 0.1)] * 6  # 90% of 200 tokens
    # independent: mean joint error over masked, present joints of person 1 (person 2 is absent in the tiny set)
    gt, pred = x.numpy().transpose(0, 4, 2, 3, 1)[:, 0], out["x_hat"].numpy().transpose(0, 4, 2, 3, 1)[:, 0]
    err = np.linalg.norm(pred - gt, axis=-1)  # [B, T, V]
    present = np.abs(gt).sum(axis=(2, 3)) > 0
    sel = mask[..., 0] & present[:, :, None]
    assert res.metrics["mpjpe_masked_mm"] == pytest.approx(1000 * err[sel].mean(), rel=1e-5)


# -- 7. augmentation sampler grid ------------------------------------------------------------------------------------
def test_augment_grid_runs_every_point_with_its_settings():
    from tests.macdiff.test_protocols import ProbeMethod

    class Recording(ProbeMethod):
        def __init__(self):
            super().__init__(with_augment=True)
            self.cfg = {"augment": {"t_start": 400, "guidance": 1.0, "ddim_steps": 5}}
            self.settings = []

        def _augment(self, x, y, ratio, seed=0):
            self.settings.append(dict(self.cfg["augment"]))
            return super()._augment(x, y, ratio, seed)

    m = Recording()
    cfg = {"repeats": 1, "epochs": 1, "batch_size": 8, "warmup_epochs": 0, "min_lr_epochs": 0, "augment": True,
           "subset_rule": "shared", "min_labelled": 8, "augment_grid": {"t_start": [200, 1000], "guidance": [1.0, 2.0]}}
    out = get_protocol("semi10").fn(m, make_tiny(n_train=40, n_test=6), cfg, RunContext())
    assert [r.variant for r in out] == ["labels=10%,aug=off,subset=shared"] + [
        f"labels=10%,aug=on,t_start={t},guidance={g},subset=shared" for t in (200, 1000) for g in (1.0, 2.0)]
    assert [(s["t_start"], s["guidance"]) for s in m.settings] == [(200, 1.0), (200, 2.0), (1000, 1.0), (1000, 2.0)]
    assert all(s["ddim_steps"] == 5 for s in m.settings)
    assert m.cfg["augment"] == {"t_start": 400, "guidance": 1.0, "ddim_steps": 5}  # restored


def test_augment_grid_ablation_composes():
    p = _plan_with(["+experiment=macdiff_ntu60", "+ablation=macdiff_augment_grid"])
    grid = p.protocol_cfgs["semi1"]["augment_grid"]
    assert grid == {"t_start": [200, 400, 600, 1000], "guidance": [1.0, 2.0]}


def _plan_with(overrides):
    from evaluators.runner.run import compose, plan

    return plan(compose(overrides), [], check_data=False)
