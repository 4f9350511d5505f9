"""Shared pieces of the skeleton protocols (linear / semi / finetune): features, classifier
training with the MAMP/MacDiff fine-tune recipe, and the hook a method provides for fine-tuning.

Protocols receive a :class:`~evaluators.datasets.skeleton.dataset.SkeletonDataset` (``data``) and a
method; they never import a concrete method. Windows come from ``data.feeder(split, train,
window)`` with ``window = cfg["window"]`` or the method's ``window`` attribute (120 by default).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

log = logging.getLogger(__name__)


@runtime_checkable
class Finetunable(Protocol):
    """A method whose encoder can be fully fine-tuned (MacDiff, any MAMP-style encoder).

    ``finetune_model(num_classes, drop_path, head_dropout)`` returns a NEW ``nn.Module`` mapping
    raw skeleton windows ``[B, 3, T, 25, M]`` to logits ``[B, num_classes]``, initialised from
    the method's pretrained encoder (the method's own weights are untouched). For layer-wise lr
    decay the module may define ``num_layers: int`` and ``layer_id(param_name) -> int`` in
    ``0..num_layers`` (BEiT/MAE convention: 0 = embeddings, ``num_layers`` = head); without them
    every parameter gets the base lr. A method with a ``finetune`` config block (MacDiff: the
    fine-tune model's normalisation) may also take ``finetune: dict | None`` to use in its place
    (the transfer protocol's ``method_finetune``).
    """

    def finetune_model(self, num_classes: int, drop_path: float = 0.3, head_dropout: float = 0.3) -> nn.Module: ...


def window_of(method: Any, cfg: dict) -> int:
    return int(cfg.get("window") or getattr(method, "window", 120))


def device_of(method: Any, ctx: Any) -> torch.device:
    return torch.device(getattr(method, "device", None) or getattr(ctx, "device", "cpu"))


def loader(ds, batch_size: int, shuffle: bool = False, seed: int = 0, drop_last: bool = False) -> DataLoader:
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, generator=gen, drop_last=drop_last, num_workers=0)


def extract_features(method: Any, feeder, pooling: str, batch_size: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen features of every sample of ``feeder`` -> ``(feats [N, D], labels [N])``."""
    feats, labels = [], []
    for batch in loader(feeder, batch_size):
        feats.append(method.encode(batch[0], pooling=pooling).float().cpu())
        labels.append(torch.as_tensor(batch[-2]).long())
    return torch.cat(feats), torch.cat(labels)


def cosine_lr(step: int, total: int, warmup: int, lr: float, min_lr: float, hold: int = 0) -> float:
    """Linear warmup, half-cosine from ``lr`` to ``min_lr``, then ``min_lr`` for the last ``hold``
    steps (MacDiff ``util/lr_sched.py::adjust_learning_rate`` with ``min_lr_epochs``, per step:
    ``epoch > epochs - min_lr_epochs`` -> ``min_lr``; the cosine spans ``epochs - min_lr_epochs - warmup``)."""
    if hold and step > total - hold:
        return min_lr
    if step < warmup:
        return lr * step / max(warmup, 1)
    return min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(total - hold - warmup, 1)))


def layer_decay_groups(model: nn.Module, weight_decay: float, layer_decay: float) -> list[dict]:
    """AdamW parameter groups with ``lr_scale = decay ** (num_layers - layer_id)`` and no weight
    decay on 1-D parameters (MAMP ``util/lr_decay.py::param_groups_lrd``)."""
    num_layers = getattr(model, "num_layers", None)
    groups: dict[tuple[int, bool], dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        lid = model.layer_id(name) if num_layers is not None else 0
        scale = layer_decay ** (num_layers - lid) if num_layers is not None else 1.0
        no_wd = p.ndim == 1
        g = groups.setdefault((lid, no_wd), {"params": [], "lr_scale": scale,
                                             "weight_decay": 0.0 if no_wd else weight_decay})
        g["params"].append(p)
    return list(groups.values())


@torch.inference_mode()
def evaluate(model: nn.Module, test_loader: DataLoader, device: torch.device) -> tuple[float, int]:
    """Top-1 accuracy (%) of ``model`` over a loader of ``(x, label, ...)`` and the sample count."""
    model.eval()
    correct, total = 0, 0
    for batch in test_loader:
        logits = model(batch[0].to(device).float())
        y = torch.as_tensor(batch[1]).to(device)
        correct += int((logits.argmax(-1) == y).sum())
        total += len(y)
    return 100.0 * correct / max(total, 1), total


# ours: the test pass's batch size (eval mode, so it bounds memory only and changes no number)
EVAL_BATCH_SIZE = 128


def train_classifier(model: nn.Module, train_ds, test_ds, cfg: dict, device: torch.device, seed: int,
                     desc: str = "finetune", batch_sampler=None) -> dict[str, Any]:
    """Fine-tune ``model`` with the MAMP/MacDiff recipe and evaluate after every epoch.

    ``cfg`` keys: ``epochs`` (100), ``warmup_epochs`` (5), ``batch_size`` (64), ``lr`` (3e-4),
    ``min_lr`` (1e-5), ``weight_decay`` (0.05), ``layer_decay`` (0.8), ``label_smoothing`` (0.1),
    ``min_lr_epochs`` (10: lr held at ``min_lr`` for the last 10 epochs, MacDiff ``main_finetune.py``
    default); values in brackets are the paper settings of ``configs/protocol/finetune.yaml``. AdamW with per-step warmup + half-cosine lr,
    scaled per layer. ``batch_sampler`` (optional, with ``set_epoch(epoch)``) replaces the
    shuffled batches (the semi protocol's per-rank emulation).
    Returns ``{"top1_best", "top1_last", "curve", "n_test", "wall_s"}``.
    """
    torch.manual_seed(seed)
    epochs, bs = int(cfg["epochs"]), int(cfg["batch_size"])
    lr, min_lr = float(cfg["lr"]), float(cfg["min_lr"])
    groups = layer_decay_groups(model, float(cfg["weight_decay"]), float(cfg["layer_decay"]))
    opt = torch.optim.AdamW(groups, lr=lr)
    if batch_sampler is not None:
        tl = DataLoader(train_ds, batch_sampler=batch_sampler, num_workers=0)
    else:
        tl = loader(train_ds, bs, shuffle=True, seed=seed, drop_last=len(train_ds) > bs)
    te = loader(test_ds, EVAL_BATCH_SIZE)
    total = epochs * len(tl)
    warmup = int(float(cfg["warmup_epochs"]) * len(tl))
    hold = int(float(cfg["min_lr_epochs"]) * len(tl))
    smoothing = float(cfg["label_smoothing"])
    curve, step, t0 = [], 0, time.perf_counter()
    for epoch in range(epochs):
        model.train()
        if batch_sampler is not None and hasattr(batch_sampler, "set_epoch"):
            batch_sampler.set_epoch(epoch)
        for batch in tl:
            cur = cosine_lr(step, total, warmup, lr, min_lr, hold)
            for g in opt.param_groups:
                g["lr"] = cur * g.get("lr_scale", 1.0)
            x, y = batch[0].to(device).float(), torch.as_tensor(batch[1]).to(device)
            if len(y) < 2 and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
                continue  # BatchNorm cannot train on a single sample
            loss = F.cross_entropy(model(x), y, label_smoothing=smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        top1, n_test = evaluate(model, te, device)
        curve.append(top1)
        log.info("%s epoch %d/%d: top1 %.2f", desc, epoch + 1, epochs, top1)
    return {"top1_best": max(curve), "top1_last": curve[-1], "curve": curve, "n_test": n_test,
            "wall_s": time.perf_counter() - t0}


def draw_subset(n: int, ratio: float, seed: int, min_count: int = 0) -> np.ndarray:
    """The labelled subset of the semi-supervised protocol: first ``int(n * ratio)`` indices of a
    permutation drawn with ``np.random.RandomState(seed)`` (MAMP ``random_select_data`` rule, but
    with an explicit seed shared by all ranks instead of numpy's global ``seed + rank`` state).
    ``min_count`` (0 = off, the official rule) raises the count for tiny smoke-scale sets."""
    k = min(n, max(int(n * ratio), int(min_count)))
    if k <= 0:
        raise ValueError(f"ratio {ratio} of {n} training samples selects no sample")
    return np.sort(np.random.RandomState(seed).permutation(n)[:k])
