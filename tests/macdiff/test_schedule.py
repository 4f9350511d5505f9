"""Noise schedules: the inverse-cosine formula, its tau=0 degenerate case, cosine/linear, diffusers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from methods.macdiff import inverse_cosine_betas
from methods.macdiff.schedule import cosine_betas, linear_betas, make_schedulers


def _reference_inverse_cosine(T: int, tau: float) -> np.ndarray:
    # written independently from shared/reference/macdiff.md:
    # abar(t) = (1+tau) c0 (1-t) - tau cos^2(((t+s)/(1+s)) pi/2), c0 = cos^2((s/(1+s)) pi/2), s = 0.008
    s = 0.008
    c0 = math.cos(s / (1 + s) * math.pi / 2) ** 2
    t = np.arange(T + 1, dtype=np.float64) / T
    abar = (1 + tau) * c0 * (1 - t) - tau * np.cos((t + s) / (1 + s) * np.pi / 2) ** 2
    return np.minimum(1 - abar[1:] / abar[:-1], 0.999)


def test_inverse_cosine_matches_reference_formula():
    got = inverse_cosine_betas(1000, 1.0)
    assert got.dtype == np.float64 and got.shape == (1000,)
    np.testing.assert_allclose(got, _reference_inverse_cosine(1000, 1.0), rtol=0, atol=1e-10)
    assert np.all(got > 0) and got[-1] == pytest.approx(0.999)


def test_inverse_cosine_tau0_is_linear_alpha_bar():
    T = 1000
    b = inverse_cosine_betas(T, 0.0)
    i = np.arange(T - 1)
    np.testing.assert_allclose(b[:-1], 1.0 / (T - i), rtol=1e-12)  # abar(t) = c0 (1 - t)
    assert b[-1] == pytest.approx(0.999)  # abar(1) = 0 -> clipped
    abar = np.cumprod(1 - b)[:-1]
    np.testing.assert_allclose(abar, 1 - (i + 1) / T, atol=1e-9)


def test_inverse_cosine_mirrors_cosine_around_the_linear_ramp():
    # tau = 1: abar_ic = 2 abar_lin - abar_cos (all three start at c0), i.e. the cosine curve
    # reflected through the linear ramp -> noise levels pulled toward moderate values
    T = 1000
    ab_ic = np.cumprod(1 - inverse_cosine_betas(T, 1.0))[:-1]
    ab_lin = np.cumprod(1 - inverse_cosine_betas(T, 0.0))[:-1]
    ab_cos = np.cumprod(1 - cosine_betas(T))[:-1]
    np.testing.assert_allclose(ab_ic + ab_cos, 2 * ab_lin, atol=1e-9)
    assert ab_ic[100] < ab_lin[100] < ab_cos[100] and ab_ic[900] > ab_lin[900] > ab_cos[900]


def test_cosine_and_linear_match_diffusers_builtins():
    from diffusers import DDPMScheduler

    T = 1000
    ref_cos = DDPMScheduler(num_train_timesteps=T, beta_schedule="squaredcos_cap_v2").betas.double().numpy()
    np.testing.assert_allclose(cosine_betas(T), ref_cos, atol=1e-6)
    ref_lin = DDPMScheduler(num_train_timesteps=T, beta_schedule="linear").betas.double().numpy()
    np.testing.assert_allclose(linear_betas(T), ref_lin, atol=1e-7)


def test_diffusers_schedulers_use_the_custom_betas():
    ddpm, ddim = make_schedulers("inverse_cosine", 1000, 1.0)
    ref = torch.from_numpy(np.cumprod(1 - inverse_cosine_betas(1000, 1.0))).float()
    torch.testing.assert_close(ddpm.alphas_cumprod, ref, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(ddim.alphas_cumprod, ref, atol=1e-6, rtol=1e-5)
    with pytest.raises(ValueError, match="unknown noise schedule"):
        make_schedulers("quadratic", 10)
