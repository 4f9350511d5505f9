"""Transfer learning: fine-tune the encoder pretrained on the run's dataset on ANOTHER dataset.

The MAMP / MacDiff transfer table pretrains on NTU-120 and fine-tunes and evaluates on PKU-MMD
II (xsub). ``cfg["target"]`` names the target dataset config (``configs/dataset/<target>.yaml``,
resolved at the run's scale, ``cfg["target_overrides"]`` merged over it); the encoder is then
fine-tuned with the fine-tune recipe (:mod:`evaluators.protocols.finetune`, same keys) on the
target's train split and evaluated on its test split. ``cfg["method_finetune"]`` (optional)
replaces the method's ``finetune`` block (the fine-tune model's normalisation) for the target: it
is passed to ``method.finetune_model(..., finetune=...)``; the method is never changed.
``cfg["enabled"] = false`` skips the protocol for a dataset (experiments pretrain the transfer
row on one dataset only). One record, ``variant = "target=<name>"``; the record's dataset is the
PRETRAINING dataset and ``extra.target`` the target.
"""

from __future__ import annotations

import time

from evaluators.core.config import load_config
from evaluators.datasets import load_dataset
from evaluators.protocols._skeleton_common import device_of, window_of
from evaluators.protocols.finetune import finetune_once
from evaluators.protocols.registry import ProtocolResult, RunContext, complete_config, register_protocol
from evaluators.provenance import ours_entry


def load_target(cfg: dict, ctx: RunContext):
    """The target dataset object (``evaluators.datasets.load_dataset``) named by ``cfg["target"]``."""
    target = cfg.get("target")
    if not target:
        raise ValueError("protocol transfer: no 'target' dataset config given (protocol_cfg.transfer.target=NAME)")
    dcfg = load_config("dataset", str(target), ctx.scale, patch=dict(cfg.get("target_overrides") or {}) or None)
    return dcfg, load_dataset(dcfg)


@register_protocol("transfer", needs="RepresentationLearner", tasks="skeleton_ssl")
def transfer(method, data, cfg: dict, ctx: RunContext) -> list[ProtocolResult]:
    """Fine-tune on ``cfg["target"]`` (e.g. PKU-MMD II) from the encoder pretrained on this run's dataset."""
    cfg = complete_config("transfer", cfg)
    if not cfg["enabled"]:
        return []
    t0 = time.perf_counter()
    dcfg, target = load_target(cfg, ctx)
    out = finetune_once(method, target, "train", cfg, ctx.seed, device_of(method, ctx), desc="transfer",
                        method_finetune=cfg.get("method_finetune"))
    key, prov = ours_entry("transfer.recipe", "pkuv2_finetune",
                           "no official transfer config: the target's fine-tune recipe (protocol/transfer.yaml)")
    return [ProtocolResult(
        provenance={key: prov},
        metrics={"top1": out["top1_best"], "top1_last": out["top1_last"]}, split="test",
        n_samples={"expected": len(target.split("test")), "evaluated": out["n_test"]},
        variant=f"target={dcfg['name']}",
        extra={"target": dcfg["name"], "target_source": dcfg.get("source"), "pretrained_on": data.name,
               "target_overrides": dict(cfg.get("target_overrides") or {}),
               "curve": out["curve"], "window": window_of(method, cfg),
               "top1_is": "best epoch (as the official engine reports); top1_last = last epoch",
               "wall_s": time.perf_counter() - t0})]
