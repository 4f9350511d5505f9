"""The fused DDIM loop (methods/common/ddim.py) against diffusers' ``DDIMScheduler.step``.

diffusers is the reference: the same ε function drives both loops over a full schedule and
the final samples must agree to 1e-6 (η = 0 and η = 1 with the same seeded generator).
"""

from __future__ import annotations

import pytest
import torch

from evaluators.core.config import load_config
from methods.common.ddim import ddim_coefficients, ddim_loop

SCHED = load_config("method", "mld", "paper")["diffusion"]  # the noise schedule MLD runs with
MACDIFF_DIFFUSION = load_config("method", "macdiff", "paper")["diffusion"]


def _eps_for(sched):
    """ε of unit-Gaussian data (exact: sqrt(1 - ᾱ_t) x_t) plus a small nonlinear term: a stand-in
    denoiser whose samples stay at unit scale, as a trained one's do."""
    ab = sched.alphas_cumprod

    def eps(x: torch.Tensor, t) -> torch.Tensor:
        return (1 - ab[int(t)]).sqrt() * x + 0.05 * torch.sin(0.7 * x + float(t) / 1000.0)

    return eps


def _reference(sched, x, eta, gen):
    eps = _eps_for(sched)
    for t in sched.timesteps:
        x = sched.step(eps(x, t), int(t), x, eta=eta, generator=gen).prev_sample
    return x


def _mld(steps):
    from methods.mld.diffusion import make_ddim_scheduler

    return make_ddim_scheduler(steps, SCHED)


def _macdiff(steps):
    from methods.macdiff.schedule import make_schedulers

    sched = make_schedulers("inverse_cosine", 1000)[1]
    sched.set_timesteps(steps)
    return sched


@pytest.mark.parametrize("make,steps", [(_mld, 50), (_mld, 7), (_mld, 1000), (_macdiff, 50), (_macdiff, 10)])
@pytest.mark.parametrize("eta", [0.0, 1.0])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-6), (torch.float32, 1e-5)])
def test_fused_loop_equals_diffusers_step(make, steps, eta, dtype, tol):
    """float64 (the scheduler's ᾱ cast to float64, so diffusers' step runs in float64 too): the
    algebra agrees to 1e-6. float32: diffusers forms σ and sqrt(1 − ᾱ_prev − σ²) from float32
    scalars (cancellation at η = 1 and many steps); ours are float64, so only a looser bound holds."""
    x0 = torch.randn(3, 4, 8, generator=torch.Generator().manual_seed(1), dtype=dtype)
    sched = make(steps)
    if dtype == torch.float64:
        sched.alphas_cumprod = sched.alphas_cumprod.double()
    ref = _reference(sched, x0.clone(), eta, torch.Generator().manual_seed(5))
    coeffs, eps = ddim_coefficients(sched, eta), _eps_for(sched)
    out = ddim_loop(lambda x, t, i: eps(x, t), x0.clone(), coeffs, torch.Generator().manual_seed(5))
    assert len(coeffs) == steps
    tol = tol * 5 if (dtype == torch.float32 and eta > 0) else tol
    assert torch.allclose(out, ref, atol=tol, rtol=0), float((out - ref).abs().max())


def test_mld_ddim_sample_fused_equals_reference():
    from methods.mld.diffusion import ddim_sample

    lin = torch.nn.Linear(8, 8)

    def denoiser(z, t, c):  # CFG: the condition enters, so cond and uncond branches differ
        return torch.tanh(lin(z) + c[:, None, :] + float(t) / 1000)

    g = torch.Generator().manual_seed(0)
    z_T, cond, uncond = (torch.randn(2, 1, 8, generator=g), torch.randn(2, 8, generator=g), torch.zeros(2, 8))
    for eta in (0.0, 1.0):
        a = ddim_sample(denoiser, cond, uncond, z_T, steps=20, guidance_scale=7.5, scheduler_cfg=SCHED, eta=eta,
                        generator=torch.Generator().manual_seed(3))
        b = ddim_sample(denoiser, cond, uncond, z_T, steps=20, guidance_scale=7.5, scheduler_cfg=SCHED, eta=eta,
                        generator=torch.Generator().manual_seed(3), fused=False)
        # relative to the sample's scale (guidance 7.5 on an untrained stand-in gives |x| >> 1);
        # eta 1: diffusers' float32 sigma (see the docstring above)
        tol = 1e-5 if eta == 0 else 1e-4
        err = float((a - b).abs().max() / b.abs().max())
        assert err < tol, err


@pytest.mark.parametrize("t_start", [None, 400])
def test_macdiff_sample_fused_equals_reference(t_start):
    from methods.macdiff.diffusion import MacDiffCore
    from tests.macdiff.test_model import TINY

    torch.manual_seed(0)
    core = MacDiffCore(model=TINY, diffusion=MACDIFF_DIFFUSION).eval()
    x = torch.randn(2, TINY["num_frames"], TINY["num_joints"], 3) * 0.3
    z = core.condition(x, 0.5, generator=torch.Generator().manual_seed(1))
    kw = dict(steps=10, guidance=2.0, x_start=x if t_start else None, t_start=t_start)
    a = core.sample(z, generator=torch.Generator().manual_seed(2), **kw)
    b = core.sample(z, generator=torch.Generator().manual_seed(2), fused=False, **kw)
    assert torch.allclose(a, b, atol=1e-5, rtol=0), float((a - b).abs().max())
