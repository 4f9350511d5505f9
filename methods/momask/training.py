"""MoMask / HGM3 training stages: the shared loop per stage, the official learning-rate schedule,
the demo GIFs written after ``fit``, and :class:`MoMaskTraining`, the stages' losses and ``fit``.

``MoMaskTraining`` is mixed into :class:`methods.momask.method.MoMask` (which owns the networks,
the text encoder and the condition hooks HGM3 overrides); it lives here so that the registered
class reads as construction + decoding and the training recipe reads on one page.

Schedule: EricGuo5513/momask-codes ``train_vq.py`` / ``train_t2m_transformer.py`` (linear warm-up,
then a step decay at each milestone); optimiser AdamW with betas (0.9, 0.99) as there.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

import methods.momask.masking as M
from evaluators.core import distributed as D
from evaluators.datasets.motion.render import render_motion
from methods.common import onednn_linear
from methods.common.training import seed_everything, stage_steps, train
from methods.momask.convert import refuse_official_tokenizer_training
from methods.momask.data import MotionWindows, TextMotionCrops, collate_text_motion, text_motion_split
from methods.momask.tokenizer import tokenizer_losses

log = logging.getLogger(__name__)
_warned: set[str] = set()


def lr_lambda(warmup: int, milestones: Sequence[int], gamma: float):
    """Official schedule: linear warm-up ``(s+1)/(warmup+1)``, then x``gamma`` at each milestone."""
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return gamma ** sum(step >= m for m in milestones)
    return f


def joints_from_dim(d: int) -> int | None:
    """HumanML3D-style feature size ``12 J - 1`` -> ``J`` (263 -> 22, 251 -> 21); None otherwise."""
    return (d + 1) // 12 if (d + 1) % 12 == 0 else None


def train_stage(method, name: str, modules: dict[str, nn.Module], dataset, sc: dict, step_fn, collate=None):
    """One stage (tokenizer, masked or residual transformer) of ``method`` through the shared loop;
    ``sc`` is the stage's config block (lr, weight_decay, steps or epochs, batch_size, warmup, milestones, gamma)."""
    params = [p for mod in modules.values() for p in mod.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=sc["lr"], betas=(0.9, 0.99), weight_decay=sc["weight_decay"])
    steps = stage_steps(sc["steps"], lambda: max(1, int(sc["epochs"]) * max(1, len(dataset) // sc["batch_size"])),
                        f"{name}.steps")
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(sc["warmup"], sc["milestones"], sc["gamma"]))
    log.info("%s stage %s: %d steps, %d samples", method.registry_name, name, steps, len(dataset))
    ckpt_dir = None if method.workdir is None else method.workdir / name
    return train(modules=modules, optimizer=opt, dataset=dataset, batch_size=sc["batch_size"],
                 total_steps=int(steps), step_fn=step_fn, ckpt_dir=ckpt_dir, seed=method.seed,
                 desc=f"{method.registry_name}-{name}", lr_scheduler=sched, collate_fn=collate,
                 ckpt_every=int(method.c["ckpt_every"]))


def render_samples(method, dataset, data) -> list[Path]:
    """Stick-figure GIFs of ``render.n`` generated samples (training captions) under ``workdir/samples``."""
    n = int(method.c["render"]["n"])
    to_joints = getattr(dataset, "features_to_joints", None)
    if n <= 0 or method.workdir is None or to_joints is None:
        return []
    caps = [c[0] for c in data.captions[:n]]
    lens = [min(len(m), method.c["max_motion_length"]) // 4 * 4 for m in data.motions[:n]]
    out = method.generate(caps, lens).numpy()
    (method.workdir / "samples").mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (c, m, n_f) in enumerate(zip(caps, out, lens)):
        paths.append(render_motion(to_joints(m[:n_f]), method.workdir / "samples" / f"sample_{i:02d}.gif", title=c,
                                   kinematic_chain=getattr(dataset, "kinematic_chain", None),
                                   fps=float(method.c["render"]["fps"])))
    return paths


class MoMaskTraining:
    """``fit`` and its three stages; relies on MoMask's ``c``, ``vq``, ``mtrans``, ``rtrans``, ``text`` and its
    condition hooks (``prepare_text``, ``conditions``), which HGM3 overrides."""

    def _train_stage(self, name: str, modules: dict[str, nn.Module], dataset, sc: dict, step_fn, collate=None):
        return train_stage(self, name, modules, dataset, sc, step_fn, collate)

    def linear_mode(self, stage: str) -> contextlib.AbstractContextManager:
        """``<stage>.onednn_linear`` (ours, default false): the transformer's linear layers on oneDNN,
        forward and backward (:class:`methods.common.onednn_linear.LinearMode`; oneMKL runs its AVX2
        code on AMD CPUs). Other rounding (~1e-6), so off by default. Where this PyTorch has no oneDNN
        linear: one warning, and the usual products."""
        if not bool(self.c[stage]["onednn_linear"]):
            return contextlib.nullcontext()
        why = onednn_linear.unavailable()
        if why is not None:
            if why not in _warned:
                _warned.add(why)
                log.warning("%s.onednn_linear: %s; training on the usual products", stage, why)
            return contextlib.nullcontext()
        return onednn_linear.LinearMode()

    def fit(self, dataset) -> None:
        """Train tokenizer, then masked transformer, then residual transformer on ``dataset``'s train split."""
        refuse_official_tokenizer_training(self)
        seed_everything(self.seed)
        data = text_motion_split(dataset, "train")
        if data.dim != self.vq.d_in:
            self.c["d_in"] = data.dim
            self._build(data.dim)
        self.mean, self.std = torch.from_numpy(data.mean).float(), torch.from_numpy(data.std).float()
        self.fit_tokenizer(data)
        crops = TextMotionCrops(data, self.vq.unit_length, self.c["max_motion_length"])
        captions = sorted({c for caps in data.captions for c in caps})
        # graphs first: HGM3's prepare_text encodes each caption alone and leaves its sentence vector in
        # the encoder's cache (TextEncoder.caption_states), so encode() then runs no second forward
        self.prepare_text(captions)
        self.text.encode(captions)  # cache frozen embeddings
        self.fit_mask_transformer(crops)
        if self.rtrans is not None:
            self.fit_residual_transformer(crops)
        if D.is_main():  # one writer under torchrun
            self.save_checkpoint()
            try:  # GIFs are a convenience: never abort a run over them
                self.render_samples(dataset, data)
            except Exception as e:  # noqa: BLE001
                log.warning("%s: demo rendering skipped: %s", self.registry_name, e)
        D.barrier()

    def render_samples(self, dataset, data) -> list[Path]:
        """Stick-figure GIFs of ``render.n`` generated samples (training captions) under ``workdir/samples``."""
        return render_samples(self, dataset, data)

    def fit_tokenizer(self, data) -> None:
        t = self.c["tokenizer"]
        windows = MotionWindows(data, t["window"])
        joints = joints_from_dim(data.dim)
        w_exp = t["w_explicit"] if joints else 0.0

        def step_fn(batch, step):
            self.vq.train()
            loss, logs = tokenizer_losses(self.vq, batch.to(self.device), joints or 1, w_exp, t["w_commit"])
            return loss, logs

        self._train_stage("tokenizer", {"tokenizer": self.vq}, windows, t, step_fn)
        self.vq.eval()

    def _tokens(self, batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Tokenise a crop batch: ids ``[B, N, Q]`` (pad where beyond length), lengths ``[B]``, pad ``[B, N]``."""
        self.vq.eval()
        ids = self.vq.encode(batch["motion"].to(self.device))
        lens = batch["length"].to(self.device) // self.vq.unit_length
        pad = M.lengths_to_pad(lens, ids.shape[1])
        return ids, lens, pad

    def mask_loss(self, ids0: torch.Tensor, pad: torch.Tensor, captions: list[str], step: int):
        """MoMask training loss of the base layer: cosine-ratio random mask, BERT corruption, CE on masked.

        With several condition levels (HGM3) the levels run as one batched forward and the
        per-level losses are summed.
        """
        mt = self.mtrans
        ids0 = torch.where(pad, mt.pad_id, ids0)
        ratio = M.cosine_schedule(torch.rand(ids0.shape[0], device=ids0.device))
        mask = M.random_mask(pad, ratio)
        x = M.bert_corrupt(ids0, mask, mt.num_tokens, mt.mask_id)
        ces, _ = self.level_ce(x, ids0, pad, mask, self.conditions(captions))
        return sum(ces), {f"ce{lvl}": float(ce.detach()) for lvl, ce in enumerate(ces)}

    def level_ce(self, x, ids0, pad, mask, levels):
        """Student CE per level from one forward over ``L x B`` rows: (list of L losses, per-token ``[L, B, N]``)."""
        n_lv = len(levels)
        cond = torch.cat([c for c, _ in levels])
        cpad = None if levels[0][1] is None else torch.cat([p for _, p in levels])
        logits = self.mtrans(x.repeat(n_lv, 1), cond, pad.repeat(n_lv, 1), cpad)
        _, per = M.masked_token_ce(logits, ids0.repeat(n_lv, 1), mask.repeat(n_lv, 1))
        per = per.view(n_lv, *ids0.shape)
        denom = mask.sum().clamp(min=1)
        return [per[i].sum() / denom for i in range(n_lv)], per

    def _mask_modules(self) -> dict[str, nn.Module]:
        return {"mask_transformer": self.mtrans}

    def fit_mask_transformer(self, crops) -> None:
        def step_fn(batch, step):
            for mod in self._mask_modules().values():
                mod.train()
            ids, _, pad = self._tokens(batch)
            with self.linear_mode("mask_transformer"):
                return self.mask_loss(ids[..., 0], pad, batch["caption"], step)

        self._train_stage("mask_transformer", self._mask_modules(), crops, self.c["mask_transformer"], step_fn,
                          collate_text_motion)

    def fit_residual_transformer(self, crops) -> None:
        rt = self.rtrans

        def step_fn(batch, step):
            rt.train()
            ids, _, pad = self._tokens(batch)
            ids = torch.where(pad[..., None], rt.pad_id, ids)
            j = M.residual_schedule(ids.shape[0], rt.nq, ids.device)
            cond = self.text.encode(batch["caption"]).to(self.device)
            with self.linear_mode("residual_transformer"):
                logits = rt(rt.history(ids, j), j, cond, pad)
            target = ids[torch.arange(ids.shape[0], device=ids.device), :, j]
            loss = nn.functional.cross_entropy(logits.transpose(1, 2), target, ignore_index=rt.pad_id)
            return loss, {"ce": float(loss.detach())}

        self._train_stage("residual_transformer", {"residual_transformer": rt}, crops,
                          self.c["residual_transformer"], step_fn, collate_text_motion)
