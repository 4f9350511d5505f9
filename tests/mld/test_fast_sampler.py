"""``diffusion.fast_sampler``: the fused-kernel CFG-DDIM loop gives the eager loop's latents (1e-5)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from evaluators.core.config import load_config
from methods import get_method
from methods.common import onednn_linear
from methods.common.encoder_layer_ops import layer_by_ops
from methods.mld.denoiser import LatentDenoiser
from methods.mld.diffusion import ddim_coefficients_for, ddim_sample
from methods.mld.fast_sampler import FusedSampler, _layer_args, fast_sampler_for
from methods.mld.layers import TransformerEncoderLayer

SCHED = load_config("method", "mld")["diffusion"]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("onednn", [False, True])
@pytest.mark.parametrize(("latent_size", "batch", "guidance"), [(1, 1, 7.5), (2, 3, 7.5), (1, 2, 1.0), (2, 8, 7.5)])
def test_fused_loop_matches_eager_ddim(latent_size, batch, guidance, onednn):
    torch.manual_seed(0)
    den = LatentDenoiser(latent_size, 32, "text", text_encoded_dim=48, ff_size=64, num_layers=3, num_heads=4).eval()
    g = torch.Generator().manual_seed(1)
    cond, uncond = torch.randn(batch, 1, 48, generator=g), torch.randn(batch, 1, 48, generator=g)
    z_T = torch.randn(batch, latent_size, 32, generator=g)
    eager = ddim_sample(den, cond, uncond, z_T, steps=10, guidance_scale=guidance, scheduler_cfg=SCHED)
    fast = FusedSampler(den, ddim_coefficients_for(10, 0.0, SCHED), guidance, onednn=onednn)(cond, uncond, z_T)
    assert _rel(fast, eager) < 1e-5
    assert not torch.equal(eager, z_T)  # the loop did move the latent


def test_last_layer_on_kept_tokens_equals_the_full_layer():
    torch.manual_seed(0)
    layer = TransformerEncoderLayer(32, 4, 64, dropout=0.1).eval()
    x = torch.randn(6, 5, 32)
    with torch.inference_mode():
        full = layer(x)  # the eager layer (nn.MultiheadAttention layout through SDPA)
        kept = layer_by_ops(_layer_args(layer), x, 2)
    torch.testing.assert_close(kept, full[:, :2], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("keep", [None, 2])
def test_layer_on_onednn_products_equals_the_eager_layer(keep):
    torch.manual_seed(0)
    layer = TransformerEncoderLayer(32, 4, 64, dropout=0.1, activation="relu").eval()
    x = torch.randn(6, 5, 32)
    packs = onednn_linear.PackedWeights(30)
    with torch.inference_mode():
        full = layer(x)
        ours = layer_by_ops(_layer_args(layer), x, keep, packs.linear)
    torch.testing.assert_close(ours, full[:, :keep] if keep else full, rtol=1e-5, atol=1e-6)


def test_structures_the_kernel_does_not_cover_fall_back_with_a_warning(caplog):
    coeffs = ddim_coefficients_for(5, 0.0, SCHED)
    dec = LatentDenoiser(1, 32, "text", text_encoded_dim=48, ff_size=64, num_layers=3, arch="trans_dec").eval()
    pre = LatentDenoiser(1, 32, "text", text_encoded_dim=48, ff_size=64, num_layers=3, normalize_before=True).eval()
    train = LatentDenoiser(1, 32, "text", text_encoded_dim=48, ff_size=64, num_layers=3).train()
    with caplog.at_level(logging.WARNING, logger="methods.mld.fast_sampler"):
        for den in (dec, pre, train):
            assert fast_sampler_for(den, coeffs, 7.5) is None
        assert fast_sampler_for(train.eval(), ddim_coefficients_for(5, 0.5, SCHED), 7.5) is None  # eta > 0
    assert len(caplog.records) == 4
    with pytest.raises(ValueError, match="trans_dec"):
        FusedSampler(dec, coeffs, 7.5)


def _mld(fast: bool, onednn: bool = False, **denoiser):
    cfg = load_config("method", "mld", "smoke")
    cfg.update(condition="action", nclasses=3, nfeats=12)
    cfg["diffusion"] = {**cfg["diffusion"], "fast_sampler": fast, "onednn_linear": onednn}
    cfg["denoiser"] = {**cfg["denoiser"], **denoiser}
    m = get_method("mld")(cfg, seed=0)
    m.set_normalization(np.zeros(12, np.float32), np.ones(12, np.float32))
    return m


@pytest.mark.parametrize("onednn", [False, True])
def test_method_fast_sampler_matches_eager_and_follows_weight_updates(onednn):
    eager, fast = _mld(False), _mld(True, onednn)
    fast.load_state_dict(eager.state_dict())
    z_T = torch.randn(4, eager.vae.latent_size, eager.vae.latent_dim, generator=torch.Generator().manual_seed(0))
    cond, uncond = eager.encode_conditions([0, 1, 2, None], 4)
    assert _rel(fast.sample_latents(cond, uncond, z_T), eager.sample_latents(cond, uncond, z_T)) < 1e-5
    with torch.no_grad():  # new weights (as after training): the cached fast sampler must see them
        for m in (eager, fast):
            for p in m.denoiser.parameters():
                p.mul_(1.1)
    assert _rel(fast.sample_latents(cond, uncond, z_T), eager.sample_latents(cond, uncond, z_T)) < 1e-5
    assert fast.sampler_settings()["fast_sampler"] is True
    assert fast.sampler_settings().get("onednn_linear", False) is onednn
    assert "fast_sampler" not in eager.sampler_settings()  # default records keep their exact content
    assert "onednn_linear" not in eager.sampler_settings()


def test_onednn_linear_without_the_fast_sampler_is_refused_before_any_work():
    with pytest.raises(ValueError, match="onednn_linear.*fast_sampler: true"):
        _mld(False, onednn=True)


def test_onednn_missing_keeps_the_fused_kernel_with_one_warning(monkeypatch, caplog):
    torch.manual_seed(0)
    den = LatentDenoiser(1, 32, "text", text_encoded_dim=48, ff_size=64, num_layers=3).eval()
    g = torch.Generator().manual_seed(1)
    cond, uncond, z_T = torch.randn(2, 1, 48, generator=g), torch.randn(2, 1, 48, generator=g), torch.randn(2, 1, 32)
    coeffs = ddim_coefficients_for(5, 0.0, SCHED)
    mkl = FusedSampler(den, coeffs, 7.5)(cond, uncond, z_T)
    monkeypatch.setattr(onednn_linear, "unavailable", lambda: "torch.ops.mkldnn._linear_pointwise missing")
    with caplog.at_level(logging.WARNING, logger="methods.mld.fast_sampler"):
        sampler = fast_sampler_for(den, coeffs, 7.5, onednn=True)
    assert [r.getMessage() for r in caplog.records] == [
        "mld: oneDNN linear unavailable (torch.ops.mkldnn._linear_pointwise missing); "
        "the fast sampler keeps oneMKL's products"]
    assert torch.equal(sampler(cond, uncond, z_T), mkl)
    with pytest.raises(ValueError, match="_linear_pointwise missing"):
        FusedSampler(den, coeffs, 7.5, onednn=True)


def test_method_with_uncovered_denoiser_runs_eagerly_and_warns_once(caplog):
    eager, fast = _mld(False, arch="trans_dec"), _mld(True, arch="trans_dec")
    fast.load_state_dict(eager.state_dict())
    z_T = torch.randn(2, eager.vae.latent_size, eager.vae.latent_dim, generator=torch.Generator().manual_seed(0))
    cond, uncond = eager.encode_conditions([0, None], 2)
    with caplog.at_level(logging.WARNING, logger="methods.mld.fast_sampler"):
        a = fast.sample_latents(cond, uncond, z_T)
        b = fast.sample_latents(cond, uncond, z_T)
    assert torch.equal(a, eager.sample_latents(cond, uncond, z_T)) and torch.equal(a, b)
    assert len(caplog.records) == 1
