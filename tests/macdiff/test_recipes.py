"""The authors' MacDiff pre-training recipes: per-dataset settings, motion-aware masking, shared
rotation, per-layer condition masking. The evaluation recipes (linear probe, semi subsets,
fine-tune, transfer, reconstruction, augmentation grid) are in ``test_recipes_protocols.py``.

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
from methods.macdiff.diffusion import MacDiffCore
from methods.macdiff.model import FeatureModulation, MacDiffDecoder, MacDiffEncoder, motion_aware_noise
from tests.macdiff.conftest import make_tiny

TINY = dict(dim_feat=16, depth=1, decoder_depth=2, num_heads=2, num_frames=32, num_joints=25, t_patch_size=4,
            patch_size=1)
DIFFUSION = load_config("method", "macdiff", "paper")["diffusion"]


# -- 0. per-dataset settings -----------------------------------------------------------------------------
def _plan(experiment: str, scale: str = "paper"):
    from evaluators.runner.run import compose, plan

    return plan(compose([f"+experiment={experiment}", f"scale={scale}"]), [], check_data=False)


# (mask_kind, motion_aware_tau or None, layer_mask_ratio, uncond_ratio, rotation, self_shift) per dataset,
# as the authors' config/<dataset>_joint/pretrain_madiff.yaml at 692888f set them
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
