"""Noise schedules of MacDiff and the diffusers schedulers built from them.

MacDiff trains with T = 1000 steps and its own *inverse-cosine* schedule
(source: official code, ``guided_diffusion/gaussian_diffusion.py::get_named_beta_schedule``
of ``Wenrui-Shen/MacDiff@692888f``; see ``shared/reference/macdiff.md``)::

    s  = 0.008
    c0 = cos^2((s / (1 + s)) * pi / 2)
    alpha_bar(t) = (1 + tau) * c0 * (1 - t) - tau * cos^2(((t + s) / (1 + s)) * pi / 2),  t in [0, 1]
    beta_i = min(1 - alpha_bar((i + 1) / T) / alpha_bar(i / T), 0.999),   i = 0 .. T-1

``tau = 1`` is the paper's setting. ``tau = 0`` degenerates to ``alpha_bar(t) = c0 (1 - t)``,
a linear-in-t signal level (NOT the DDPM "linear" beta schedule): its betas are
``beta_i = 1 / (T - i)`` for i < T-1 and the last one is clipped to 0.999.

Where the paper forced something custom: diffusers ships no inverse-cosine schedule, so the
betas are computed here in float64 and handed to diffusers through ``trained_betas``
(``DDPMScheduler`` for the forward/noising process, ``DDIMScheduler`` for sampling). The
"cosine" ablation uses the same improved-DDPM discretisation (it equals diffusers'
``squaredcos_cap_v2``) and "linear" is the DDPM linear schedule scaled to T (guided-diffusion
definition), both also passed as ``trained_betas`` so all three go through one code path.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

_S = 0.008
MAX_BETA = 0.999
SCHEDULES = ("inverse_cosine", "cosine", "linear")


def betas_for_alpha_bar(num_steps: int, alpha_bar: Callable[[float], float], max_beta: float = MAX_BETA) -> np.ndarray:
    """Improved-DDPM discretisation of a continuous ``alpha_bar(t)`` -> float64 betas ``[T]``."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    betas = [min(1.0 - alpha_bar((i + 1) / num_steps) / alpha_bar(i / num_steps), max_beta)
             for i in range(num_steps)]
    return np.asarray(betas, dtype=np.float64)


def inverse_cosine_betas(num_steps: int, tau: float = 1.0) -> np.ndarray:
    """MacDiff's inverse-cosine betas (float64 ``[num_steps]``); ``tau`` pulls toward moderate noise.

    ``tau = 1`` is the paper's schedule; ``tau = 0`` is the linear-in-t ``alpha_bar`` described
    in the module docstring.
    """
    if tau < 0:
        raise ValueError(f"tau must be >= 0, got {tau}")
    c0 = math.cos(_S / (1 + _S) * math.pi / 2) ** 2

    def alpha_bar(t: float) -> float:
        return (1 + tau) * c0 * (1 - t) - tau * math.cos((t + _S) / (1 + _S) * math.pi / 2) ** 2

    return betas_for_alpha_bar(num_steps, alpha_bar)


def cosine_betas(num_steps: int) -> np.ndarray:
    """Improved-DDPM cosine schedule (Nichol & Dhariwal 2021), float64 ``[num_steps]``."""
    return betas_for_alpha_bar(num_steps, lambda t: math.cos((t + _S) / (1 + _S) * math.pi / 2) ** 2)


def linear_betas(num_steps: int) -> np.ndarray:
    """DDPM linear schedule scaled to ``num_steps`` (guided-diffusion definition), float64."""
    scale = 1000 / num_steps
    return np.linspace(scale * 1e-4, scale * 0.02, num_steps, dtype=np.float64)


def make_betas(name: str, num_steps: int, tau: float = 1.0) -> np.ndarray:
    """Betas for a schedule name in :data:`SCHEDULES`."""
    if name == "inverse_cosine":
        return inverse_cosine_betas(num_steps, tau)
    if name == "cosine":
        return cosine_betas(num_steps)
    if name == "linear":
        return linear_betas(num_steps)
    raise ValueError(f"unknown noise schedule {name!r}; expected one of {SCHEDULES}")


def make_schedulers(name: str, num_steps: int, tau: float = 1.0):
    """``(DDPMScheduler, DDIMScheduler)`` sharing the schedule's betas (epsilon prediction).

    ``clip_sample=False``: skeleton coordinates are normalised by mean/std, not to [-1, 1].
    DDIM uses ``set_alpha_to_one=False`` and "leading" spacing (diffusers defaults for the rest).
    """
    # lazy: diffusers costs ~1.7 CPU-s to import (torch._dynamo, sympy); planning a run needs none
    from diffusers import DDIMScheduler, DDPMScheduler

    betas = make_betas(name, num_steps, tau)
    common = dict(num_train_timesteps=num_steps, trained_betas=betas, clip_sample=False, prediction_type="epsilon")
    return DDPMScheduler(**common), DDIMScheduler(**common, set_alpha_to_one=False)
