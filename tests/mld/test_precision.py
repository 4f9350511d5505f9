"""MLD ``diffusion.precision``: bf16 sampling (weights cast once) stays close to fp32 and is recorded."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from methods import get_method
from methods.common.config import load_config


def _mld(precision: str):
    cfg = load_config("method", "mld", "smoke")
    cfg.update(condition="action", nclasses=3, nfeats=12)
    cfg["diffusion"] = {**cfg["diffusion"], "precision": precision}
    m = get_method("mld")(cfg, seed=0)
    m.set_normalization(np.zeros(12, np.float32), np.ones(12, np.float32))
    return m


def test_bf16_sampling_close_to_fp32_and_recorded():
    a, b = _mld("fp32"), _mld("bf16")
    b.load_state_dict(a.state_dict())
    b._bf16_denoiser = None
    z_T = torch.randn(4, a.vae.latent_size, a.vae.latent_dim, generator=torch.Generator().manual_seed(0))
    cond, uncond = a.encode_conditions([0, 1, 2, None], 4)
    za = a.sample_latents(cond, uncond, z_T, steps=5)
    zb = b.sample_latents(cond, uncond, z_T, steps=5)
    assert zb.dtype == torch.float32
    assert next(b._bf16_denoiser.parameters()).dtype == torch.bfloat16  # cast once, cached
    assert next(b.denoiser.parameters()).dtype == torch.float32  # the trained weights are untouched
    rel = float((za - zb).abs().max() / za.abs().max())
    assert 0 < rel < 0.1, rel  # bf16 has an 8-bit mantissa: different, but close
    assert a.sampler_settings()["precision"] == "fp32" and b.sampler_settings()["precision"] == "bf16"


def test_unknown_precision_is_a_clear_error():
    with pytest.raises(ValueError, match="diffusion.precision"):
        _mld("fp16").sampler_settings()
