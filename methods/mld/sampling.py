"""MLD sampling: CFG DDIM in the latent space, and the numerics switches the sampler honours.

Mixed into :class:`methods.mld.method.MLD`; kept apart so that the choice of sampling path
(eager fp32, bf16 copies, ``torch.compile``, the fused fast sampler) lives in one place,
separate from the model's construction and its ``generate``/``reconstruct`` entry points.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from evaluators.core.precision import LowPrecisionCache
from methods.common import onednn_linear
from methods.common.compile import CompiledOrEager
from methods.mld.diffusion import ddim_coefficients_for, ddim_sample
from methods.mld.fast_sampler import FusedSampler, fast_sampler_for
from methods.mld.vae import MotionVAE

PRECISIONS = ("fp32", "bf16")


class MLDSampling:
    """Latent sampling; relies on MLD's ``diff_cfg``, ``denoiser``, ``vae``, ``device``, ``_bf16_denoiser``."""

    def sample_latents(self, cond: torch.Tensor, uncond: torch.Tensor | None, z_T: torch.Tensor,
                       steps: int | None = None, guidance_scale: float | None = None,
                       eta: float | None = None) -> torch.Tensor:
        """CFG DDIM from a given initial latent ``z_T [B, n, d]`` -> ``z_0`` (deterministic for η = 0)."""
        self.denoiser.eval()
        steps = int(steps or self.diff_cfg["steps"])
        guidance_scale = float(self.diff_cfg["guidance_scale"] if guidance_scale is None else guidance_scale)
        eta = float(self.diff_cfg["eta"] if eta is None else eta)
        fast = self._fast_sampler(steps, guidance_scale, eta)
        if fast is not None:
            return fast(cond, uncond, z_T.to(self.device))
        return ddim_sample(self._sampling_denoiser(), cond, uncond, z_T.to(self.device), steps=steps,
                           guidance_scale=guidance_scale, eta=eta, scheduler_cfg=self.diff_cfg)

    def _fast_sampler_on(self) -> bool:
        return bool(self.diff_cfg["fast_sampler"])

    def _onednn_on(self) -> bool:
        """``diffusion.onednn_linear`` (ours, default false) and this PyTorch can run it: the fast
        sampler's products on oneDNN's packed linear (:mod:`methods.common.onednn_linear`)."""
        return (self._fast_sampler_on() and bool(self.diff_cfg["onednn_linear"])
                and onednn_linear.unavailable() is None)

    def _fast_sampler(self, steps: int, guidance_scale: float, eta: float) -> FusedSampler | None:
        """``diffusion.fast_sampler`` (ours, default false): the whole CFG-DDIM loop on PyTorch's fused
        encoder-layer kernel (``methods/mld/fast_sampler.py``; same math as the eager loop to 1e-5).
        fp32 only (bf16 and ``compile`` keep their paths); a denoiser whose structure the kernel does not
        cover (``trans_dec``, no skip, pre-norm) or η > 0 warns once and runs eagerly. Built per
        (steps, guidance, η); it reads the denoiser's weights at every call, so training needs no rebuild."""
        if not self._fast_sampler_on() or self.precision() != "fp32" or bool(self.diff_cfg["compile"]):
            return None
        cache = self.__dict__.setdefault("_fast", {})
        key = (steps, guidance_scale, eta)
        if key not in cache:
            # None (after one warning) when the structure is not covered: cached, so it warns once
            cache[key] = fast_sampler_for(self.denoiser, ddim_coefficients_for(steps, eta, self.diff_cfg),
                                          guidance_scale, name="mld",
                                          onednn=bool(self.diff_cfg["onednn_linear"]))
        return cache[key]

    def precision(self) -> str:
        """``diffusion.precision``: ``fp32`` (default, paper numbers) or ``bf16``."""
        p = str(self.diff_cfg["precision"])
        if p not in PRECISIONS:
            raise ValueError(f"mld: diffusion.precision must be one of {PRECISIONS}, got {p!r}")
        return p

    def _sampling_denoiser(self):
        """The denoiser as the sampler calls it. bf16: the weights cast to bf16 ONCE (a cached copy;
        autocast re-casts every weight at every step under inference mode) and inputs cast on entry;
        ε is returned in fp32 so the DDIM state and update stay fp32. LayerNorm and the SDPA softmax
        of torch's CPU kernels accumulate bf16 inputs in fp32."""
        if self.precision() == "fp32":
            return self._maybe_compiled(self.denoiser)
        if self._bf16_denoiser is None:
            self._bf16_denoiser = copy.deepcopy(self.denoiser).to(torch.bfloat16).eval()
        mod = self._maybe_compiled(self._bf16_denoiser)

        def bf16_denoiser(z, t, c):
            c = c.to(torch.bfloat16) if c.is_floating_point() else c
            return mod(z.to(torch.bfloat16), t, c).float()

        return bf16_denoiser

    def _sampling_vae(self) -> MotionVAE:
        """The VAE as ``generate`` decodes with it. bf16: a view whose decoder networks (queries,
        transformer decoder, output layer) are cached copies with bf16 weights (cast once, rebuilt
        when the weights change; ``evaluators/core/precision.py``) taking and returning fp32. At
        batch 32 the 196-frame decoder costs more than a few DDIM steps of the 7-token denoiser."""
        if self.precision() == "fp32":
            return self.vae
        low = self.__dict__.setdefault("_low", LowPrecisionCache())
        return low.view("vae", self.vae, ("query_pos_decoder", "decoder", "final_layer"))

    def _maybe_compiled(self, module: nn.Module):
        """``diffusion.compile`` (ours, default false): the denoiser through ``torch.compile``
        (inductor, ``dynamic=False``: one graph per batch shape), falling back to eager with a
        warning when compilation fails (no C++ compiler, unsupported op)."""
        if not bool(self.diff_cfg["compile"]):
            return module
        cache = self.__dict__.setdefault("_compiled", {})
        if id(module) not in cache:
            cache.clear()  # a new bf16 copy or new weights object: drop old graphs
            cache[id(module)] = CompiledOrEager(module, name="mld", dynamic=False)
        return cache[id(module)]
