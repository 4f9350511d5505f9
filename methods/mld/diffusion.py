"""Latent diffusion: diffusers schedulers configured as the official MLD code, CFG DDIM sampling.

Source: ``configs/modules/scheduler.yaml`` and ``mld/models/modeltype/mld.py`` of
``ChenFengYe/motion-latent-diffusion``:

- training: ``DDPMScheduler`` with 1000 steps, ``scaled_linear`` β from 8.5e-4 to 0.012,
  ``fixed_small`` variance, no clipping; ε-prediction; MSE between ε and ε_θ.
- sampling: ``DDIMScheduler`` with the same β, ``clip_sample=False``,
  ``set_alpha_to_one=False``, ``steps_offset=1``, η = 0, 50 steps by default.
  diffusers >= 0.14 added ``timestep_spacing``; the official code ran on diffusers 0.7-0.12,
  whose only behaviour is what is now called ``"leading"`` (timesteps
  ``arange(N) * (1000 // N) + 1`` in reverse). We set it explicitly.
- classifier-free guidance: ε = ε_u + s (ε_c - ε_u), s = 7.5, with the conditional and the
  unconditional branch in ONE batched forward (official order: unconditional first).

Deviation: with 1000 DDIM steps and ``steps_offset=1`` diffusers asks for timestep 1000,
which does not exist (IndexError); for N == num_train_timesteps we use ``steps_offset=0``
(timesteps 999..0, i.e. every training step) and say so in the README.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from methods.common.ddim import DDIMCoefficients, ddim_coefficients, ddim_loop

if TYPE_CHECKING:
    from diffusers import DDIMScheduler, DDPMScheduler

# the noise-schedule keys of the method config's ``diffusion`` block (values: configs/method/mld.yaml,
# from the official configs/modules/scheduler.yaml)
SCHEDULER_KEYS = ("num_train_timesteps", "beta_start", "beta_end", "beta_schedule")


def _sched_kwargs(cfg: dict) -> dict:
    return {k: cfg[k] for k in SCHEDULER_KEYS}


def make_train_scheduler(cfg: dict) -> DDPMScheduler:
    """The forward-noising scheduler used in training (official ``noise_scheduler``)."""
    # lazy: diffusers costs ~1.7 CPU-s to import (torch._dynamo, sympy); planning a run needs none
    from diffusers import DDPMScheduler

    return DDPMScheduler(**_sched_kwargs(cfg), variance_type="fixed_small", clip_sample=False,
                         prediction_type="epsilon")


def make_ddim_scheduler(steps: int, cfg: dict) -> DDIMScheduler:
    """A ``DDIMScheduler`` configured as official, with ``set_timesteps(steps)`` already called."""
    kw = _sched_kwargs(cfg)
    if not 1 <= steps <= kw["num_train_timesteps"]:
        raise ValueError(f"DDIM steps must be in [1, {kw['num_train_timesteps']}], got {steps}")
    offset = 1 if steps < kw["num_train_timesteps"] else 0  # see module docstring (deviation)
    from diffusers import DDIMScheduler  # lazy: as make_train_scheduler

    sched = DDIMScheduler(**kw, clip_sample=False, set_alpha_to_one=False, steps_offset=offset,
                          timestep_spacing="leading", prediction_type="epsilon")
    sched.set_timesteps(steps)
    return sched


def diffusion_loss(denoiser: Callable, scheduler: DDPMScheduler, z0: torch.Tensor, cond: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """ε-prediction loss E‖ε − ε_θ(z_t, t, c)‖² (paper Eq. for L_MLD); z0 ``[B, n, d]``."""
    B = z0.shape[0]
    noise = torch.randn(z0.shape, generator=generator, device=z0.device, dtype=z0.dtype)
    t = torch.randint(0, scheduler.config.num_train_timesteps, (B,), generator=generator, device=z0.device)
    zt = scheduler.add_noise(z0, noise, t)
    return torch.nn.functional.mse_loss(denoiser(zt, t, cond), noise)


def _concat_cond(uncond: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    return torch.cat([uncond, cond], dim=0)


@functools.lru_cache(maxsize=32)
def _coefficients(steps: int, eta: float, sched_items: tuple) -> DDIMCoefficients:
    """Fused DDIM coefficients, computed once per (steps, η, schedule); see ``methods/common/ddim.py``."""
    return ddim_coefficients(make_ddim_scheduler(steps, dict(sched_items)), eta)


def ddim_coefficients_for(steps: int, eta: float, scheduler_cfg: dict) -> DDIMCoefficients:
    """MLD's DDIM schedule (official configuration) as precomputed per-step tensors."""
    return _coefficients(int(steps), float(eta), tuple(sorted(_sched_kwargs(scheduler_cfg).items())))


def ddim_sample(denoiser: Callable, cond: torch.Tensor, uncond: torch.Tensor | None, z_T: torch.Tensor, *,
                steps: int, guidance_scale: float, scheduler_cfg: dict, eta: float = 0.0,
                generator: torch.Generator | None = None,
                fused: bool = True) -> torch.Tensor:
    """Reverse DDIM from ``z_T [B, n, d]`` to ``z_0`` under classifier-free guidance.

    ``cond``/``uncond``: condition inputs of the denoiser for the B samples (text embeddings
    ``[B, m, e]`` or action ids ``[B]``); ``uncond=None`` or ``guidance_scale <= 1`` runs the
    conditional branch alone. Deterministic for η = 0 and a fixed ``z_T``.

    ``fused=True`` (default) runs the precomputed-coefficient loop (:func:`methods.common.ddim.ddim_loop`);
    ``fused=False`` calls diffusers' ``DDIMScheduler.step`` every step (the reference; tested equal).
    ``init_noise_sigma`` is 1 for DDIM, so ``z_T`` is used as is on the fused path.
    """
    cfg = uncond is not None and guidance_scale > 1.0
    both = _concat_cond(uncond, cond) if cfg else cond
    with torch.inference_mode():
        if not fused:
            sched = make_ddim_scheduler(steps, scheduler_cfg)
            latents = z_T * sched.init_noise_sigma
            for t in sched.timesteps:
                model_in = torch.cat([latents, latents], dim=0) if cfg else latents
                eps = denoiser(model_in, t.to(latents.device), both)
                if cfg:
                    eps_u, eps_c = eps.chunk(2)
                    eps = eps_u + guidance_scale * (eps_c - eps_u)
                latents = sched.step(eps, int(t), latents, eta=eta, generator=generator).prev_sample
            return latents
        coeffs = ddim_coefficients_for(steps, eta, scheduler_cfg)

        def eps_fn(x: torch.Tensor, t: torch.Tensor, i: int) -> torch.Tensor:
            if not cfg:
                return denoiser(x, t, both)
            eps_u, eps_c = denoiser(torch.cat([x, x], dim=0), t, both).chunk(2)
            return eps_u + guidance_scale * (eps_c - eps_u)

        return ddim_loop(eps_fn, z_T, coeffs, generator)
