"""Benchmark hooks of MLD (``Method.denoiser_example`` / ``train_step_example``).

``benchmarks/test_methods.py`` counts the FLOPs and the latency of the latent denoiser as run at
every DDIM step, and the samples/s of one denoiser-stage optimiser step.
"""

from __future__ import annotations

import torch
from torch import nn

from methods.mld.diffusion import diffusion_loss, make_train_scheduler


def denoiser_example(method, batch: int = 1) -> tuple[nn.Module, tuple]:
    """The latent denoiser as run at every DDIM step: with CFG one forward over ``2 * batch``
    rows (uncond + cond), z ``[2B, n, d]``, t, text embeddings ``[2B, 1, e]`` (or action ids)."""
    rows = 2 * batch if float(method.diff_cfg["guidance_scale"]) > 1 else batch
    z = torch.randn(rows, method.vae.latent_size, method.vae.latent_dim, device=method.device)
    cond = (torch.randn(rows, 1, method.denoiser.text_encoded_dim, device=method.device) if method.condition == "text"
            else torch.zeros(rows, dtype=torch.long, device=method.device))
    return method.denoiser.eval(), (z, torch.tensor([500], device=method.device), cond)


def train_step_example(method, batch: int):
    """One denoiser-stage optimiser step (as ``_fit_denoiser``) on random 196-frame motions."""
    sched, d = make_train_scheduler(method.diff_cfg), dict(method.cfg["denoiser"])
    # max_motion_len null (action experiments: no cap) -> the official text MAX_LEN 196
    x = torch.randn(batch, int(method.cfg["max_motion_len"] or 196), method.nfeats, device=method.device)
    lengths = torch.full((batch,), x.shape[1], dtype=torch.long, device=method.device)
    conds = ["a person walks forward and waves"] * batch if method.condition == "text" else [0] * batch
    opt = torch.optim.AdamW(method.denoiser.parameters(), lr=float(d["lr"]),
                            **({"fused": True} if bool(d["fused_adamw"]) else {}))  # as MLD._train

    def step() -> None:
        method.vae.eval()
        method.denoiser.train()
        with torch.no_grad():  # diffusion on a posterior sample of the frozen VAE, as in training
            z0, _, _ = method.vae.encode(x, lengths)
        loss = diffusion_loss(method.denoiser, sched, z0, method._train_cond(conds))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step
