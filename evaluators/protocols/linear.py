"""Linear evaluation of a frozen skeleton encoder (MAMP / MacDiff lineage).

Classifier: ``BatchNorm1d(affine=False, eps=1e-6)`` + ``Linear`` on frozen features; SGD lr 0.1,
momentum 0.9, weight decay 0, no warmup, per-step half-cosine decay to 0 over the first 90 of
100 epochs, then lr = min_lr = 0 for the last 10 (``min_lr_epochs``) (MAMP
``linprobe_t120_layer8.yaml`` / MacDiff ``linprobe_madiff.yaml``, ``main_linprobe.py``).
Two poolings, each its own result (``variant`` ``pool=joint`` / ``pool=mean``):

- ``joint``: MacDiff "linprobe2", mean over persons and time, joints kept (25 x 256 = 6400-d),
  dropout 0.3 in front of the BatchNorm, batch 256 (64/GPU x 4);
- ``mean``: MAMP, mean over persons, time and joints (256-d), batch 128.

Reported: ``top1`` = best epoch (what the papers report, "Max accuracy"), ``top1_last``.

Deviation (for speed, documented in the record): features are extracted ONCE per split with
the deterministic test crop (p = 0.95, no rotation) instead of re-encoding randomly cropped and
rotated training windows every epoch, and the joint-pooling dropout acts on the pooled
feature rather than on every token before pooling.
"""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from evaluators.protocols._skeleton_common import device_of, extract_features, loader, window_of
from evaluators.protocols.registry import ProtocolResult, RunContext, register_protocol

DEFAULTS = {"joint": {"batch_size": 256, "dropout": 0.3}, "mean": {"batch_size": 128, "dropout": 0.0}}


class LinearProbe(nn.Module):
    """``[N, D] -> [N, classes]``: dropout, non-affine BatchNorm, linear."""

    def __init__(self, dim: int, num_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.bn = nn.BatchNorm1d(dim, affine=False, eps=1e-6)
        self.fc = nn.Linear(dim, num_classes)
        nn.init.trunc_normal_(self.fc.weight, std=0.01)  # MAE/MAMP main_linprobe.py head init
        nn.init.zeros_(self.fc.bias)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.fc(self.bn(self.dropout(f)))


def fit_linear_probe(ftr: torch.Tensor, ytr: torch.Tensor, fte: torch.Tensor, yte: torch.Tensor, num_classes: int,
                     *, epochs: int = 100, batch_size: int = 256, lr: float = 0.1, momentum: float = 0.9,
                     weight_decay: float = 0.0, dropout: float = 0.0, seed: int = 0, min_lr_epochs: int = 0,
                     device: str | torch.device = "cpu") -> dict:
    """Train the probe on ``ftr [N, D]`` and evaluate on ``fte`` after every epoch.

    Returns ``{"top1_best", "top1_last", "curve"}`` (accuracies in %).
    """
    torch.manual_seed(seed)
    probe = LinearProbe(ftr.shape[1], num_classes, dropout).to(device)
    opt = torch.optim.SGD(probe.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    ds = torch.utils.data.TensorDataset(ftr, ytr)
    tl = loader(ds, batch_size, shuffle=True, seed=seed, drop_last=len(ds) > batch_size)
    total, step, curve = max(epochs - min_lr_epochs, 1) * len(tl), 0, []
    for _ in range(epochs):
        probe.train()
        for f, y in tl:
            for g in opt.param_groups:
                g["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * step / total)) if step < total else 0.0
            if len(y) < 2:
                continue
            loss = F.cross_entropy(probe(f.to(device)), y.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        probe.eval()
        with torch.inference_mode():
            pred = torch.cat([probe(f.to(device)).argmax(-1).cpu() for f in torch.split(fte, 1024)])
        curve.append(100.0 * float((pred == yte).float().mean()))
    return {"top1_best": max(curve), "top1_last": curve[-1], "curve": curve}


@register_protocol("linear", needs="RepresentationLearner", tasks="skeleton_ssl")
def linear(method, data, cfg: dict, ctx: RunContext) -> list[ProtocolResult]:
    """Linear probe on frozen features, per-joint (MacDiff) and pooled (MAMP) features."""
    window = window_of(method, cfg)
    device = device_of(method, ctx)
    train_f = data.feeder("train", train=False, window=window)
    test_f = data.feeder("test", train=False, window=window)
    results = []
    for pooling in cfg.get("poolings", ["joint", "mean"]):
        t0 = time.perf_counter()
        pcfg = {**DEFAULTS.get(pooling, {}), **dict(cfg.get(pooling, {}))}
        ftr, ytr = extract_features(method, train_f, pooling)
        fte, yte = extract_features(method, test_f, pooling)
        out = fit_linear_probe(ftr, ytr, fte, yte, data.num_classes, epochs=int(cfg.get("epochs", 100)),
                               batch_size=int(pcfg["batch_size"]), lr=float(cfg.get("lr", 0.1)),
                               momentum=float(cfg.get("momentum", 0.9)),
                               weight_decay=float(cfg.get("weight_decay", 0.0)), dropout=float(pcfg["dropout"]),
                               min_lr_epochs=int(cfg.get("min_lr_epochs", 10)), seed=ctx.seed, device=device)
        results.append(ProtocolResult(
            metrics={"top1": out["top1_best"], "top1_last": out["top1_last"]}, split="test",
            n_samples={"expected": len(data.split("test")), "evaluated": len(yte)}, variant=f"pool={pooling}",
            extra={"pooling": pooling, "feature_dim": int(ftr.shape[1]), "window": window, "curve": out["curve"],
                   "top1_is": "best epoch (papers' 'Max accuracy'); top1_last = last epoch",
                   "features": "extracted once with the test crop p=0.95 for train and test (no per-epoch "
                               "random crop/rotation); dropout on pooled features",
                   "wall_s": time.perf_counter() - t0}))
    return results
