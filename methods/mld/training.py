"""MLD training: the VAE stage, then the latent-denoiser stage, each through the shared loop.

Mixed into :class:`methods.mld.method.MLD` (which owns the networks, the config and the
normalisation); kept apart so that the registered class reads as construction + inference
and the training recipe reads on one page. The VAE is trained on reconstruction (+ joints,
``vae.rec_loss``) + KL, then frozen; the denoiser is trained with epsilon-prediction on a
posterior SAMPLE of the frozen VAE with ``guidance_uncondp`` condition dropping (classifier-free
guidance), as the authors' ``mld/models/modeltype/mld.py`` does.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from evaluators.datasets.motion.humanml3d import recover_from_ric
from methods.common import onednn_linear
from methods.common.training import stage_steps, train
from methods.mld.data import NormalizedView, collate, feature_stats
from methods.mld.diffusion import diffusion_loss, make_train_scheduler
from methods.mld.fast_sampler import encoder_unsupported
from methods.mld.support import dataset_parts, render_demo
from methods.mld.vae import vae_loss

log = logging.getLogger(__name__)


class MLDTraining:
    """``fit`` and its stages; relies on MLD's ``cfg``, ``diff_cfg``, ``vae``, ``denoiser``, ``condition``."""

    def _train_cond(self, conds: list) -> torch.Tensor:
        p = float(self.diff_cfg["guidance_uncondp"])
        drop = (torch.rand(len(conds)) < p).tolist()  # global RNG: resumable through train()'s RNG state
        if self.condition == "text":
            return self.text_encoder(["" if dr else c for c, dr in zip(conds, drop)])
        return torch.tensor([-1 if dr else int(c) for c, dr in zip(conds, drop)], device=self.device)

    def fit(self, dataset) -> None:
        """Train the VAE, then the denoiser (or load ``cfg.checkpoint`` and take Mean/Std from ``dataset``)."""
        base, mean, std, nclasses = dataset_parts(dataset, self.condition)
        if mean is None:
            mean, std = feature_stats(base)
        if len(mean) != self.nfeats or (self.condition == "action" and nclasses != self.nclasses):
            log.info("mld: rebuilding for %d features / %d classes", len(mean), nclasses)
            self._build(len(mean), nclasses)
        self.set_normalization(mean, std)
        if self.cfg["checkpoint"]:
            self.load_checkpoint(self.cfg["checkpoint"])
            return
        view = NormalizedView(base, mean, std, self.condition, self.cfg["max_motion_len"])
        self._fit_vae(view)
        self._fit_denoiser(view)
        if self.workdir is not None:  # the runner saves the weights (save_checkpoint); we add the demo
            render_demo(self, self.workdir / "samples", base, kinematic_chain=getattr(dataset, "kinematic_chain", None),
                        class_names=getattr(dataset, "class_names", None))

    def _steps(self, stage: dict, n: int, name: str) -> int:
        return stage_steps(stage.get("steps"), lambda: int(stage["epochs"]) * max(1, n // int(stage["batch_size"])),
                           f"{name}.steps")

    def _train(self, module: nn.Module, stage: dict, view, step_fn, name: str) -> None:
        # fused_adamw (ours, default false): the single-kernel CPU/GPU AdamW; same update, different
        # rounding (~1e-7), so off by default to keep the default runs' numbers
        fused = {"fused": True} if bool(stage["fused_adamw"]) else {}
        opt = torch.optim.AdamW([p for p in module.parameters() if p.requires_grad], lr=float(stage["lr"]), **fused)
        ckpt = self.workdir / name if self.workdir is not None else None
        module.train()
        state = train(modules={name: module}, optimizer=opt, dataset=view, batch_size=int(stage["batch_size"]),
                      total_steps=self._steps(stage, len(view), name), step_fn=step_fn, ckpt_dir=ckpt, seed=self.seed,
                      desc=f"mld-{name}", collate_fn=collate, grad_clip=stage.get("grad_clip"),
                      ckpt_every=int(stage["ckpt_every"]))
        module.eval()
        log.info("mld-%s: %d steps, last logs %s", name, state.step, state.logs)

    def feats_to_joints(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised features ``[B, T, D]`` -> joint positions ``[B, T, J, 3]`` for the VAE joint loss.

        Text datasets: de-normalise and ``recover_from_ric`` (the authors' ``feats2joints``,
        ``mld/data/HumanML3D.py:41-45``), every frame including padding as they do; 263 -> 22 joints
        (HumanML3D), 251 -> 21 (KIT). Action datasets here store joint positions, so the joints are the
        de-normalised features reshaped (ours: the authors' action VAE goes through SMPL ``rot2xyz``),
        with padded frames zeroed as their ``feats2joints(feats, mask)``.
        """
        self._need_stats()
        raw = x * self.std + self.mean
        if self.condition == "text":
            joints_num = {263: 22, 251: 21}.get(x.shape[-1])
            if joints_num is None:
                raise ValueError(f"mld: vae.rec_loss=smooth_l1_joints needs HumanML3D (263) or KIT (251) features, "
                                 f"got width {x.shape[-1]}; set method_cfg.vae.rec_loss=mse or smooth_l1")
            return recover_from_ric(raw, joints_num)
        if x.shape[-1] % 3:
            raise ValueError(f"mld: action features of width {x.shape[-1]} are not joint positions [J*3]; "
                             "set method_cfg.vae.rec_loss=mse or smooth_l1")
        if lengths is not None:
            raw = raw * (torch.arange(x.shape[1], device=x.device)[None] < lengths[:, None])[..., None]
        return raw.reshape(*x.shape[:-1], -1, 3)

    def vae_step_loss(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """One VAE training loss on normalised, zero-padded features ``[B, T, D]`` (``vae.rec_loss``)."""
        v = dict(self.cfg["vae"])
        x_hat, mu, logvar = self.vae(x, lengths)
        return vae_loss(x_hat, x, lengths, mu, logvar, float(v["kl_weight"]),
                        v["rec_loss"], joints_fn=lambda f: self.feats_to_joints(f, lengths),
                        lambda_rec=float(v["lambda_rec"]), lambda_joint=float(v["lambda_joint"]))
    def _fit_vae(self, view) -> None:
        v = dict(self.cfg["vae"])

        def step_fn(batch, step):
            x, lengths = batch["motion"].to(self.device), batch["length"].to(self.device)
            return self.vae_step_loss(x, lengths)

        self._train(self.vae, v, view, step_fn, "vae")

    def frozen_encode_linear(self):
        """``denoiser.onednn_linear`` (ours, default false): the products of the frozen VAE's encode in
        each denoiser step on oneDNN's packed linear (:mod:`methods.common.onednn_linear`; most of an
        MLD step's time is this encode) -> a packed ``linear`` for :meth:`MotionVAE.encode`, or None
        for the eager modules (off, or not possible here: one warning)."""
        if not bool(self.cfg["denoiser"]["onednn_linear"]):
            return None
        why = onednn_linear.unavailable() or encoder_unsupported(self.vae.encoder, self.vae, "the VAE")
        if why is not None:
            log.warning("mld: denoiser.onednn_linear: %s; the frozen VAE encodes on its eager modules", why)
            return None
        return self.__dict__.setdefault("_vae_packs", onednn_linear.PackedWeights(rows=4096)).linear

    def _fit_denoiser(self, view) -> None:
        d = dict(self.cfg["denoiser"])
        sched = make_train_scheduler(self.diff_cfg)
        self.vae.eval().requires_grad_(False)
        lin = self.frozen_encode_linear()

        def step_fn(batch, step):
            x, lengths = batch["motion"].to(self.device), batch["length"].to(self.device)
            with torch.no_grad():  # official: diffusion on a posterior SAMPLE of the frozen VAE
                z0, _, _ = self.vae.encode(x, lengths, lin=lin)
            loss = diffusion_loss(self.denoiser, sched, z0, self._train_cond(batch["cond"]))
            return loss, {"eps_mse": float(loss.detach())}

        self._train(self.denoiser, d, view, step_fn, "denoiser")
        self._bf16_denoiser = None  # weights changed: the bf16 copy is stale
