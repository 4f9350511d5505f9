"""Fused DDIM (ε-prediction) update: per-step coefficients precomputed once as tensors.

diffusers' ``DDIMScheduler.step`` recomputes ᾱ_t, ᾱ_prev, σ_t, x̂_0 and the direction term from
Python scalars at every step and allocates a ``SchedulerOutput`` each time. The update is affine
in (x_t, ε, noise)::

    x_prev = c_x[i] · x_t + c_eps[i] · ε + σ[i] · noise
    c_x   = sqrt(ᾱ_prev) / sqrt(ᾱ_t)
    c_eps = sqrt(1 − ᾱ_prev − σ²) − sqrt(ᾱ_prev) · sqrt(1 − ᾱ_t) / sqrt(ᾱ_t)
    σ     = η · sqrt((1 − ᾱ_prev) / (1 − ᾱ_t) · (1 − ᾱ_t / ᾱ_prev))

(DDIM, Song et al. 2021, Eq. 12; the same quantities diffusers' ``scheduling_ddim.py::step``
forms, without ``clip_sample`` / thresholding, which MLD and MacDiff leave off). So
:func:`ddim_coefficients` reads the timesteps and ᾱ of a configured scheduler ONCE per
(steps, η, spacing) and computes the three coefficient vectors in float64 (kept so); :func:`ddim_loop` then runs the whole reverse loop with one fused
``addcmul``-style update per step and no per-step Python objects. The diffusers scheduler stays
the reference: ``tests/test_fused_ddim.py`` checks the fused loop against ``step`` to 1e-6.

Noise for η > 0 is drawn exactly as diffusers draws it (``torch.randn(shape, generator=...)``
in the sample's dtype), so a seeded generator gives the same trajectory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DDIMCoefficients:
    """Per-step tensors of one DDIM schedule (length = number of steps, in sampling order)."""

    timesteps: torch.Tensor  # long [S], descending
    c_x: torch.Tensor  # float64 [S]
    c_eps: torch.Tensor  # float64 [S]
    sigma: torch.Tensor  # float64 [S] (all zero for η = 0)
    eta: float

    def __len__(self) -> int:
        return len(self.timesteps)

    def subset(self, keep: torch.Tensor) -> DDIMCoefficients:
        """Only the steps where ``keep`` (bool ``[S]``) is true (MacDiff's partial-noise path)."""
        return DDIMCoefficients(self.timesteps[keep], self.c_x[keep], self.c_eps[keep], self.sigma[keep], self.eta)

    def to(self, device) -> DDIMCoefficients:
        return DDIMCoefficients(self.timesteps.to(device), self.c_x.to(device), self.c_eps.to(device),
                                self.sigma.to(device), self.eta)


def ddim_coefficients(scheduler, eta: float = 0.0) -> DDIMCoefficients:
    """Coefficients of a diffusers ``DDIMScheduler`` on which ``set_timesteps`` was called.

    Mirrors its ``step``: previous timestep ``t − num_train_timesteps // num_inference_steps``;
    ᾱ_prev = ``final_alpha_cumprod`` when that is negative. Only ε-prediction without clipping
    or thresholding is supported (a clear error otherwise).
    """
    cfg = scheduler.config
    if cfg.prediction_type != "epsilon" or cfg.clip_sample or getattr(cfg, "thresholding", False):
        raise ValueError("ddim_coefficients: only prediction_type='epsilon' without clip_sample/thresholding "
                         f"(got {cfg.prediction_type!r}, clip_sample={cfg.clip_sample})")
    if scheduler.num_inference_steps is None:
        raise ValueError("ddim_coefficients: call scheduler.set_timesteps(steps) first")
    if eta < 0:
        raise ValueError(f"ddim_coefficients: eta must be >= 0, got {eta}")
    ac = scheduler.alphas_cumprod.double().cpu()
    final = float(scheduler.final_alpha_cumprod)
    ts = scheduler.timesteps.long().cpu()
    ratio = cfg.num_train_timesteps // scheduler.num_inference_steps
    prev = ts - ratio
    a_t = ac[ts]
    a_p = torch.where(prev >= 0, ac[prev.clamp_min(0)], torch.tensor(final, dtype=torch.float64))
    var = (1 - a_p) / (1 - a_t) * (1 - a_t / a_p)
    sigma = eta * var.clamp_min(0).sqrt()
    c_x = a_p.sqrt() / a_t.sqrt()
    c_eps = (1 - a_p - sigma**2).clamp_min(0).sqrt() - a_p.sqrt() * (1 - a_t).sqrt() / a_t.sqrt()
    return DDIMCoefficients(ts, c_x, c_eps, sigma, float(eta))


def ddim_loop(eps_fn: Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor], x: torch.Tensor,
              coeffs: DDIMCoefficients, generator: torch.Generator | None = None) -> torch.Tensor:
    """Run the reverse loop from ``x`` (= x_T, or x_t of the first step) and return x_0.

    ``eps_fn(x_t, t_tensor, i)`` returns ε at step ``i`` (``t_tensor``: 0-d long on x's device).
    The coefficient values are read once into Python floats (one host sync for the whole loop,
    not three scalar tensors per step).
    """
    ts = coeffs.timesteps.to(x.device)
    cx, ce, sg = coeffs.c_x.tolist(), coeffs.c_eps.tolist(), coeffs.sigma.tolist()
    for i in range(len(cx)):
        eps = eps_fn(x, ts[i], i)
        x = torch.add(x * cx[i], eps, alpha=ce[i])
        if coeffs.eta > 0:  # drawn at every step, as diffusers does (same generator stream)
            noise = torch.randn(eps.shape, generator=generator, device=eps.device, dtype=eps.dtype)
            x = x.add_(noise, alpha=sg[i])
    return x
