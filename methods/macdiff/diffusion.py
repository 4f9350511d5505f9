"""MacDiff training loss, conditional DDIM sampling, masked reconstruction and data augmentation.

Everything here works on ONE person per row: ``[N, T, V, C]`` skeletons already normalised with
the per-axis mean/std (see :class:`MacDiffCore.normalise`). The method class folds persons into
the batch (``[B, 3, T, V, M] -> [B*M, T, V, 3]``) before calling in.

Training (official ``Transformer.forward``): t ~ U{0..T-1}; x_t = q_sample(x, t, eps) through the
diffusers ``DDPMScheduler.add_noise``; the encoder sees a masked (and jittered) copy; the condition
is zeroed for ``uncond_ratio`` of the rows; loss = masked-token MSE(eps_hat, eps) +
``lambda_uni`` * token-uniformity of the encoder tokens.

Sampling: diffusers ``DDIMScheduler`` (eta = 0) with the same betas; classifier-free guidance
``eps_u + w (eps_c - eps_u)`` computed by ONE batched decoder call over ``[cond; uncond]`` (the
unconditional branch is the zero condition, exactly what condition dropout trained).
"""

from __future__ import annotations

import torch
from torch import nn

from methods.common.ddim import DDIMCoefficients, ddim_coefficients, ddim_loop
from methods.macdiff.model import (
    MacDiffDecoder,
    MacDiffEncoder,
    build_condition,
    motion_aware_noise,
    patchify,
    token_uniformity_loss,
    unpatchify,
)
from methods.macdiff.schedule import make_schedulers

MASK_KINDS = ("random", "motion_aware")


class MacDiffCore(nn.Module):
    """Encoder + decoder + noise schedule. Hyper-parameters as plain keyword arguments."""

    def __init__(self, *, model: dict, diffusion: dict, mask_ratio: float = 0.9,
                 uncond_ratio: float = 0.1, lambda_uni: float = 0.02, fusion: bool = True,
                 input_mean=(0.0, 0.0, 0.0), input_var=(1.0, 1.0, 1.0), self_shift: bool = False,
                 mask_kind: str = "random", motion_aware_tau: float = 0.8, layer_mask_ratio: float = 0.0,
                 layer_mask_train_only: bool = False) -> None:
        super().__init__()
        if mask_kind not in MASK_KINDS:
            raise ValueError(f"mask_kind must be one of {MASK_KINDS}, got {mask_kind!r}")
        if mask_kind == "motion_aware" and not float(motion_aware_tau) > 0:
            raise ValueError(f"motion_aware_tau must be > 0 for mask_kind=motion_aware, got {motion_aware_tau}")
        if not 0.0 <= float(layer_mask_ratio) <= 1.0:
            raise ValueError(f"layer_mask_ratio must be in [0, 1], got {layer_mask_ratio}")
        self.mask_kind, self.motion_aware_tau = mask_kind, float(motion_aware_tau)
        self.model_cfg = dict(model)
        self.encoder = MacDiffEncoder(**model)
        self.decoder = MacDiffDecoder(**model, layer_mask_ratio=float(layer_mask_ratio),
                                      layer_mask_train_only=bool(layer_mask_train_only))
        self.t_patch = int(model["t_patch_size"])
        self.patch = int(model["patch_size"])
        self.mask_ratio, self.uncond_ratio, self.lambda_uni, self.fusion = mask_ratio, uncond_ratio, lambda_uni, fusion
        self.num_steps = int(diffusion["steps"])
        self.noise_sched, self.ddim = make_schedulers(diffusion["schedule"], self.num_steps, float(diffusion["tau"]))
        # not persistent: the official model keeps them as python lists, outside its state dict.
        # self_shift (official PKU configs): subtract each row's own mean over (T, V) and use mean 0
        self.self_shift = bool(self_shift)
        if self.self_shift:
            input_mean = (0.0, 0.0, 0.0)
        self.register_buffer("mean", torch.tensor(input_mean, dtype=torch.float32), persistent=False)
        self.register_buffer("std", torch.tensor(input_var, dtype=torch.float32).sqrt(), persistent=False)

    # -- data space ------------------------------------------------------------------------------
    def shift(self, x: torch.Tensor) -> torch.Tensor:
        """Per-row offset ``[N, 1, 1, 3]`` removed before normalising (zeros unless ``self_shift``)."""
        if self.self_shift:
            return x.mean(dim=(1, 2), keepdim=True)
        return torch.zeros_like(x[:, :1, :1])

    def normalise(self, x: torch.Tensor, shift: torch.Tensor | None = None) -> torch.Tensor:
        """Raw rows ``[N, T, V, 3]`` -> normalised (per-axis mean/std of the pretraining set)."""
        return (x - (self.shift(x) if shift is None else shift) - self.mean) / self.std

    def denormalise(self, x: torch.Tensor, shift: torch.Tensor | None = None) -> torch.Tensor:
        return x * self.std + self.mean + (0.0 if shift is None else shift)

    # -- training ----------------------------------------------------------------------------------
    def mask_noise(self, x_raw: torch.Tensor | None) -> torch.Tensor | None:
        """Masking noise for ``mask_kind`` (None = uniform, the official ``random_masking``)."""
        if self.mask_kind == "random":
            return None
        if x_raw is None:
            raise ValueError("mask_kind=motion_aware needs the clean raw sequence (x_raw)")
        return motion_aware_noise(x_raw, self.t_patch, self.patch, self.motion_aware_tau)

    def loss(self, x: torch.Tensor, x_aug: torch.Tensor,
             x_raw: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """``x``: clean target, ``x_aug``: encoder input; both normalised ``[N, T, V, C]``.
        ``x_raw``: the clean sequence before shift/normalisation (motion-aware masking reads it,
        as the official ``x_orig``)."""
        n = x.shape[0]
        t = torch.randint(0, self.num_steps, (n,), device=x.device)
        eps = torch.randn_like(x)
        x_t = self.noise_sched.add_noise(x, eps, t)
        latent, mask, ids_restore = self.encoder.forward_masked(x_aug, self.mask_ratio, noise=self.mask_noise(x_raw))
        z = build_condition(latent, ids_restore, self.fusion)
        keep = (torch.rand(n, device=x.device) >= self.uncond_ratio).float()
        pred = self.decoder(x_t, t, z * keep[:, None, None])
        per_tok = (pred - patchify(eps, self.t_patch, self.patch)).pow(2).mean(dim=-1)  # [N, L]
        if self.mask_ratio > 0:
            loss_diff = ((per_tok * mask).sum(-1) / mask.sum(-1)).mean()
        else:  # nothing is masked (0% ablation): the official masked mean would be 0/0; use all tokens
            loss_diff = per_tok.mean()
        loss_uni = token_uniformity_loss(latent)
        loss = loss_diff + self.lambda_uni * loss_uni
        return loss, {"loss_diff": float(loss_diff.detach()), "loss_uni": float(loss_uni.detach())}

    # -- conditioning --------------------------------------------------------------------------------
    def condition(self, x: torch.Tensor, mask_ratio: float | None = None,
                  generator: torch.Generator | None = None, return_mask: bool = False):
        """Encode a (masked) normalised skeleton into the per-token condition ``[N, L, D]``
        (and, with ``return_mask``, the token mask ``[N, L]``, 1 = hidden)."""
        ratio = self.mask_ratio if mask_ratio is None else mask_ratio
        latent, mask, ids_restore = self.encoder.forward_masked(x, ratio, generator=generator)
        z = build_condition(latent, ids_restore, self.fusion)
        return (z, mask) if return_mask else z

    def _eps(self, x_t: torch.Tensor, t, z: torch.Tensor, guidance: float) -> torch.Tensor:
        tt = (t if isinstance(t, torch.Tensor) else torch.tensor(int(t), device=x_t.device)).expand(x_t.shape[0])
        if guidance == 1.0:
            pred = self.decoder(x_t, tt, z)
        else:  # classifier-free guidance: one batched forward over [cond; uncond]
            both = self.decoder(torch.cat([x_t, x_t]), torch.cat([tt, tt]), torch.cat([z, torch.zeros_like(z)]))
            cond, unc = both.chunk(2)
            pred = unc + guidance * (cond - unc)
        return unpatchify(pred, self.t_patch, x_t.shape[2], self.patch, x_t.shape[3])

    @torch.inference_mode()
    def sample(self, z: torch.Tensor, steps: int = 50, guidance: float = 1.0, x_start: torch.Tensor | None = None,
               t_start: int | None = None, generator: torch.Generator | None = None,
               fused: bool = True) -> torch.Tensor:
        """Conditional DDIM (eta 0) -> normalised skeletons ``[N, T, V, C]``.

        From pure noise by default; with ``x_start`` and ``t_start`` it starts from
        ``q_sample(x_start, t_start)`` and runs only the DDIM steps at or below ``t_start``
        (the partial-noise path used by diffusion data augmentation).
        """
        n = z.shape[0]
        shape = (n, self.encoder.num_frames, self.encoder.num_joints, 3)
        coeffs = self.ddim_coefficients(steps)
        noise = torch.randn(shape, generator=generator, device="cpu").to(z.device)
        if x_start is not None and t_start is not None:
            coeffs = coeffs.subset(coeffs.timesteps <= t_start)
            if len(coeffs) == 0:
                return x_start.clone()
            x = self.noise_sched.add_noise(x_start, noise, coeffs.timesteps[:1].repeat(n).to(z.device))
        else:
            x = noise
        if not fused:  # the reference: diffusers' DDIMScheduler.step at every step (tested equal)
            self.ddim.set_timesteps(int(steps))
            for t in coeffs.timesteps:
                x = self.ddim.step(self._eps(x, int(t), z, guidance), int(t), x, eta=0.0).prev_sample
            return x
        return ddim_loop(lambda x_t, t, i: self._eps(x_t, t, z, guidance), x, coeffs)

    def ddim_coefficients(self, steps: int) -> DDIMCoefficients:
        """Fused DDIM (eta 0) coefficients of this schedule, computed once per step count."""
        cache = self.__dict__.setdefault("_ddim_cache", {})
        if steps not in cache:
            self.ddim.set_timesteps(int(steps))
            cache[steps] = ddim_coefficients(self.ddim, eta=0.0)
        return cache[steps]

    @torch.inference_mode()
    def reconstruct(self, x: torch.Tensor, steps: int = 50, guidance: float = 1.0,
                    mask_ratio: float | None = None, seed: int = 0, return_mask: bool = False):
        """Masked reconstruction: encode a masked view of ``x`` (normalised) and sample from noise.
        ``return_mask``: also the token mask ``[N, L]`` (1 = hidden from the encoder)."""
        gen = torch.Generator().manual_seed(seed)
        z, mask = self.condition(x, mask_ratio, generator=_device_gen(gen, x.device, seed), return_mask=True)
        out = self.sample(z, steps=steps, guidance=guidance, generator=gen)
        return (out, mask) if return_mask else out

    @torch.inference_mode()
    def generate_like(self, x: torch.Tensor, steps: int, guidance: float, t_start: int | None,
                      z_noise_std: float = 0.0, mask_ratio: float | None = None, seed: int = 0) -> torch.Tensor:
        """A generated variant of each row of ``x`` (normalised): condition on its masked encoding
        (plus optional Gaussian noise on the condition) and denoise from ``q_sample(x, t_start)``
        (or from pure noise when ``t_start`` is None)."""
        gen = torch.Generator().manual_seed(seed)
        z = self.condition(x, mask_ratio, generator=_device_gen(gen, x.device, seed))
        if z_noise_std > 0:
            z = z + z_noise_std * torch.randn(z.shape, generator=gen).to(z.device)
        return self.sample(z, steps=steps, guidance=guidance, x_start=x if t_start is not None else None,
                           t_start=t_start, generator=gen)


def _device_gen(gen: torch.Generator, device: torch.device, seed: int) -> torch.Generator:
    """A generator on ``device`` (masking noise is drawn there); the CPU one when on CPU."""
    if device.type == "cpu":
        return gen
    return torch.Generator(device=device).manual_seed(seed + 1)
