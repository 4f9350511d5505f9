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

Feature recipes (``cfg["features"]``, named in the record's ``variant``):

- ``per_epoch_augmented`` (default, the authors'): the frozen encoder re-encodes the training
  windows every epoch under the training augmentation (random crop p in [0.5, 1], random
  rotation: ``linprobe_madiff.yaml`` ``train_feeder_args``), and the probe's dropout acts on
  every token BEFORE pooling (``model/transformer_downstream.py::ActionHeadLinprobe2``:
  ``dropout(feat)`` then ``feat.mean(dim=[1, 2])``). Needs ``method.encode(x, pooling="tokens")``
  -> ``[B, M, TP, VP, D]``; a method without it gets dropout on the pooled feature (recorded).
  Test features: the deterministic test crop p = 0.95, no rotation (``val_feeder_args``).
- ``frozen_once`` (ours, fast): features extracted ONCE per split with the test crop for train
  and test, dropout on the pooled feature.
"""


from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F
from torch import nn

from evaluators.metrics.knn import knn_top1
from evaluators.protocols._skeleton_common import device_of, extract_features, loader, window_of
from evaluators.protocols.registry import ProtocolResult, RunContext, complete_config, register_protocol
from evaluators.provenance import recipe_entry

FEATURES = ("per_epoch_augmented", "frozen_once")


def pool_tokens(tok: torch.Tensor, pooling: str) -> torch.Tensor:
    """``[B, M, TP, VP, D]`` -> ``[B, VP*D]`` (``joint``: mean over persons and time) or ``[B, D]`` (``mean``)."""
    if pooling == "joint":
        return tok.mean(dim=(1, 2)).reshape(tok.shape[0], -1)
    return tok.mean(dim=(1, 2, 3))


class TokenProbe(nn.Module):
    """Dropout on every token, pooling, non-affine BatchNorm, linear (official linprobe heads)."""

    def __init__(self, dim: int, num_classes: int, pooling: str, dropout: float = 0.0) -> None:
        super().__init__()
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.bn = nn.BatchNorm1d(dim, affine=False, eps=1e-6)
        self.fc = nn.Linear(dim, num_classes)
        nn.init.trunc_normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)

    def features(self, tok: torch.Tensor) -> torch.Tensor:
        return pool_tokens(self.dropout(tok), self.pooling)

    def forward(self, tok: torch.Tensor) -> torch.Tensor:
        return self.fc(self.bn(self.features(tok)))

    def classify_pooled(self, f: torch.Tensor) -> torch.Tensor:
        """Eval path on already pooled features (dropout is the identity in eval mode)."""
        return self.fc(self.bn(f))


def _test_top1(predict, probe: nn.Module, fte: torch.Tensor, yte: torch.Tensor, device) -> float:
    """Top-1 (%) of ``predict`` on the frozen test features, with ``probe`` in eval mode."""
    probe.eval()
    with torch.inference_mode():
        pred = torch.cat([predict(f.to(device)).argmax(-1).cpu() for f in torch.split(fte, 1024)])
    return 100.0 * float((pred == yte).float().mean())


def _supports_tokens(method, x: torch.Tensor) -> bool:
    try:
        out = method.encode(x[:1], pooling="tokens")
    except (ValueError, TypeError, KeyError, NotImplementedError):
        return False
    return out.ndim == 5


def fit_augmented_probe(method, train_feeder, fte: torch.Tensor, yte: torch.Tensor, num_classes: int, pooling: str,
                        *, epochs: int = 100, batch_size: int = 256, lr: float = 0.1, momentum: float = 0.9,
                        weight_decay: float = 0.0, dropout: float = 0.0, seed: int = 0, min_lr_epochs: int = 0,
                        device: str | torch.device = "cpu") -> dict:
    """The authors' probe: every epoch re-encodes ``train_feeder``'s (augmented) windows with the
    frozen encoder; dropout on the tokens before pooling. ``fte`` are pooled test features."""
    torch.manual_seed(seed)
    first = train_feeder[0][0][None]
    tokens = _supports_tokens(method, first)
    dim = int(fte.shape[1])
    probe = TokenProbe(dim, num_classes, pooling, dropout).to(device)
    opt = torch.optim.SGD(probe.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    n = len(train_feeder)
    steps_per_epoch = max(n // batch_size, 1) if n > batch_size else 1
    total, step, curve = max(epochs - min_lr_epochs, 1) * steps_per_epoch, 0, []
    for epoch in range(epochs):
        probe.train()
        for batch in loader(train_feeder, batch_size, shuffle=True, seed=seed + epoch, drop_last=n > batch_size):
            for g in opt.param_groups:
                g["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * step / total)) if step < total else 0.0
            y = torch.as_tensor(batch[-2]).long()
            if len(y) < 2:
                continue
            with torch.no_grad():
                if tokens:
                    logits_in = method.encode(batch[0], pooling="tokens").to(device)
                else:  # no token features: dropout on the pooled feature (recorded in the result)
                    logits_in = method.encode(batch[0], pooling=pooling).to(device)
            out = probe(logits_in) if tokens else probe.classify_pooled(probe.dropout(logits_in))
            loss = F.cross_entropy(out, y.to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
        curve.append(_test_top1(probe.classify_pooled, probe, fte, yte, device))
    return {"top1_best": max(curve), "top1_last": curve[-1], "curve": curve,
            "dropout_on": "tokens" if tokens else "pooled"}


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
        curve.append(_test_top1(probe, probe, fte, yte, device))
    return {"top1_best": max(curve), "top1_last": curve[-1], "curve": curve}


def probe_frozen_features(ftr: torch.Tensor, ytr: torch.Tensor, fte: torch.Tensor, yte: torch.Tensor,
                          num_classes: int, cfg: dict, pooling: str, seed: int,
                          device: str | torch.device = "cpu") -> dict:
    """The ``frozen_once`` probe of ``pooling``'s recipe (batch size, dropout) on given features;
    the protocol and a submitted-features score (``evaluators/score.py``) both call it."""
    pcfg = dict(cfg[pooling])
    return fit_linear_probe(ftr, ytr, fte, yte, num_classes, epochs=int(cfg["epochs"]), lr=float(cfg["lr"]),
                            momentum=float(cfg["momentum"]), weight_decay=float(cfg["weight_decay"]),
                            min_lr_epochs=int(cfg["min_lr_epochs"]), seed=seed, device=device,
                            batch_size=int(pcfg["batch_size"]), dropout=float(pcfg["dropout"]))


def knn_result(ftr: torch.Tensor, ytr: torch.Tensor, fte: torch.Tensor, yte: torch.Tensor, num_classes: int,
               cfg: dict, pooling: str, n_expected: int) -> ProtocolResult:
    """The weighted kNN probe (``cfg["knn"]``: DINO ``eval_knn.py``) on frozen features, variant
    ``knn,pool=POOLING``."""
    k, temp = int(cfg["knn"]["k"]), float(cfg["knn"]["temperature"])
    top1 = knn_top1(ftr, ytr, fte, yte, num_classes, k=k, temperature=temp)
    return ProtocolResult(metrics={"top1": top1}, split="test", variant=f"knn,pool={pooling}",
                          n_samples={"expected": n_expected, "evaluated": len(yte)},
                          extra={"pooling": pooling, "feature_dim": int(fte.shape[1]), "k": k, "temperature": temp,
                                 "features": "frozen, test crop p=0.95 for train and test"})


@register_protocol("linear", needs="RepresentationLearner", tasks="skeleton_ssl")
def linear(method, data, cfg: dict, ctx: RunContext) -> list[ProtocolResult]:
    """Linear probe on frozen features, per-joint (MacDiff) and pooled (MAMP) features."""
    cfg = complete_config("linear", cfg)
    window = window_of(method, cfg)
    device = device_of(method, ctx)
    features = str(cfg["features"])
    if features not in FEATURES:
        raise ValueError(f"protocol config linear.features must be one of {FEATURES}, got {features!r}")
    train_f = data.feeder("train", train=False, window=window)
    test_f = data.feeder("test", train=False, window=window)
    aug_f = data.feeder("train", train=True, window=window, random_rot=bool(cfg["random_rot"]))
    results = []
    common = dict(epochs=int(cfg["epochs"]), lr=float(cfg["lr"]), momentum=float(cfg["momentum"]),
                  weight_decay=float(cfg["weight_decay"]), min_lr_epochs=int(cfg["min_lr_epochs"]), seed=ctx.seed,
                  device=device)
    for pooling in cfg["poolings"]:
        t0 = time.perf_counter()
        pcfg = dict(cfg[pooling])
        fte, yte = extract_features(method, test_f, pooling)
        ftr = ytr = None
        if features == "frozen_once":
            ftr, ytr = extract_features(method, train_f, pooling)
            out = probe_frozen_features(ftr, ytr, fte, yte, data.num_classes, cfg, pooling, ctx.seed, device)
            text = "extracted once with the test crop p=0.95 for train and test (no per-epoch random crop/rotation); " \
                   "dropout on pooled features"
        else:
            out = fit_augmented_probe(method, aug_f, fte, yte, data.num_classes, pooling,
                                      batch_size=int(pcfg["batch_size"]), dropout=float(pcfg["dropout"]), **common)
            text = (f"train windows re-encoded every epoch (random crop p in {list(aug_f.p_interval)}, rotation "
                    f"{bool(cfg['random_rot'])}); dropout on {out['dropout_on']}; test crop p=0.95")
        key, prov = recipe_entry("linear_features", features, paper=features == "per_epoch_augmented",
                                 paper_value="per_epoch_augmented")
        results.append(ProtocolResult(
            metrics={"top1": out["top1_best"], "top1_last": out["top1_last"]}, split="test",
            n_samples={"expected": len(data.split("test")), "evaluated": len(yte)},
            variant=f"pool={pooling},features={features}", provenance={key: prov},
            extra={"pooling": pooling, "feature_dim": int(fte.shape[1]), "window": window, "curve": out["curve"],
                   "top1_is": "best epoch (papers' 'Max accuracy'); top1_last = last epoch",
                   "features": features, "features_text": text, "wall_s": time.perf_counter() - t0}))
        if cfg["knn"]["enabled"]:
            if ftr is None:
                ftr, ytr = extract_features(method, train_f, pooling)
            results.append(knn_result(ftr, ytr, fte, yte, data.num_classes, cfg, pooling, len(data.split("test"))))
    return results
