"""MoMask / HGM3 training stages: the shared loop per stage, the official learning-rate schedule,
and the demo GIFs written after ``fit``.

Schedule: EricGuo5513/momask-codes ``train_vq.py`` / ``train_t2m_transformer.py`` (linear warm-up,
then a step decay at each milestone); optimiser AdamW with betas (0.9, 0.99) as there.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from evaluators.datasets.motion.render import render_motion
from methods.common.training import train

log = logging.getLogger(__name__)


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
    steps = sc["steps"] or max(1, int(sc["epochs"]) * max(1, len(dataset) // sc["batch_size"]))
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
