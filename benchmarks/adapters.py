"""Benchmark probes for methods that do not (yet) ship the optional ``Method`` hooks.

``Method.denoiser_example(batch)`` and ``Method.train_step_example(batch)`` are optional
(``methods/base.py``). When a method returns ``None`` from a hook, the probe here builds
the same thing from the method's public attributes, so FLOPs, per-step latency and training
throughput are reported for every method. A method's own hook always wins.

- ``denoiser_example``: the module run ONCE PER SAMPLING STEP / ITERATION with inputs of the
  shape it sees there (CFG methods: the cond + uncond batch of ``2 * batch`` rows);
- ``train_step_example``: one optimiser step (forward, backward, update) on random data of
  ``batch`` samples, frozen parts (text encoder, tokenizer) run as in training.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def denoiser_example(m, batch: int) -> tuple[nn.Module, tuple] | None:
    """``(module, inputs)`` of one sampling step of ``m`` at ``batch`` samples, or ``None``."""
    ex = m.denoiser_example(batch)
    if ex is not None:
        return ex
    probe = _DENOISERS.get(m.registry_name)
    return probe(m, batch) if probe else None


def train_step_example(m, batch: int) -> Callable[[], None] | None:
    ex = m.train_step_example(batch)
    if ex is not None:
        return ex
    probe = _TRAIN_STEPS.get(m.registry_name)
    return probe(m, batch) if probe else None


def configured_batch(m, scale: str) -> int:
    """The training batch of the method's main (denoiser / transformer) stage at ``scale``."""
    c = m.cfg
    for path in (("benchmark_batch",), ("denoiser", "batch_size"), ("mask_transformer", "batch_size"),
                 ("pretrain", "batch_size"), ("train", "batch_size")):
        v = c
        for k in path:
            v = v.get(k) if isinstance(v, dict) else None
        if isinstance(v, int):
            # DiffusionPose's paper batch (512 over 8 GPUs) is 64 per device (mmpose 8xb64)
            return min(v, 64) if m.registry_name in ("diffusionpose", "heatmap_baseline") else v
    return 32


def default_steps(m) -> int | None:
    """The sampler's configured step / iteration count (``None``: not an iterative sampler)."""
    c, name = m.cfg, m.registry_name
    if name == "mld":
        return int(m.diff_cfg.get("steps", 50))
    if name in ("momask", "hgm3"):
        return int(m.c["sampler"]["iterations"])
    if name == "macdiff":
        return int((c.get("sampling") or {}).get("ddim_steps", 50))
    if name == "diffusionpose":
        return int(c.get("sample_steps", 2))
    return None


# -- denoiser probes ------------------------------------------------------------------------------------
class _Cfg(nn.Module):
    """Wraps ``module.cfg_logits`` (MoMask/HGM3: cond + uncond rows in one forward) for tracing."""

    def __init__(self, module: nn.Module, scale: float) -> None:
        super().__init__()
        self.module, self.scale = module, scale

    def forward(self, ids, cond, pad, cond_pad=None):
        return self.module.cfg_logits(ids, cond, pad, cond_pad, self.scale)


def _mld(m, batch: int):
    den, vae = m.denoiser.eval(), m.vae
    rows = 2 * batch if float(m.diff_cfg.get("guidance_scale", 7.5)) > 1 else batch  # CFG: one doubled batch
    z = torch.randn(rows, vae.latent_size, vae.latent_dim, device=m.device)
    cond = (torch.randn(rows, 1, den.text_encoded_dim, device=m.device) if m.condition == "text"
            else torch.zeros(rows, dtype=torch.long, device=m.device))
    return den, (z, torch.tensor([500], device=m.device), cond)


def _momask(m, batch: int):
    mt = m.mtrans.eval()
    n = int(m.c["max_motion_length"]) // m.vq.unit_length  # 196 frames -> 49 tokens
    ids = torch.full((batch, n), mt.mask_id, dtype=torch.long, device=m.device)
    pad = torch.zeros(batch, n, dtype=torch.bool, device=m.device)
    dim = int(m.c["text_encoder"]["dim"])
    if getattr(m, "gat", None) is not None:  # HGM3: a 13-node graph condition level with its padding
        from methods.hgm3.gat import N_NODES

        cond = torch.randn(batch, N_NODES, dim, device=m.device)
        return _Cfg(mt, float(m.c["sampler"]["cond_scale"])), (ids, cond, pad,
                                                                  torch.zeros(batch, N_NODES, dtype=torch.bool))
    cond = torch.randn(batch, 1, dim, device=m.device)
    return _Cfg(mt, float(m.c["sampler"]["cond_scale"])), (ids, cond, pad)


def _macdiff(m, batch: int):
    core = m.core.eval()
    enc = core.encoder
    x_t = torch.randn(batch, enc.num_frames, enc.num_joints, 3, device=m.device)
    dec = core.decoder
    z = torch.randn(batch, dec.tp * dec.vp, dec.dim_feat, device=m.device)
    guidance = float(m.cfg.get("sampling", {}).get("guidance", 1.0))
    if guidance != 1.0:  # CFG doubles the decoder batch (MacDiffCore._eps)
        x_t, z = torch.cat([x_t, x_t]), torch.cat([z, z])
    return dec, (x_t, torch.full((x_t.shape[0],), 500, dtype=torch.long, device=m.device), z)


_DENOISERS = {"mld": _mld, "momask": _momask, "hgm3": _momask, "macdiff": _macdiff}


# -- train-step probes ------------------------------------------------------------------------------------
def _step(params, loss_fn: Callable[[], torch.Tensor], modules: list[nn.Module]) -> Callable[[], None]:
    opt = torch.optim.AdamW([p for p in params if p.requires_grad], lr=1e-4)

    def step() -> None:
        for mod in modules:
            mod.train()
        loss = loss_fn()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def _mld_train(m, batch: int):
    """Denoiser stage (the VAE is frozen then): ε-prediction loss on VAE latents of random motions."""
    from methods.mld.diffusion import diffusion_loss, make_train_scheduler

    sched = make_train_scheduler(m.diff_cfg)
    x = torch.randn(batch, 196, m.nfeats, device=m.device)
    lengths = torch.full((batch,), 196, dtype=torch.long, device=m.device)
    conds = ["a person walks forward and then waves with the right hand"] * batch if m.condition == "text" \
        else [0] * batch

    def loss():
        m.vae.eval()
        with torch.no_grad():  # official: diffusion on a posterior sample of the frozen VAE
            z0, _, _ = m.vae.encode(x, lengths)
        return diffusion_loss(m.denoiser, sched, z0, m._train_cond(conds))

    return _step(m.denoiser.parameters(), loss, [m.denoiser])


def _momask_train(m, batch: int):
    """Masked-transformer stage: frozen tokenizer on random crops, mask loss with real captions."""
    n = int(m.c["max_motion_length"]) // m.vq.unit_length
    x = torch.randn(batch, n * m.vq.unit_length, m.vq.d_in, device=m.device)
    captions = [f"a person walks forward {i % 7} steps and then waves" for i in range(batch)]
    mods = list(m._mask_modules().values())

    def loss():
        m.vq.eval()
        with torch.no_grad():
            ids = m.vq.encode(x)[..., 0]
        pad = torch.zeros_like(ids, dtype=torch.bool)
        return m.mask_loss(ids, pad, captions, 0)[0]

    return _step([p for mod in mods for p in mod.parameters()], loss, mods)


def _macdiff_train(m, batch: int):
    """Pretraining step: masked encoder + conditional denoising decoder on random normalised clips."""
    enc = m.core.encoder
    x = torch.randn(batch, enc.num_frames, enc.num_joints, 3, device=m.device)
    return _step(m.core.parameters(), lambda: m.core.loss(x, x + 0.005 * torch.randn_like(x))[0], [m.core])


_TRAIN_STEPS = {"mld": _mld_train, "momask": _momask_train, "hgm3": _momask_train, "macdiff": _macdiff_train}
