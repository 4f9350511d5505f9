"""Semi-supervised fine-tuning with 1% / 10% of the training labels (MAMP / MacDiff protocol).

Per repeat ``r`` (5 repeats): the labelled subset is the first ``int(N * ratio)`` samples of a
permutation drawn with ``RandomState(seed + r)`` -- ONE draw shared by all ranks. (The
official MAMP feeder seeds numpy with ``seed + rank`` before drawing, so each GPU trained on a
different subset; this protocol fixes that and the record says so.) The model is then
fine-tuned with the fine-tune recipe (:mod:`evaluators.protocols.finetune`) and evaluated on
the full test split; the result is the mean over repeats with a 95% interval
(``evaluators.metrics.generation.confidence_interval``: 1.96 * population std / sqrt(R)).

Diffusion data augmentation (MacDiff ``feeder_ntu_semi.expand_dataset``): when
``cfg["augment"]`` is true and the method has ``augment(x, y, ratio)``, every labelled sample's
training window (random crop p in [0.5, 1]) is given to the method, which returns
``round(ratio * n)`` label-preserving generated windows; these are zero-padded to the split's
length and appended to the labelled set, then fed through the same feeder. The ratio follows
the paper: 2.0 / 0.5 / 0.25 generated per real sample for 1% / 2% / 10% labels
(``cfg["aug_ratio"]`` overrides). Variants: ``labels=1%,aug=off`` / ``labels=1%,aug=on``.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from evaluators.protocols._skeleton_common import device_of, draw_subset, window_of
from evaluators.protocols.finetune import finetune_once
from evaluators.protocols.registry import ProtocolResult, RunContext, register_protocol

PAPER_AUG_RATIO = {0.01: 2.0, 0.02: 0.5, 0.1: 0.25}


def _ci(values: list[float]) -> tuple[float, float]:
    try:
        from evaluators.metrics.generation import confidence_interval
    except ImportError:  # fallback with the same definition
        v = np.asarray(values, dtype=np.float64)
        return float(v.mean()), float(1.96 * v.std() / np.sqrt(len(v)))
    return confidence_interval(values)


def augmented_split(method, data, sub, ratio: float, window: int, seed: int):
    """``sub`` (a SkeletonSplit) plus ``round(ratio * len(sub))`` generated samples (see module doc)."""
    from evaluators.datasets.skeleton_base import SkeletonSplit

    torch.manual_seed(seed)
    feeder = data.feeder(sub, train=True, window=window)
    x = torch.stack([feeder[i][0] for i in range(len(sub))])
    xg, yg = method.augment(x, torch.as_tensor(sub.labels), ratio, seed=seed)
    xg = xg.numpy().astype(np.float32)
    pad = np.zeros((len(xg), 3, sub.data.shape[2], *xg.shape[3:]), dtype=np.float32)
    pad[:, :, :window] = xg[:, :, : sub.data.shape[2]]
    gen = SkeletonSplit.from_arrays(pad, yg.numpy(), [f"generated_{i}" for i in range(len(xg))])
    keep = gen.valid_frames > 0
    gen = gen.subset(np.flatnonzero(keep))
    return SkeletonSplit(np.concatenate([sub.data, gen.data]), np.concatenate([sub.labels, gen.labels]),
                         list(sub.names) + list(gen.names), np.concatenate([sub.valid_frames, gen.valid_frames]))


@register_protocol("semi1", needs="RepresentationLearner", tasks="skeleton_ssl")
def semi1(method, data, cfg: dict, ctx: RunContext) -> list[ProtocolResult]:
    """Semi-supervised fine-tuning with 1% labels (5 repeats, mean +- 95% CI, augmentation on/off)."""
    return semi(method, data, {"label_ratio": 0.01, **cfg}, ctx)


@register_protocol("semi10", needs="RepresentationLearner", tasks="skeleton_ssl")
def semi10(method, data, cfg: dict, ctx: RunContext) -> list[ProtocolResult]:
    """Semi-supervised fine-tuning with 10% labels (5 repeats, mean +- 95% CI, augmentation on/off)."""
    return semi(method, data, {"label_ratio": 0.1, **cfg}, ctx)


def semi(method, data, cfg: dict, ctx: RunContext) -> list[ProtocolResult]:
    """Fine-tune on a ``cfg["label_ratio"]`` labelled subset, ``repeats`` times; with/without augmentation."""
    ratio = float(cfg["label_ratio"])
    repeats = int(cfg.get("repeats", 5))
    device = device_of(method, ctx)
    window = window_of(method, cfg)
    train = data.split("train")
    aug_modes = [False]
    if cfg.get("augment", False):
        if hasattr(method, "augment"):
            aug_modes.append(True)
        else:
            aug_modes = [False]
    aug_ratio = float(cfg.get("aug_ratio") or PAPER_AUG_RATIO.get(round(ratio, 4), 0.0))
    results = []
    label = f"{ratio * 100:g}%"
    for aug in aug_modes:
        t0 = time.perf_counter()
        tops, lasts, sizes = [], [], []
        for r in range(repeats):
            idx = draw_subset(len(train), ratio, int(cfg.get("subset_seed", ctx.seed)) + r,
                              int(cfg.get("min_labelled", 0)))
            sub = train.subset(idx)
            if aug and aug_ratio > 0:
                sub = augmented_split(method, data, sub, aug_ratio, window, ctx.seed + r)
            out = finetune_once(method, data, sub, cfg, ctx.seed + r, device, desc=f"semi{label}-r{r}")
            tops.append(out["top1_best"])
            lasts.append(out["top1_last"])
            sizes.append(len(sub))
        m, ci = _ci(tops)
        ml, cil = _ci(lasts)
        results.append(ProtocolResult(
            metrics={"top1": {"value": m, "ci95": ci}, "top1_last": {"value": ml, "ci95": cil}}, split="test",
            n_samples={"expected": len(data.split("test")), "evaluated": out["n_test"]},
            variant=f"labels={label},aug={'on' if aug else 'off'}",
            extra={"repeats": tops, "repeats_last": lasts, "label_ratio": ratio, "labelled_plus_generated": sizes,
                   "aug_ratio": aug_ratio if aug else 0.0,
                   "subset_rule": "first int(N*ratio) of RandomState(subset_seed + repeat).permutation(N), one draw "
                                  "shared by all ranks (fixes the official per-rank seed+rank draw)",
                   "wall_s": time.perf_counter() - t0}))
    return results
