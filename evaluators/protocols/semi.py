"""Semi-supervised fine-tuning with 1% / 10% of the training labels (MAMP / MacDiff protocol).

Labelled subsets, two rules (``cfg["subset_rule"]``: one name or a list; each rule is its own
result, named in the record's ``variant`` as ``subset=<rule>``):

- ``per_rank_official`` (the authors'): MAMP / MacDiff ``main_finetune.py`` lines 168-171 seed
  numpy with ``seed + rank`` BEFORE the feeder is built, and ``feeder_ntu_semi.py``
  ``random_select_data`` (lines 77-93) then shuffles ``arange(N)`` with numpy's global state
  and keeps the first ``int(N * ratio)``. So each of the ``official_world_size`` ranks (4 for
  MacDiff's scripts; MAMP's ``script_semi.sh`` runs 2) trains on ITS OWN draw, and every
  rank's ``DistributedSampler`` (seed 0, ``set_epoch``) hands it ``1 / world`` of that draw per
  epoch. This is emulated on any number of processes: the W subsets are stacked, and each
  global batch of ``batch_size`` holds ``batch_size / W`` samples of every emulated rank,
  taken in the order torch's ``DistributedSampler(num_replicas=W, rank=r)`` gives rank ``r``
  (``drop_last`` as the official loader). ``script_semi.sh`` runs its 5 repeats with the same
  ``--seed``; ``official_repeat_seed_step`` (0 = that) adds ``step * repeat`` to the seed.
- ``shared`` (ours, cleaner): ONE draw per repeat, ``RandomState(subset_seed + r)``, used by
  every rank.

Per repeat the model is fine-tuned with the fine-tune recipe (:mod:`evaluators.protocols.finetune`)
and evaluated on the full test split; the result is the mean over repeats with a 95% interval
(``evaluators.metrics.generation.confidence_interval``: 1.96 * population std / sqrt(R)).

Diffusion data augmentation (MacDiff ``feeder_ntu_semi.expand_dataset``): when
``cfg["augment"]`` is true and the method has ``augment(x, y, ratio)``, every labelled sample's
training window (random crop p in [0.5, 1]) is given to the method, which returns
``round(ratio * n)`` label-preserving generated windows; these are zero-padded to the split's
length and appended to the labelled set (each emulated rank's own set under
``per_rank_official``), then fed through the same feeder. The ratio follows the paper: 2.0 /
0.5 / 0.25 generated per real sample for 1% / 2% / 10% labels (``cfg["aug_ratio"]`` overrides).
Variants: ``labels=1%,aug=off,subset=per_rank_official`` etc. ``cfg["augment_grid"]``
(``{key: [values]}``, e.g. ``t_start`` x ``guidance``) runs aug=on once per combination, laid
over the method's ``augment`` settings and named in the variant
(``configs/ablation/macdiff_augment_grid.yaml``).
"""

from __future__ import annotations

import itertools
import time

import numpy as np
import torch
from torch.utils.data import DistributedSampler

from evaluators.datasets.skeleton.dataset import SkeletonSplit
from evaluators.metrics.generation import confidence_interval
from evaluators.protocols._skeleton_common import device_of, draw_subset, window_of
from evaluators.protocols.finetune import finetune_once
from evaluators.protocols.registry import ProtocolResult, RunContext, complete_config, register_protocol
from evaluators.provenance import ours_entry, recipe_entry

PAPER_AUG_RATIO = {0.01: 2.0, 0.02: 0.5, 0.1: 0.25}
SUBSET_RULES = ("per_rank_official", "shared")


def per_rank_subsets(n: int, ratio: float, seed: int, world_size: int, min_count: int = 0) -> list[np.ndarray]:
    """The labelled subset of each of ``world_size`` official ranks: rank ``r`` seeds numpy with
    ``seed + r`` and shuffles ``arange(n)`` (``main_finetune.py`` + ``random_select_data``),
    keeping the first ``int(n * ratio)`` in the shuffled order. ``min_count`` as in
    :func:`draw_subset` (0 = the official count)."""
    k = min(n, max(int(n * ratio), int(min_count)))
    if k <= 0:
        raise ValueError(f"ratio {ratio} of {n} training samples selects no sample")
    out = []
    for rank in range(int(world_size)):
        idx = np.arange(n)
        np.random.RandomState(seed + rank).shuffle(idx)  # same stream as np.random.seed(s); np.random.shuffle
        out.append(idx[:k].copy())
    return out


class PerRankBatchSampler:
    """Global batches of the official ``world_size``-rank run on stacked per-rank sets.

    ``sizes[r]`` = length of rank ``r``'s set (stacked rank-major). Each epoch, rank ``r`` walks
    ``torch.utils.data.DistributedSampler(range(sizes[r]), num_replicas=W, rank=r, seed=seed)``
    at ``set_epoch(epoch)`` in per-rank batches of ``batch_size // W`` (``drop_last``, as the
    official ``DataLoader``); global batch ``s`` is the concatenation of every rank's batch ``s``.
    """

    def __init__(self, sizes: list[int], batch_size: int, seed: int = 0) -> None:
        self.sizes, self.world = [int(v) for v in sizes], len(sizes)
        self.per_rank = max(int(batch_size) // self.world, 1)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(int)
        self.seed, self.epoch = int(seed), 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _rank_indices(self) -> list[list[int]]:
        out = []
        for r, size in enumerate(self.sizes):
            ds = DistributedSampler(list(range(size)), num_replicas=self.world, rank=r, shuffle=True, seed=self.seed)
            ds.set_epoch(self.epoch)
            out.append([int(self.offsets[r]) + int(i) for i in ds])
        return out

    def __len__(self) -> int:
        per = min(-(-s // self.world) for s in self.sizes)  # DistributedSampler length: ceil(size / W)
        return max(per // self.per_rank, 1)

    def __iter__(self):
        ranks = self._rank_indices()
        b = self.per_rank
        for s in range(len(self)):
            yield [i for idx in ranks for i in idx[s * b:(s + 1) * b]]


def _ci(values: list[float]) -> tuple[float, float]:
    return confidence_interval(values)


def augmented_split(method, data, sub, ratio: float, window: int, seed: int):
    """``sub`` (a SkeletonSplit) plus ``round(ratio * len(sub))`` generated samples (see module doc)."""
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
    return semi(method, data, complete_config("semi1", cfg), ctx)


@register_protocol("semi10", needs="RepresentationLearner", tasks="skeleton_ssl")
def semi10(method, data, cfg: dict, ctx: RunContext) -> list[ProtocolResult]:
    """Semi-supervised fine-tuning with 10% labels (5 repeats, mean +- 95% CI, augmentation on/off)."""
    return semi(method, data, complete_config("semi10", cfg), ctx)


def semi(method, data, cfg: dict, ctx: RunContext) -> list[ProtocolResult]:
    """Fine-tune on a ``cfg["label_ratio"]`` labelled subset, ``repeats`` times; with/without
    augmentation; under each subset rule of ``cfg["subset_rule"]``."""
    ratio = float(cfg["label_ratio"])
    repeats = int(cfg["repeats"])
    device = device_of(method, ctx)
    window = window_of(method, cfg)
    train = data.split("train")
    rules = cfg["subset_rule"]
    rules = [rules] if isinstance(rules, str) else list(rules)
    bad = [r for r in rules if r not in SUBSET_RULES]
    if bad:
        raise ValueError(f"protocol config subset_rule: unknown rule(s) {bad} (allowed: {list(SUBSET_RULES)})")
    world = int(cfg["official_world_size"])
    aug_modes: list = [False]
    if cfg["augment"] and hasattr(method, "augment"):
        aug_modes += augment_settings(cfg)
    aug_ratio = float(cfg.get("aug_ratio") or PAPER_AUG_RATIO.get(round(ratio, 4), 0.0))
    results = []
    label = f"{ratio * 100:g}%"
    for rule in rules:
        for aug in aug_modes:
            t0 = time.perf_counter()
            restore = _apply_augment_setting(method, aug)
            tops, lasts, sizes, distinct = [], [], [], []
            for r in range(repeats):
                if rule == "shared":
                    idx = draw_subset(len(train), ratio, int(cfg["subset_seed"]) + r, int(cfg["min_labelled"]))
                    subs, sampler = [train.subset(idx)], None
                    distinct.append(len(idx))
                else:
                    base = int(cfg["subset_seed"]) + int(cfg["official_repeat_seed_step"]) * r
                    parts = per_rank_subsets(len(train), ratio, base, world, int(cfg["min_labelled"]))
                    subs = [train.subset(np.asarray(p)) for p in parts]
                    distinct.append(int(len(np.unique(np.concatenate(parts)))))
                if aug is not False and aug_ratio > 0:
                    subs = [augmented_split(method, data, sub, aug_ratio, window, ctx.seed + r + 1000 * k)
                            for k, sub in enumerate(subs)]
                if rule == "shared":
                    sub = subs[0]
                else:
                    sub = _stack(subs)
                    sampler = PerRankBatchSampler([len(x) for x in subs], int(cfg["batch_size"]),
                                                  seed=int(cfg["sampler_seed"]))
                out = finetune_once(method, data, sub, cfg, ctx.seed + r, device, desc=f"semi{label}-{rule}-r{r}",
                                    batch_sampler=sampler)
                tops.append(out["top1_best"])
                lasts.append(out["top1_last"])
                sizes.append(len(sub))
            restore()
            m, ci = _ci(tops)
            ml, cil = _ci(lasts)
            rule_text = ("first int(N*ratio) of RandomState(subset_seed + repeat).permutation(N), one draw shared by "
                         "all ranks (ours)") if rule == "shared" else (
                f"official: {world} emulated ranks, rank k draws with numpy seeded subset_seed + k "
                f"(+ {int(cfg['official_repeat_seed_step'])} x repeat); DistributedSampler batches per rank")
            key, rule_prov = recipe_entry("semi_subset_rule", rule, paper=rule == "per_rank_official",
                                          paper_value="per_rank_official")
            prov = {key: rule_prov}
            for k, v in (aug.items() if isinstance(aug, dict) else []):  # grid point: ours, laid over the config's
                ok, oe = ours_entry(f"augment.{k}", v, "augmentation sampler ablation grid (no official value)")
                prov[ok] = oe
            results.append(ProtocolResult(
                provenance=prov,
                metrics={"top1": {"value": m, "ci95": ci}, "top1_last": {"value": ml, "ci95": cil}}, split="test",
                n_samples={"expected": len(data.split("test")), "evaluated": out["n_test"]},
                variant=f"labels={label},aug={'on' if aug is not False else 'off'}{_setting_tag(aug)},subset={rule}",
                extra={"repeats": tops, "repeats_last": lasts, "label_ratio": ratio,
                       "labelled_plus_generated": sizes, "distinct_labelled": distinct,
                       "aug_ratio": aug_ratio if aug is not False else 0.0, "subset_rule": rule, "subset_rule_text": rule_text,
                       "official_world_size": world if rule != "shared" else None,
                       "augment_setting": aug if isinstance(aug, dict) else None,
                       "wall_s": time.perf_counter() - t0}))
    return results


def augment_settings(cfg: dict) -> list:
    """The aug=on runs: ``[True]`` (the method's own ``augment`` settings) or, with
    ``cfg["augment_grid"] = {key: [values], ...}``, one dict per combination (an ablation of the
    sampler settings the official code never fixes, e.g. ``t_start`` x ``guidance``)."""
    grid = cfg.get("augment_grid")
    if not grid:
        return [True]

    keys = list(grid)
    return [dict(zip(keys, vals)) for vals in itertools.product(*(list(grid[k]) for k in keys))]


def _apply_augment_setting(method, aug):
    """Lay a grid point over ``method.cfg["augment"]``; returns the function that undoes it."""
    if not isinstance(aug, dict) or not hasattr(method, "cfg"):
        return lambda: None
    saved = dict(method.cfg.get("augment") or {})
    method.cfg["augment"] = {**saved, **aug}

    def restore() -> None:
        method.cfg["augment"] = saved

    return restore


def _setting_tag(aug) -> str:
    return "".join(f",{k}={v}" for k, v in aug.items()) if isinstance(aug, dict) else ""


def _stack(splits):
    return SkeletonSplit(np.concatenate([s.data for s in splits]), np.concatenate([s.labels for s in splits]),
                         [n for s in splits for n in s.names], np.concatenate([s.valid_frames for s in splits]))
