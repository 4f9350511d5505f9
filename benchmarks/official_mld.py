"""The authors' MLD next to the suite's, at identical shapes and weights, for side-by-side timing.

The authors' code (``ChenFengYe/motion-latent-diffusion``) is never vendored: the user points
``MOTIONREPRO_OFFICIAL_MLD`` at a local checkout and this module imports its ``MldDenoiser`` and
``MldVae`` from there (``mld/models/architectures/``; they need only torch and numpy). Everything
else (which weights, which loop) is built here so both sides do the same math:

- sampling: the reverse loop of ``mld/models/modeltype/mld.py::_diffusion_reverse`` (lines
  290-360: ``torch.cat([latents] * 2)``, the denoiser, CFG, diffusers ``DDIMScheduler.step``)
  against :func:`methods.mld.diffusion.ddim_sample` (eager, the default) or the suite's
  ahead-of-time sampler (:mod:`methods.mld.fast_sampler`); both from the same ``z_T`` and text
  embeddings ``[2B, 1, 768]`` (unconditional first, as the authors order them);
- training: one denoiser step as ``_diffusion_process`` + ``allsplit_step`` (frozen VAE encode,
  ``add_noise``, ε-MSE, backward, AdamW over the denoiser) against the suite's step.

Both sides are built from ONE seeded set of random weights: the suite's modules keep the
authors' parameter names, so the official ``state_dict`` loads strictly into them
(``methods/mld/convert.py``). :func:`max_output_gap` checks they agree.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn

from evaluators.core.config import load_config
from methods.common import onednn_linear
from methods.mld.denoiser import LatentDenoiser
from methods.mld.diffusion import diffusion_loss, make_ddim_scheduler, make_train_scheduler
from methods.mld.vae import MotionVAE

ENV = "MOTIONREPRO_OFFICIAL_MLD"

# Paper shapes (configs/modules/{denoiser,motion_vae}.yaml of the official code; configs/method/mld.yaml):
# MLD-1 latent 1 x 256, CLIP-L text width 768, 9 layers, 4 heads, ff 1024, HumanML3D 263 features, 196 frames.
PAPER = {"latent_size": 1, "latent_dim": 256, "text_encoded_dim": 768, "ff_size": 1024, "num_layers": 9,
         "num_heads": 4, "nfeats": 263, "frames": 196}


def official_root() -> Path | None:
    """The checkout named by ``$MOTIONREPRO_OFFICIAL_MLD``, or None when unset."""
    root = os.environ.get(ENV)
    if not root:
        return None
    path = Path(root).expanduser()
    if not (path / "mld" / "models" / "architectures" / "mld_denoiser.py").is_file():
        raise FileNotFoundError(f"${ENV}={root}: not a checkout of ChenFengYe/motion-latent-diffusion "
                                "(no mld/models/architectures/mld_denoiser.py)")
    return path


def import_official(root: Path) -> SimpleNamespace:
    """``MldDenoiser`` and ``MldVae`` imported from the checkout at ``root``."""
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    # lazy: the authors' package exists only where the user checked it out
    from mld.models.architectures.mld_denoiser import MldDenoiser
    from mld.models.architectures.mld_vae import MldVae  # lazy: as above

    return SimpleNamespace(MldDenoiser=MldDenoiser, MldVae=MldVae)


def _ablation() -> SimpleNamespace:
    # configs/config_mld_humanml3d.yaml TRAIN.ABLATION + configs/base.yaml (MLP_DIST False, VAE_TYPE for the denoiser)
    return SimpleNamespace(SKIP_CONNECT=True, PE_TYPE="mld", DIFF_PE_TYPE="mld", MLP_DIST=False, VAE_TYPE="mld")


def diffusion_cfg() -> dict:
    """The suite's MLD ``diffusion`` block (configs/method/mld.yaml: the official scheduler values)."""
    return dict(load_config("method", "mld")["diffusion"])


@dataclass
class Pair:
    """The authors' modules and the suite's, holding the same weights."""

    official_denoiser: nn.Module
    suite_denoiser: LatentDenoiser
    official_vae: nn.Module | None = None
    suite_vae: MotionVAE | None = None


def build_pair(root: Path, seed: int = 0, vae: bool = False, shapes: dict | None = None,
               dropout: float = 0.1) -> Pair:
    """Both denoisers (and VAEs when ``vae``) at ``shapes`` (default :data:`PAPER`), random official
    initialisation under ``seed``, copied strictly into the suite's modules. ``dropout`` 0 makes a
    training step deterministic given the seed (the two sides draw dropout masks differently)."""
    s = {**PAPER, **(shapes or {})}
    off = import_official(root)
    torch.manual_seed(seed)
    o_den = off.MldDenoiser(_ablation(), nfeats=s["nfeats"], condition="text",
                            latent_dim=[s["latent_size"], s["latent_dim"]], ff_size=s["ff_size"],
                            num_layers=s["num_layers"], num_heads=s["num_heads"], dropout=dropout,
                            normalize_before=False, activation="gelu", flip_sin_to_cos=True,
                            position_embedding="learned", arch="trans_enc", freq_shift=0,
                            text_encoded_dim=s["text_encoded_dim"])
    s_den = LatentDenoiser(s["latent_size"], s["latent_dim"], "text", s["text_encoded_dim"], ff_size=s["ff_size"],
                           num_layers=s["num_layers"], num_heads=s["num_heads"], dropout=dropout)
    s_den.load_state_dict(o_den.state_dict(), strict=True)
    pair = Pair(o_den.eval(), s_den.eval())
    if vae:
        o_vae = off.MldVae(_ablation(), nfeats=s["nfeats"], latent_dim=[s["latent_size"], s["latent_dim"]],
                           ff_size=s["ff_size"], num_layers=s["num_layers"], num_heads=s["num_heads"], dropout=dropout,
                           arch="encoder_decoder", normalize_before=False, activation="gelu",
                           position_embedding="learned")
        s_vae = MotionVAE(s["nfeats"], s["latent_size"], s["latent_dim"], s["ff_size"], s["num_layers"],
                          s["num_heads"], dropout)
        s_vae.load_state_dict(o_vae.state_dict(), strict=True)
        pair.official_vae, pair.suite_vae = o_vae.eval(), s_vae.eval()
    return pair


def official_sampler(denoiser: nn.Module, cfg: dict, steps: int, guidance: float) -> Callable:
    """``(text_emb [2B, 1, e], z_T [B, n, d]) -> z_0``: the authors' ``_diffusion_reverse`` loop
    (same scheduler configuration as theirs, built once as their model does at init)."""
    sched = make_ddim_scheduler(steps, cfg)

    def run(text_emb: torch.Tensor, z_T: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            latents = z_T * sched.init_noise_sigma
            sched.set_timesteps(steps)
            for t in sched.timesteps:
                model_in = torch.cat([latents] * 2)
                eps = denoiser(sample=model_in, timestep=t, encoder_hidden_states=text_emb, lengths=None)[0]
                eps_u, eps_c = eps.chunk(2)
                eps = eps_u + guidance * (eps_c - eps_u)
                latents = sched.step(eps, t, latents, eta=0.0).prev_sample
            return latents

    return run


def inputs(batch: int, seed: int = 1, shapes: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Text embeddings ``[2B, 1, e]`` (uncond rows first) and ``z_T [B, n, d]``, seeded."""
    s = {**PAPER, **(shapes or {})}
    g = torch.Generator().manual_seed(seed)
    text = torch.randn(2 * batch, 1, s["text_encoded_dim"], generator=g)
    z_T = torch.randn(batch, s["latent_size"], s["latent_dim"], generator=g)
    return text, z_T


def max_output_gap(a: Callable, b: Callable, *args) -> float:
    """Largest absolute difference of two samplers' outputs on the same inputs."""
    return float((a(*args) - b(*args)).abs().max())


def official_train_step(pair: Pair, cfg: dict, batch: int, seed: int = 2) -> Callable[[], float]:
    """One denoiser optimiser step as the authors' ``allsplit_step`` (stage diffusion) runs it, with
    the frozen VAE in eval mode (same math as the suite): encode under no_grad, ``_diffusion_process``,
    ε-MSE (``mld/models/losses/mld.py`` inst_loss), backward, AdamW (lr 1e-4, PyTorch defaults)."""
    sched = make_train_scheduler(cfg)
    x, lengths, text = _train_batch(batch, seed)
    den, vae = pair.official_denoiser, pair.official_vae
    opt = torch.optim.AdamW(den.parameters(), lr=1e-4)
    lens = lengths.tolist()

    def step() -> float:
        vae.eval()
        den.train()
        with torch.no_grad():
            z, _ = vae.encode(x, lens)  # [n, B, d]
        latents = z.permute(1, 0, 2)
        noise = torch.randn_like(latents)
        t = torch.randint(0, sched.config.num_train_timesteps, (latents.shape[0],)).long()
        noisy = sched.add_noise(latents.clone(), noise, t)
        pred = den(sample=noisy, timestep=t, encoder_hidden_states=text, lengths=lens)[0]
        loss = nn.functional.mse_loss(pred, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    return step


def suite_train_step(pair: Pair, cfg: dict, batch: int, seed: int = 2, fused: bool = False,
                     onednn: bool = False) -> Callable[[], float]:
    """One denoiser optimiser step as :meth:`methods.mld.method.MLD._fit_denoiser` runs it (``fused``:
    the fused CPU AdamW, ``denoiser.fused_adamw``; ``onednn``: the frozen encode on oneDNN's packed
    linear, ``denoiser.onednn_linear``)."""
    sched = make_train_scheduler(cfg)
    x, lengths, text = _train_batch(batch, seed)
    den, vae = pair.suite_denoiser, pair.suite_vae
    opt = torch.optim.AdamW(den.parameters(), lr=1e-4, **({"fused": True} if fused else {}))
    lin = onednn_linear.PackedWeights(rows=4096).linear if onednn else None

    def step() -> float:
        vae.eval()
        den.train()
        with torch.no_grad():
            z0, _, _ = vae.encode(x, lengths, lin=lin)
        loss = diffusion_loss(den, sched, z0, text)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    return step


def _train_batch(batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, PAPER["frames"], PAPER["nfeats"], generator=g)
    lengths = torch.full((batch,), PAPER["frames"], dtype=torch.long)
    text = torch.randn(batch, 1, PAPER["text_encoded_dim"], generator=g)
    return x, lengths, text
