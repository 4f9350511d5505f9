"""Diffusion samplers tested by their output distribution against closed forms.

Gaussian data ``x0 ~ N(mu, s^2)`` has an exact epsilon predictor,
``E[eps | x_t] = sqrt(1-a) (x_t - sqrt(a) mu) / (a s^2 + 1 - a)`` (``a`` = alpha-bar at t), so a
DDIM/DDPM-style sampler driven by it is a chain of affine maps plus Gaussian noise. The exact
mean and variance of its output are propagated here in float64 numpy from the update of Song et
al. (DDIM, Eq. 12, ``sigma = eta sqrt((1-a')/(1-a) (1-a/a'))``) with the schedules' betas written
from their definitions; the samplers under test (MLD ``ddim_sample``, MacDiff ``MacDiffCore.sample``)
must match them within sampling error, and land near ``N(mu, s^2)``. The DDPM posterior variance
of the training schedulers is checked against ``(1-a_{t-1})/(1-a_t) beta_t``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from evaluators.core.config import load_config

SCHED = load_config("method", "mld", "paper")["diffusion"]  # the noise schedule MLD runs with

T = 1000


def _scaled_linear_betas(b0=0.00085, b1=0.012, n=T) -> np.ndarray:
    return np.linspace(b0 ** 0.5, b1 ** 0.5, n, dtype=np.float64) ** 2


def _inverse_cosine_betas(n=T, tau=1.0) -> np.ndarray:
    """MacDiff inverse-cosine schedule (paper Eq. / methods/macdiff/schedule.py docstring), improved-DDPM
    discretisation with beta <= 0.999: alpha_bar(t) = 1 - ... written from the paper definition."""
    from methods.macdiff.schedule import inverse_cosine_betas  # definition tested in tests/macdiff/test_schedule.py

    return np.asarray(inverse_cosine_betas(n, tau), dtype=np.float64)


def _leading(steps: int, offset: int) -> list[int]:
    return [int(t) for t in (np.arange(steps)[::-1] * (T // steps) + offset)]


def _eps_coef(a: float, s2: np.ndarray) -> np.ndarray:
    return math.sqrt(1 - a) / (a * s2 + 1 - a)


def _propagate(ab: np.ndarray, ts: list[int], mu: np.ndarray, s2: np.ndarray, eta: float, final_alpha: float):
    """Exact (mean, var) of the sampler output started from N(0, 1), per dimension."""
    m, v = np.zeros_like(mu), np.ones_like(mu)
    step = T // len(ts)
    for t in ts:
        a = ab[t]
        prev = t - step
        ap = ab[prev] if prev >= 0 else final_alpha
        sigma = eta * math.sqrt((1 - ap) / (1 - a) * (1 - a / ap))
        c = _eps_coef(a, s2)

        def f(x, a=a, ap=ap, sigma=sigma, c=c):
            eps = c * (x - math.sqrt(a) * mu)
            x0 = (x - math.sqrt(1 - a) * eps) / math.sqrt(a)
            return math.sqrt(ap) * x0 + math.sqrt(1 - ap - sigma ** 2) * eps

        b = f(np.zeros_like(mu))
        A = f(np.ones_like(mu)) - b
        m, v = A * m + b, A ** 2 * v + sigma ** 2
    return m, v


def _check_moments(x: np.ndarray, m: np.ndarray, v: np.ndarray, mu: np.ndarray, s2: np.ndarray,
                   near_law: bool = True):
    """x: [N, D] samples. Sample moments within 5 standard errors of the exact ones; near the data law."""
    n = x.shape[0]
    mean, var = x.mean(0), x.var(0)
    assert np.all(np.abs(mean - m) < 5 * np.sqrt(v / n)), (mean, m)
    assert np.all(np.abs(var - v) < 5 * v * np.sqrt(2 / n)), (var, v)
    # and the exact output law is near the data law (not equal: the schedules stop short of zero SNR,
    # alpha-bar_T > 0, so the N(0, 1) start is slightly off the true marginal). Only for eta = 0: with
    # eta = 1, or with 10 steps, the exact output variance is visibly below s^2 (a property of the
    # discretisation, which the exact-moment check above already pins)
    if near_law:
        assert np.all(np.abs(m - mu) < 0.15 * np.abs(mu) + 0.05) and np.allclose(v, s2, rtol=0.15), (m, mu, v, s2)


MU = np.array([0.5, -1.0, 2.0, 0.0, 1.0, -0.3], dtype=np.float64)
S2 = np.array([0.25, 1.0, 2.25, 0.5, 0.1, 1.5], dtype=np.float64)


# -- MLD: diffusers DDIM as configured by methods/mld/diffusion.py ------------------------------------
@pytest.mark.parametrize("steps,eta", [(50, 0.0), (50, 1.0), (10, 0.0)])
def test_mld_ddim_output_has_the_closed_form_moments(steps, eta):
    from methods.mld.diffusion import ddim_sample

    ab = np.cumprod(1 - _scaled_linear_betas())
    mu_t, s2_t = torch.tensor(MU, dtype=torch.float32), torch.tensor(S2, dtype=torch.float32)

    def oracle(x, t, cond):
        a = float(ab[int(t)])
        return math.sqrt(1 - a) * (x - math.sqrt(a) * mu_t) / (a * s2_t + 1 - a)

    n = 6000
    g = torch.Generator().manual_seed(0)
    z_T = torch.randn(n, 1, len(MU), generator=g)
    out = ddim_sample(oracle, torch.zeros(n), None, z_T, steps=steps, guidance_scale=7.5, scheduler_cfg=SCHED, eta=eta, generator=g)
    m, v = _propagate(ab, _leading(steps, 1), MU, S2, eta, final_alpha=ab[0])
    _check_moments(out[:, 0].double().numpy(), m, v, MU, S2, near_law=eta == 0.0 and steps >= 50)


def test_mld_ddim_eta0_is_deterministic_and_differs_from_eta1():
    from methods.mld.diffusion import ddim_sample

    def eps(x, t, c):
        return 0.3 * x

    z = torch.randn(4, 2, 3, generator=torch.Generator().manual_seed(1))
    a = ddim_sample(eps, torch.zeros(4), None, z, steps=20, guidance_scale=7.5, scheduler_cfg=SCHED, eta=0.0, generator=torch.Generator().manual_seed(2))
    b = ddim_sample(eps, torch.zeros(4), None, z, steps=20, guidance_scale=7.5, scheduler_cfg=SCHED, eta=0.0, generator=torch.Generator().manual_seed(3))
    c = ddim_sample(eps, torch.zeros(4), None, z, steps=20, guidance_scale=7.5, scheduler_cfg=SCHED, eta=1.0, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.allclose(a, c)


# -- MacDiff: MacDiffCore.sample (DDIM eta 0) on the inverse-cosine schedule ---------------------------
def test_macdiff_ddim_output_has_the_closed_form_moments(monkeypatch):
    from methods.macdiff.diffusion import MacDiffCore
    from tests.macdiff.test_model import TINY

    core = MacDiffCore(model=TINY, diffusion={"steps": T, "schedule": "inverse_cosine", "tau": 1.0})
    ab = np.cumprod(1 - _inverse_cosine_betas())
    mu3, s23 = MU[:3], S2[:3]
    mu_t, s2_t = torch.tensor(mu3, dtype=torch.float32), torch.tensor(s23, dtype=torch.float32)

    def oracle(x_t, t, z, guidance):
        a = float(ab[int(t)])
        return math.sqrt(1 - a) * (x_t - math.sqrt(a) * mu_t) / (a * s2_t + 1 - a)

    monkeypatch.setattr(core, "_eps", oracle)
    steps = 25
    out = core.sample(torch.zeros(96, 1, 1), steps=steps, generator=torch.Generator().manual_seed(0))
    assert out.shape == (96, TINY["num_frames"], TINY["num_joints"], 3)
    m, v = _propagate(ab, _leading(steps, 0), mu3, s23, 0.0, final_alpha=ab[0])
    # exact moments only: with 25 leading-spaced steps on this schedule the ODE discretisation is coarse
    _check_moments(out.reshape(-1, 3).double().numpy(), m, v, mu3, s23, near_law=False)


# -- DDPM posterior variance of the training schedulers ------------------------------------------------
@pytest.mark.parametrize("which", ["mld", "macdiff"])
def test_ddpm_posterior_variance_is_the_closed_form(which):
    if which == "mld":
        from methods.mld.diffusion import make_train_scheduler

        sched, betas = make_train_scheduler(SCHED), _scaled_linear_betas()
    else:
        from methods.macdiff.schedule import make_schedulers

        sched, betas = make_schedulers("inverse_cosine", T)[0], _inverse_cosine_betas()
    ab = np.cumprod(1 - betas)
    for t in (1, 10, 250, 500, 999):
        closed = (1 - ab[t - 1]) / (1 - ab[t]) * betas[t]
        assert float(sched._get_variance(t)) == pytest.approx(closed, rel=1e-4)
    # forward marginal q(x_t | x_0) of add_noise
    x0, eps = torch.full((1,), 2.0), torch.full((1,), -1.0)
    for t in (0, 400, 999):
        got = float(sched.add_noise(x0, eps, torch.tensor([t])))
        assert got == pytest.approx(2.0 * math.sqrt(ab[t]) - math.sqrt(1 - ab[t]), rel=1e-4, abs=1e-5)


# -- DiffusionPose: its DDIM update vs diffusers' DDIMScheduler.step (prediction_type="sample") ---------
@pytest.mark.parametrize("steps", [1000, 50, 8])
def test_diffusionpose_ddim_step_equals_diffusers_step(steps):
    """Same gammas (alphas_cumprod) in both; diffusers steps from t to t - T/steps with eta 0."""
    from diffusers import DDIMScheduler

    from methods.diffusionpose.model import cosine_gammas, ddim_step_x0

    g = cosine_gammas(T).double()
    betas = 1 - torch.cat([g[:1], g[1:] / g[:-1]])
    ref = DDIMScheduler(num_train_timesteps=T, trained_betas=betas.numpy(), prediction_type="sample",
                        clip_sample=False, set_alpha_to_one=False)
    ref.set_timesteps(steps)
    gen = torch.Generator().manual_seed(0)
    yt, y0 = torch.randn(3, 17, 2, generator=gen), torch.randn(3, 17, 2, generator=gen)
    gap = T // steps
    for t in [int(x) for x in ref.timesteps[::max(1, steps // 6)] if int(x) - gap >= 0]:
        want = ref.step(y0, t, yt, eta=0.0).prev_sample
        got = ddim_step_x0(yt, y0, g[t].float(), g[t - gap].float())
        torch.testing.assert_close(got, want, atol=2e-5, rtol=1e-4)
