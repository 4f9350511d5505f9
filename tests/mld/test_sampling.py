"""DDIM schedule / sampler of MLD: golden values, hand-written DDIM reference, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluators.core.config import load_config
from methods.mld.denoiser import LatentDenoiser
from methods.mld.diffusion import ddim_sample, make_ddim_scheduler, make_train_scheduler
from methods.mld.method import MLD

SCHED = load_config("method", "mld", "paper")["diffusion"]  # the noise schedule MLD runs with


@pytest.mark.parametrize("steps", [10, 25, 50, 100])
def test_ddim_timesteps_are_the_official_leading_spacing(steps):
    """Official (diffusers 0.7-0.12 DDIM, steps_offset=1): arange(N) * (1000 // N) + 1, descending."""
    expected = (np.arange(steps) * (1000 // steps) + 1)[::-1]
    got = make_ddim_scheduler(steps, SCHED).timesteps.numpy()
    np.testing.assert_array_equal(got, expected)
    if steps == 50:  # golden: the default sampler
        assert got[:3].tolist() == [981, 961, 941] and got[-1] == 1


def test_ddim_1000_steps_visits_every_training_step():
    np.testing.assert_array_equal(make_ddim_scheduler(1000, SCHED).timesteps.numpy(), np.arange(1000)[::-1])


def test_scaled_linear_betas_match_closed_form():
    betas = make_train_scheduler(SCHED).betas.double().numpy()
    ref = np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000) ** 2  # "linear in sqrt(beta)"
    np.testing.assert_allclose(betas, ref, rtol=1e-5)


def _tiny(seed=0):
    torch.manual_seed(seed)
    return LatentDenoiser(latent_size=2, latent_dim=16, text_encoded_dim=8, ff_size=32, num_layers=3,
                          num_heads=2, dropout=0.0).eval()


def _inputs():
    g = torch.Generator().manual_seed(1)
    return torch.randn(3, 1, 8, generator=g), torch.randn(3, 1, 8, generator=g), torch.randn(3, 2, 16, generator=g)


def test_ddim_cfg_equals_hand_written_ddim():
    """Batched CFG + diffusers DDIM == separate cond/uncond forwards + the DDIM equations (η = 0)."""
    den = _tiny()
    cond, uncond, z = _inputs()
    out = ddim_sample(den, cond, uncond, z, steps=10, guidance_scale=7.5, scheduler_cfg=SCHED)

    betas = np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=np.float64) ** 2
    ac = torch.tensor(np.cumprod(1.0 - betas), dtype=torch.float32)
    x = z.clone()
    with torch.no_grad():
        for t in range(901, 0, -100):
            e_c, e_u = den(x, torch.tensor(t), cond), den(x, torch.tensor(t), uncond)
            eps = e_u + 7.5 * (e_c - e_u)
            a_t = ac[t]
            a_prev = ac[t - 100] if t - 100 >= 0 else ac[0]  # set_alpha_to_one=False
            x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
            x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    torch.testing.assert_close(out, x, atol=2e-4, rtol=2e-4)


def test_golden_10_step_sample_of_tiny_seeded_denoiser():
    """Regression guard. Values produced once (torch 2.13 CPU, diffusers 0.42.1) by exactly this
    code; a change means the denoiser, the scheduler config or the CFG combination changed."""
    den = _tiny()
    cond, uncond, z = _inputs()
    out = ddim_sample(den, cond, uncond, z, steps=10, guidance_scale=7.5, scheduler_cfg=SCHED)
    assert out.shape == (3, 2, 16)
    assert float(out.sum()) == pytest.approx(GOLDEN_SUM, rel=1e-4)
    assert float(out.abs().mean()) == pytest.approx(GOLDEN_ABS_MEAN, rel=1e-4)


GOLDEN_SUM = 73.039794921875
GOLDEN_ABS_MEAN = 10.678112030029297


def _tiny_mld(seed=0):
    cfg = {"nfeats": 12, "text_encoder": {"kind": "clip", "dim": 8},
           "vae": {"latent_size": 1, "latent_dim": 16, "ff_size": 32, "num_layers": 3, "num_heads": 2},
           "denoiser": {"ff_size": 32, "num_layers": 3, "num_heads": 2}, "diffusion": {"steps": 5}}
    m = MLD(load_config("method", "mld", "paper", patch=cfg), seed=seed)
    m.set_normalization(np.linspace(-1, 1, 12), np.linspace(0.5, 2, 12))
    return m


def test_vae_reconstruction_from_mean_is_deterministic_and_zero_padded():
    m = _tiny_mld()
    x = torch.randn(3, 20, 12)
    x[1, 15:] = 0
    x[2, 7:] = 0
    a, b = m.reconstruct(x), m.reconstruct(x)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert a.shape == x.shape and (a[1, 15:] == 0).all() and (a[2, 7:] == 0).all() and (a[2, :7] != 0).any()


def test_generate_from_given_latent_with_eta0_is_deterministic():
    m = _tiny_mld()
    cond = torch.randn(2, 1, 8)
    z = torch.randn(2, 1, 16)
    a = m.sample_latents(cond, torch.zeros_like(cond), z, steps=5)
    b = m.sample_latents(cond, torch.zeros_like(cond), z, steps=5)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    c = m.sample_latents(cond, torch.zeros_like(cond), z, steps=5, eta=1.0)
    assert not torch.allclose(a, c)  # η = 1 injects noise: the η = 0 equality is not vacuous
