"""The authors' MacDiff recipes: per-dataset settings, motion-aware masking, shared
rotation, per-layer condition masking, the per-epoch augmented linear probe, per-rank semi
subsets, the fine-tune lr hold and statistics, the transfer protocol.

Expected values come from the official code read at Wenrui-Shen/MacDiff@692888f (yaml values
quoted in the experiment configs) or from closed forms computed here, independent of the code
under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from evaluators.core.config import load_config
from evaluators.protocols import RunContext, get_protocol
from evaluators.protocols._skeleton_common import cosine_lr
from evaluators.protocols.linear import TokenProbe
from evaluators.protocols.semi import PerRankBatchSampler, per_rank_subsets
from methods.macdiff.diffusion import MacDiffCore
from methods.macdiff.model import FeatureModulation, MacDiffDecoder, MacDiffEncoder, motion_aware_noise
from tests.macdiff.conftest import make_tiny
from tests.macdiff.test_model import macdiff_cfg

TINY = dict(dim_feat=16, depth=1, decoder_depth=2, num_heads=2, num_frames=32, num_joints=25, t_patch_size=4,
            patch_size=1)
DIFFUSION = load_config("method", "macdiff", "paper")["diffusion"]


# -- 0. per-dataset settings -----------------------------------------------------------------------------
def _plan(experiment: str, scale: str = "paper"):
    from evaluators.runner.run import compose, plan

    return plan(compose([f"+experiment={experiment}", f"scale={scale}"]), [], check_data=False)


# (mask_kind, motion_aware_tau or None, layer_mask_ratio, uncond_ratio, rotation, self_shift): the issue's
# table, checked against config/<dataset>_joint/pretrain_madiff.yaml at 692888f
OFFICIAL = {
    "ntu60_xsub": ("random", None, 0.0, 0.1, "none", False),
    "ntu60_xview": ("motion_aware", 0.8, 0.0, 0.1, "shared", False),
    "ntu120_xsub": ("random", None, 0.0, 0.1, "shared", False),
    "ntu120_xset": ("motion_aware", 0.8, 0.15, 0.0, "shared", False),
    "pku1_xsub": ("random", None, 0.0, 0.1, "shared", True),
    "pku2_xsub": ("random", None, 0.0, 0.1, "shared", False),
}


@pytest.mark.parametrize("experiment", ["macdiff_ntu60", "macdiff_ntu120", "macdiff_pku1", "macdiff_pku2"])
def test_experiments_resolve_the_official_settings_per_dataset(experiment):
    p = _plan(experiment)
    for name, m in ((d.config_name, d.method_cfg) for d in p.datasets):
        kind, tau, lmr, unc, rot, shift = OFFICIAL[name]
        assert m["mask_kind"] == kind, name
        if tau is not None:
            assert m["motion_aware_tau"] == tau
        assert (m["layer_mask_ratio"], m["uncond_ratio"], m["pretrain"]["rotation"], m["self_shift"]) == \
            (lmr, unc, rot, shift), name
    if experiment == "macdiff_ntu60":  # official test crop per finetune_madiff.yaml
        fts = {d.config_name: d.protocol_cfgs["finetune"]["test_p_interval"] for d in p.datasets}
        assert fts == {"ntu60_xsub": [0.9, 0.95], "ntu60_xview": [0.95]}
    if experiment == "macdiff_pku2":  # PKU-v2 statistics ("pkuv2 2man"), no self_shift
        assert p.method_cfg["input_mean"] == [-0.0459, -0.0680, 1.3642]


def test_per_dataset_block_rejects_unknown_keys():
    from omegaconf import OmegaConf

    from evaluators.runner.run import ConfigError, per_dataset

    with pytest.raises(ConfigError, match="per_dataset.ntu60_xsub"):
        per_dataset(OmegaConf.create({"per_dataset": {"ntu60_xsub": {"methd": {}}}}))


# -- 0. motion-aware masking ---------------------------------------------------------------------------------
def _closed_form_mask_prob(p_h: float, p_l: float, n_h: int, n_l: int, n_mask: int) -> tuple[float, float]:
    """P(token masked) under the official rule: the ``n_mask`` largest of ``log p_j + Gumbel_j``.

    For token i with X_i = log p_i + G_i: P(masked) = integral f_i(x) P(#{j != i: X_j > x} < n_mask) dx,
    P(X_j > x) = 1 - exp(-p_j e^-x); the count is a sum of two binomials (high / low group).
    """
    xs = np.linspace(-12.0, 14.0, 6001)
    out = []
    for own_high in (True, False):
        p_i = p_h if own_high else p_l
        dens = p_i * np.exp(-xs) * np.exp(-p_i * np.exp(-xs))
        qh, ql = 1 - np.exp(-p_h * np.exp(-xs)), 1 - np.exp(-p_l * np.exp(-xs))
        nh, nl = n_h - own_high, n_l - (not own_high)
        k = np.arange(nh + 1)
        pmf_h = stats.binom.pmf(k[None, :], nh, qh[:, None])                # [X, nh+1]
        cdf_l = stats.binom.cdf(n_mask - 1 - k[None, :], nl, ql[:, None])   # P(low count <= n_mask-1-k)
        below = (pmf_h * cdf_l).sum(axis=1)
        out.append(float(np.trapezoid(dens * below, xs)))
    return out[0], out[1]


def _fixed_motion(n_rows: int, moving=(0, 1, 2, 3, 4)) -> torch.Tensor:
    """[n, 32, 25, 3]: joints in ``moving`` translate at constant speed, the rest are still."""
    t = torch.arange(32, dtype=torch.float32)
    x = torch.zeros(n_rows, 32, 25, 3)
    x[:, :, list(moving), 0] = 0.01 * t[None, :, None]
    return x + 0.3


def test_motion_aware_masking_frequencies_match_the_closed_form():
    torch.manual_seed(0)
    n = 3000
    raw = _fixed_motion(n)
    enc = MacDiffEncoder(**TINY)
    tau, ratio = 0.8, 0.9
    with torch.no_grad():
        _, mask, _ = enc.forward_masked(raw, ratio, noise=motion_aware_noise(raw, 4, 1, tau))
    high = torch.zeros(8, 25, dtype=torch.bool)
    high[:, :5] = True
    high = high.reshape(-1)
    f_high, f_low = float(mask[:, high].mean()), float(mask[:, ~high].mean())
    # motion of moving tokens = max -> logits 1/tau; still tokens 0 -> softmax weights e^(1/tau) : 1
    w_h, n_h, n_l = math.exp(1 / tau), int(high.sum()), int((~high).sum())
    z = n_h * w_h + n_l
    c_high, c_low = _closed_form_mask_prob(w_h / z, 1 / z, n_h, n_l, 200 - round(200 * (1 - ratio)))
    assert c_high > c_low + 0.05  # high-motion tokens masked far more often
    se = lambda p: 4 * math.sqrt(p * (1 - p) / n) + 2e-3  # noqa: E731
    assert abs(f_high - c_high) < se(c_high), (f_high, c_high)
    assert abs(f_low - c_low) < se(c_low), (f_low, c_low)
    # uniform masking: 0.9 everywhere
    with torch.no_grad():
        _, umask, _ = enc.forward_masked(raw, ratio)
    assert abs(float(umask[:, high].mean()) - 0.9) < 0.01 and abs(float(umask[:, ~high].mean()) - 0.9) < 0.01


def test_motion_aware_core_reads_the_raw_sequence():
    core = MacDiffCore(model=TINY, diffusion=DIFFUSION, mask_kind="motion_aware", motion_aware_tau=0.8)
    with pytest.raises(ValueError, match="x_raw"):
        core.mask_noise(None)
    with pytest.raises(ValueError, match="mask_kind"):
        MacDiffCore(model=TINY, diffusion=DIFFUSION, mask_kind="motion")
    raw = _fixed_motion(4)
    loss, _ = core.loss(core.normalise(raw), core.normalise(raw), x_raw=raw)
    assert torch.isfinite(loss)


# -- 1. rotation ------------------------------------------------------------------------------------------
def test_shared_rotation_gives_target_and_view_the_same_rotation():
    from methods.macdiff.recipe import rotation_kwargs

    data = make_tiny(n_train=6, n_test=3)
    torch.manual_seed(0)
    kw = rotation_kwargs({"rotation": "shared"})
    f = data.feeder("train", train=False, window=32, pair=True, noise_std=0.0, **kw)
    plain = data.feeder("train", train=False, window=32)
    for i in range(3):
        x, xa, _, _ = f[i]
        torch.testing.assert_close(x, xa)  # no noise: the view IS the (rotated) target
        assert not torch.allclose(x, plain[i][0], atol=1e-4)  # and it was rotated
    src = data.feeder("train", train=False, window=32, pair=True, noise_std=0.0, **rotation_kwargs({"rotation": "source"}))
    x, xa, _, _ = src[0]
    torch.testing.assert_close(x, plain[0][0])
    assert not torch.allclose(x, xa, atol=1e-4)
    none = data.feeder("train", train=False, window=32, pair=True, noise_std=0.0, **rotation_kwargs({"rotation": "none"}))
    torch.testing.assert_close(none[0][0], none[0][1])
    torch.testing.assert_close(none[0][0], plain[0][0])
    with pytest.raises(ValueError, match="rotation"):
        rotation_kwargs({"source_rot": True})


# -- 2. per-layer condition masking --------------------------------------------------------------------------
def test_layer_mask_is_one_draw_per_adaln_call_for_the_whole_batch():
    torch.manual_seed(0)
    dec = MacDiffDecoder(**TINY, layer_mask_ratio=0.15)
    seen = []
    for m in dec.modules():
        if isinstance(m, FeatureModulation):
            m.fc_z.register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach().clone()))
    x = torch.randn(6, 32, 25, 3)
    z = torch.randn(6, 200, 16) + 1.0
    t = torch.zeros(6, dtype=torch.long)
    dec.train()
    with torch.no_grad():
        for _ in range(150):
            dec(x, t, z)
    zero = []
    for s in seen:
        all_zero, same = bool((s == 0).all()), bool(torch.equal(s, z))
        assert all_zero or same  # whole batch, never per sample
        zero.append(all_zero)
    n = len(zero)
    assert n == 150 * 2 * 2  # 2 blocks x 2 AdaLN calls
    assert stats.binomtest(sum(zero), n, 0.15).pvalue > 1e-3
    # ratio 0 never masks; train_only switches it off in eval
    dec0 = MacDiffDecoder(**TINY, layer_mask_ratio=1.0, layer_mask_train_only=True).eval()
    seen.clear()
    for m in dec0.modules():
        if isinstance(m, FeatureModulation):
            m.fc_z.register_forward_pre_hook(lambda mod, args: seen.append(args[0].detach().clone()))
    with torch.no_grad():
        dec0(x, t, z)
    assert all(torch.equal(s, z) for s in seen)


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

    p = _plan("macdiff_ntu120", "smoke")
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
    pku1 = cls(dict(_plan("macdiff_pku1", "smoke").method_cfg), seed=0)
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
