"""MLD (Chen et al., CVPR 2023): motion VAE + conditional latent diffusion, registered as ``mld``.

``fit(dataset)`` trains the VAE (reconstruction + KL), freezes it, then trains the latent
denoiser with ε-prediction and 10 % condition dropping (classifier-free guidance), both
through the shared loop ``methods.common.training.train`` (:mod:`methods.mld.training`).
``generate`` runs CFG DDIM in the latent space (:mod:`methods.mld.sampling`) and decodes with
the VAE; ``reconstruct`` decodes the posterior mean. This module holds construction,
conditions, normalisation, the entry points and checkpoints.

Config: see ``configs/method/mld.yaml`` (keys documented there). Sizes at ``scale=paper`` are
the official HumanML3D configuration (MLD-1: latent 1x256, 9+9 VAE layers, 9 denoiser layers,
4 heads, FF 1024). Faithfulness and deviations: ``methods/mld/README.md``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import methods.mld.bench as bench
import methods.mld.convert as convert
from evaluators.core.io import atomic_torch_save
from evaluators.core.seeding import rng_neutral
from evaluators.provenance import recipe_entry
from methods.base import Method
from methods.common.paper_needs import T2M_EVAL
from methods.common.text_encoders import resolve_text_encoder, text_encoder_entry
from methods.mld.data import infer_lengths
from methods.mld.denoiser import LatentDenoiser
from methods.mld.sampling import PRECISIONS, MLDSampling
from methods.mld.support import count_gmacs
from methods.mld.text_encoder import shared_frozen_text_encoder
from methods.mld.training import MLDTraining
from methods.mld.vae import MotionVAE
from methods.registry import register_method

__all__ = ["MLD", "PRECISIONS"]  # PRECISIONS: defined with the sampler (sampling.py)

_VAE_ARCH = ("latent_size", "latent_dim", "ff_size", "num_layers", "num_heads", "dropout", "activation",
             "normalize_before")
_DEN_ARCH = ("ff_size", "num_layers", "num_heads", "dropout", "activation", "normalize_before", "arch",
             "skip_connect")


@register_method("mld")
class MLD(MLDTraining, MLDSampling, Method):
    """Motion Latent Diffusion: ``MotionGenerator`` + ``Reconstructor`` (text or action conditions)."""

    task = "text2motion"
    main_stage = "denoiser"
    precision_key = ("diffusion", "precision")
    benchmark_steps = (1, 2, 5, 10, 25, 50, 100, 1000)
    speed_targets = (0.40, 0.70)  # ours: fraction of the fp32 matmul peak to reach (paper scale, CPU; batch 1, 32)
    paper_needs = """  Text encoder: $CLIP_VIT_L14_DIR = a local openai/clip-vit-large-patch14 folder (transformers
    save_pretrained: config.json, model weights, tokenizer files); else MiniLM + a warning.
  Authors' weights: checkpoint=PATH.ckpt (MLD release, e.g. 1222_mld_humanml3d_FID041.ckpt)
    + method_cfg.stats_dir=<HumanML3D folder with Mean.npy/Std.npy> (the .ckpt has no statistics).
  Data: dataset.root=<HumanML3D> or $HUMANML3D_ROOT (new_joint_vecs/, texts/, Mean.npy, Std.npy, test.txt).
""" + T2M_EVAL + """
  Example: CLIP_VIT_L14_DIR=... T2M_EVALUATOR_ROOT=... ./reproduce.sh mld humanml3d \\
             checkpoint=mld_humanml3d.ckpt method_cfg.stats_dir=/data/HumanML3D"""

    @property
    def default_steps(self) -> int:
        return int(self.diff_cfg["steps"])  # configs/method/mld.yaml diffusion.steps

    def __init__(self, cfg: dict | None = None, *, device="cpu", seed: int = 0, workdir=None) -> None:
        super().__init__(cfg, device=device, seed=seed, workdir=workdir)
        c = self.cfg
        self.condition = c["condition"]
        if self.condition not in ("text", "action"):
            raise ValueError(f"mld: condition must be 'text' or 'action', got {self.condition!r}")
        if self.condition == "action":
            self.task = "action2motion"
        self.diff_cfg = dict(c["diffusion"])
        if bool(self.diff_cfg["onednn_linear"]) and not bool(self.diff_cfg["fast_sampler"]):
            raise ValueError("mld: diffusion.onednn_linear runs the fast sampler's products on oneDNN; "
                             "it needs diffusion.fast_sampler: true")
        if self.condition == "text":  # kind: auto -> local CLIP ViT-L/14 from $CLIP_VIT_L14_DIR, else MiniLM (warned)
            self.cfg["text_encoder"] = resolve_text_encoder(c["text_encoder"], "clip-vit-l14", "mld")
        self.mean: torch.Tensor | None = None
        self.std: torch.Tensor | None = None
        self._text_encoder: nn.Module | None = None
        torch.manual_seed(seed)
        nclasses = int(c["nclasses"])
        if self.condition == "action" and nclasses <= 0:
            nclasses = 1  # placeholder until fit() reads the dataset's class count
        self._build(int(c["nfeats"]), nclasses)

    # -- construction ---------------------------------------------------------------------
    def _build(self, nfeats: int, nclasses: int) -> None:
        v, d = dict(self.cfg["vae"]), dict(self.cfg["denoiser"])
        self.nfeats, self.nclasses = nfeats, nclasses
        self._bf16_denoiser = None  # bf16 copy of the denoiser for precision=bf16 (built on first use)
        self.vae = MotionVAE(nfeats, **{k: v[k] for k in _VAE_ARCH if k in v}).to(self.device)
        text_dim = self._text_dim() if self.condition == "text" else 0
        self.denoiser = LatentDenoiser(
            latent_size=self.vae.latent_size, latent_dim=self.vae.latent_dim, condition=self.condition,
            text_encoded_dim=text_dim, nclasses=nclasses, **{k: d[k] for k in _DEN_ARCH if k in d},
        ).to(self.device)

    def _text_dim(self) -> int:
        te = dict(self.cfg["text_encoder"])
        if te.get("dim"):  # an explicit clip block without a folder resolves without a dim (text_encoders.py)
            return int(te["dim"])
        if te["kind"] != "clip":
            return 384  # all-MiniLM-L6-v2
        conf = Path(str(te["clip_path"] or "")) / "config.json"
        if conf.is_file():  # the local CLIP's projection width (768 for ViT-L/14)
            c = json.loads(conf.read_text())
            return int(c.get("projection_dim") or c.get("text_config", {}).get("projection_dim") or 768)
        return 768

    @property
    def text_encoder(self) -> nn.Module:
        if self._text_encoder is None:
            te = dict(self.cfg["text_encoder"])
            with rng_neutral():  # loaded lazily (maybe mid-training, after a resume): must not draw randomness
                self._text_encoder = shared_frozen_text_encoder(te["kind"], te["clip_path"], self.device)
            if self._text_encoder.dim != self.denoiser.text_encoded_dim:
                raise ValueError(f"text encoder gives {self._text_encoder.dim}-d embeddings, the denoiser expects "
                                 f"{self.denoiser.text_encoded_dim} (set text_encoder.dim)")
        return self._text_encoder

    def components(self) -> dict[str, nn.Module]:
        return {"vae": self.vae, "denoiser": self.denoiser}

    def frozen_components(self) -> dict[str, nn.Module]:
        return {"text_encoder": self.text_encoder.model} if self.condition == "text" else {}

    def sampler_settings(self) -> dict[str, Any]:
        """What a run record should say about sampling."""
        steps = int(self.diff_cfg["steps"])
        n_train = int(self.diff_cfg["num_train_timesteps"])
        return {"sampler": "ddim", "steps": steps, "guidance_scale": float(self.diff_cfg["guidance_scale"]),
                "eta": float(self.diff_cfg["eta"]), "timestep_spacing": "leading",
                "steps_offset": 1 if steps < n_train else 0, "beta_schedule": "scaled_linear 8.5e-4..0.012",
                "text_encoder": self.cfg["text_encoder"]["kind"] if self.condition == "text" else None,
                "latent_shape": [self.vae.latent_size, self.vae.latent_dim], "precision": self.precision(),
                "fused_ddim": True, "compile": bool(self.diff_cfg["compile"]),
                # only when on, so that records of the default (eager) sampler keep their exact content
                **({"fast_sampler": True} if self._fast_sampler_on() else {}),
                **({"onednn_linear": True} if self._onednn_on() else {})}

    # -- conditions -----------------------------------------------------------------------------
    def encode_conditions(self, conditions: Sequence[Any] | None, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """-> (cond, uncond) inputs of the denoiser for ``n`` samples; ``None`` entries are empty."""
        if conditions is not None and len(conditions) != n:
            raise ValueError(f"got {len(conditions)} conditions for {n} lengths")
        conds = list(conditions) if conditions is not None else [None] * n
        if self.condition == "text":
            texts = ["" if c is None else str(c) for c in conds]  # official: "" is the empty condition
            return self.text_encoder(texts), self.text_encoder([""] * n)
        ids = torch.tensor([-1 if c is None else int(c) for c in conds], device=self.device)
        return ids, torch.full_like(ids, -1)  # official EmbedAction: zero vector = no action

    # -- normalisation ----------------------------------------------------------------------------
    def set_normalization(self, mean, std) -> None:
        self.mean = torch.as_tensor(np.asarray(mean), dtype=torch.float32).reshape(-1).to(self.device)
        self.std = torch.as_tensor(np.asarray(std), dtype=torch.float32).reshape(-1).to(self.device)

    def _need_stats(self) -> None:
        if self.mean is None or self.std is None:
            raise RuntimeError("mld: no Mean/Std yet - call fit(dataset), or with the authors' checkpoint set "
                               "method_cfg.stats_dir=<folder with the dataset's Mean.npy/Std.npy> (or call "
                               "set_normalization(mean, std)) before generate/reconstruct")

    # -- model card -----------------------------------------------------------------------------------
    def provenance(self) -> dict[str, dict]:
        """Recipe switches that decide comparability (collected into the run record's provenance)."""
        base = getattr(super(), "provenance", None)
        out = dict(base()) if callable(base) else {}
        rec = self.cfg["vae"]["rec_loss"]
        labels = {"smooth_l1_joints": "SmoothL1 features + SmoothL1 joints + KL (authors' code)",
                  "mse": "MSE features + KL (paper text)", "smooth_l1": "SmoothL1 features + KL (no joint term)"}
        out["vae_loss"] = {"id": rec, "label": labels.get(rec, rec), "recipe": True}
        if self.condition == "action":  # README Deviations: joint positions, not ACTOR's SMPL rot6d VAE
            k, e = recipe_entry("action_representation", "joint-positions", paper=False, paper_value="SMPL rot6d",
                                label="action motions as joint positions (paper: ACTOR VAE on SMPL rot6d)")
            out[k] = e
        if self.condition == "text":
            out["text_encoder"] = text_encoder_entry(self.cfg["text_encoder"])
        return out

    # -- inference ----------------------------------------------------------------------------------
    def _denorm(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        mask = (torch.arange(x.shape[1], device=x.device)[None] < lengths[:, None])[..., None]
        return (x * self.std + self.mean) * mask

    def generate(self, conditions: Sequence[Any] | None, lengths: Sequence[int], steps: int | None = None,
                 z_T: torch.Tensor | None = None) -> torch.Tensor:
        """Captions / action ids / ``None`` + lengths -> RAW motions ``[B, max(lengths), D]`` (zero-padded).

        Action-conditioned models return ``[B, T, J, 3]`` (the action datasets' representation).
        ``z_T`` (optional, ``[B, n, d]``) fixes the initial noise; otherwise it is drawn from the
        global torch RNG ON THE METHOD'S DEVICE, as the official ``_diffusion_reverse`` does
        (``torch.randn(..., device=encoder_hidden_states.device)``, MLD
        ``mld/models/modeltype/mld.py:303-307``), so a seed gives the official noise stream on a GPU.
        """
        self._need_stats()
        lengths_t = torch.as_tensor(list(lengths), dtype=torch.long, device=self.device)
        if len(lengths_t) == 0:
            return torch.zeros(0, 0, self.nfeats)
        B, T = len(lengths_t), int(lengths_t.max())
        chunk = int(self.cfg["gen_batch_size"])
        if z_T is None:
            z_T = torch.randn(B, self.vae.latent_size, self.vae.latent_dim, device=self.device)
        outs = []
        self.vae.eval()
        with torch.inference_mode():
            for s in range(0, B, chunk):
                sl = slice(s, min(B, s + chunk))
                sub = None if conditions is None else list(conditions)[sl]
                cond, uncond = self.encode_conditions(sub, sl.stop - sl.start)
                z0 = self.sample_latents(cond, uncond, z_T[sl], steps)
                x = self._sampling_vae().decode(z0, lengths_t[sl], max_len=T)
                outs.append(self._denorm(x, lengths_t[sl]).cpu())
        out = torch.cat(outs)
        return out.reshape(B, T, -1, 3) if self.condition == "action" else out

    def reconstruct(self, x: torch.Tensor, lengths: Sequence[int] | None = None,
                    posterior: str = "mean") -> torch.Tensor:
        """RAW zero-padded motions ``[B, T, D]`` (or ``[B, T, J, 3]``) -> VAE reconstruction, same shape.

        ``posterior="mean"`` decodes μ (deterministic); ``"sample"`` decodes z = μ + σ ε (ε from the
        global torch RNG on the method's device), which is what the authors' VAE metrics decode
        (MLD ``mld/models/modeltype/mld.py:654`` + ``mld_vae.py:183``). The reconstruction protocol
        passes ``posterior`` (default ``sample``, ``configs/protocol/reconstruction.yaml``).
        """
        if posterior not in ("mean", "sample"):
            raise ValueError(f"mld.reconstruct: posterior must be 'mean' or 'sample', got {posterior!r}")
        self._need_stats()
        x = torch.as_tensor(x)
        shape = x.shape
        x = x.reshape(shape[0], shape[1], -1).float().to(self.device)
        lengths_t = (infer_lengths(x) if lengths is None else torch.as_tensor(list(lengths))).to(self.device)
        self.vae.eval()
        with torch.inference_mode():
            z, _, _ = self.vae.encode((x - self.mean) / self.std, lengths_t, sample=posterior == "sample")
            out = self._denorm(self.vae.decode(z, lengths_t, max_len=shape[1]), lengths_t)
        return out.reshape(shape).cpu()

    # -- checkpoints / model card -------------------------------------------------------------------
    def save_checkpoint(self, path: str | Path) -> None:
        extra = {"mean": None if self.mean is None else self.mean.cpu(),
                 "std": None if self.std is None else self.std.cpu(),
                 "nfeats": self.nfeats, "nclasses": self.nclasses, "condition": self.condition}
        atomic_torch_save({"components": self.state_dict(), "extra": extra}, path)

    def load_checkpoint(self, path: str | Path) -> dict[str, Any]:
        """Load our checkpoint or the authors' Lightning checkpoint (via ``convert.py``), strictly."""
        return convert.load_into(self, path)

    # -- benchmark hooks (methods/base.py; implemented in methods/mld/bench.py) -------------------------
    def denoiser_example(self, batch: int = 1) -> tuple[nn.Module, tuple]:
        return bench.denoiser_example(self, batch)

    def train_step_example(self, batch: int):
        return bench.train_step_example(self, batch)

    def gmacs(self) -> dict[str, float]:
        return count_gmacs(self)
