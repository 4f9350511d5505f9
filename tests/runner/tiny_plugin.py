"""Plugin for runner tests (``MOTIONREPRO_PLUGINS=tests.runner.tiny_plugin``, subprocesses only):
the test-only method plus a tiny synthetic dataset, a tiny "real" dataset and a sharded protocol."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch.utils.data import TensorDataset

from evaluators.core import distributed as D
from evaluators.datasets import register_dataset, resolve_root
from evaluators.protocols import ProtocolResult, register_protocol
from tests.runner.tiny_method import TinyRepro  # noqa: F401  (registers "tinyrepro")


def _make(n: int, d: int = 4, seed: int = 0) -> SimpleNamespace:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = (x[:, 0] > 0).long()
    k = n // 2
    return SimpleNamespace(train=TensorDataset(x[:k], y[:k]), test=TensorDataset(x[k:], y[k:]))


@register_dataset("tiny_synth", task="skeleton_ssl", source="synthetic")
def load_tiny_synth(cfg: dict) -> SimpleNamespace:
    return _make(int(cfg["size"]))


@register_dataset("tiny_synth_b", task="skeleton_ssl", source="synthetic")
def load_tiny_synth_b(cfg: dict) -> SimpleNamespace:
    return _make(int(cfg["size"]), seed=2)


@register_dataset("tiny_real", task="skeleton_ssl", source="real")
def load_tiny_real(cfg: dict) -> SimpleNamespace:
    resolve_root(cfg)
    return _make(int(cfg["size"]), seed=1)


@register_protocol("tiny_probe", needs="RepresentationLearner", tasks="skeleton_ssl")
def tiny_probe(method, data, cfg: dict, ctx) -> ProtocolResult:
    """Nearest-class-mean accuracy on encoded test samples, sharded over ranks."""
    xtr, ytr = data.train.tensors
    xte, yte = data.test.tensors
    ftr = method.encode(xtr)
    means = torch.stack([ftr[ytr == c].mean(0) for c in (0, 1)])
    idx = torch.as_tensor(D.shard_indices(len(xte)))
    pred_local = torch.cdist(method.encode(xte[idx]), means).argmin(1)
    pred = D.gather_concat(pred_local)
    correct = (pred == yte[: len(pred)]).float()
    return ProtocolResult(metrics={"top1": 100.0 * float(correct.mean())},
                          n_samples={"expected": len(xte), "evaluated": int(pred.shape[0])},
                          extra={"k": cfg.get("k")})
