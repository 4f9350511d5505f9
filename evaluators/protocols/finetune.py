"""End-to-end fine-tuning of a pretrained skeleton encoder (MAMP / MacDiff recipe).

Recipe (MacDiff ``finetune_madiff.yaml`` + ``script_finetune_madiff.sh``, MAMP
``finetune_t120_layer8_decay.yaml``; the script values override the yaml): 100 epochs, 5
warmup epochs, AdamW (weight decay 0.05, none on 1-D parameters), lr 3e-4 -> min_lr 1e-5
(per-step half cosine), layer-wise lr decay 0.8, drop-path 0.3, head dropout 0.3, label
smoothing 0.1, batch 64 (16/GPU x 4), lr held at min_lr for the last 10 epochs
(``min_lr_epochs``, ``main_finetune.py`` default). Train windows: random crop p in [0.5, 1] +
random rotation; test crop ``test_p_interval`` as each official ``finetune_madiff.yaml``
``val_feeder_args.p_interval``: [0.95] (centre crop) except NTU-60 xsub, [0.9, 0.95] (a random
crop, so its test accuracy varies between runs), set per dataset by the experiments.

The method must be :class:`~evaluators.protocols._skeleton_common.Finetunable`
(``method.finetune_model(num_classes, drop_path, head_dropout)``).
"""

from __future__ import annotations

import inspect
import logging
import time

from evaluators.protocols._skeleton_common import Finetunable, device_of, train_classifier, window_of
from evaluators.protocols.registry import ProtocolResult, RunContext, complete_config, register_protocol

log = logging.getLogger(__name__)


def finetune_once(method, data, train_split, cfg: dict, seed: int, device, desc: str = "finetune",
                  batch_sampler=None, method_finetune: dict | None = None):
    """Fine-tune a fresh copy of ``method``'s encoder on ``train_split`` (a name or SkeletonSplit).

    ``method_finetune`` (optional) is handed to ``finetune_model(..., finetune=...)`` in place of
    the method's own ``finetune`` config block (the transfer target's normalisation); the method
    itself is never changed.
    """
    if not isinstance(method, Finetunable):
        raise TypeError(f"{type(method).__name__} has no finetune_model(num_classes, ...) hook")
    window = window_of(method, cfg)
    kwargs = {}
    if method_finetune is not None:
        if "finetune" in inspect.signature(method.finetune_model).parameters:
            kwargs["finetune"] = dict(method_finetune)
        else:  # a method without a fine-tune config block has nothing to replace
            log.warning("%s.finetune_model takes no finetune= block; method_finetune ignored", type(method).__name__)
    model = method.finetune_model(data.num_classes, drop_path=float(cfg["drop_path"]),
                                  head_dropout=float(cfg["head_dropout"]), **kwargs)
    train_ds = data.feeder(train_split, train=True, window=window, random_rot=bool(cfg["random_rot"]))
    test_ds = data.feeder("test", train=False, window=window, p_interval=tuple(cfg["test_p_interval"]))
    return train_classifier(model, train_ds, test_ds, cfg, device, seed, desc=desc, batch_sampler=batch_sampler)


@register_protocol("finetune", needs="RepresentationLearner", tasks="skeleton_ssl")
def finetune(method, data, cfg: dict, ctx: RunContext) -> ProtocolResult:
    """Full fine-tuning (layer decay 0.8, drop-path 0.3, label smoothing 0.1), official test crop."""
    t0 = time.perf_counter()
    cfg = complete_config("finetune", cfg)
    out = finetune_once(method, data, "train", cfg, ctx.seed, device_of(method, ctx))
    return ProtocolResult(
        metrics={"top1": out["top1_best"], "top1_last": out["top1_last"]}, split="test",
        n_samples={"expected": len(data.split("test")), "evaluated": out["n_test"]},
        extra={"curve": out["curve"], "window": window_of(method, cfg),
               "test_crop": f"p_interval {list(cfg['test_p_interval'])}",
               "top1_is": "best epoch (as the official engine reports); top1_last = last epoch",
               "wall_s": time.perf_counter() - t0})
