"""Action-recognition evaluator: data access, training (cached), feature extraction.

An action-to-motion dataset is read through :func:`action_split`, which accepts
``data.split(name)`` returning either an object with ``motions`` (list of ``[T_i, J, C]``)
and ``labels`` (ints), or a sequence of items with ``motion`` / ``label`` (attributes or dict
keys; ``joints`` is accepted for ``motion``, as ``evaluators/datasets/motion/action.py`` names it).
Class count: ``data.num_classes`` or ``max(label) + 1``.

Training follows ACTOR's recognition training (``src/train/train_stgcn.py``: cross-entropy,
AdamW) for both recognisers; lr 1e-4 and batch 64 are our defaults (ACTOR's parser defaults were
not verified); the released HumanAct12 GRU recogniser comes
from Action2Motion and can instead be loaded with ``checkpoint=PATH`` (its state dict, or a dict
holding it under ``model``). Trained recognisers are cached at
``cache_root()/evaluators/<cache_key>-<kernel id>.pt`` (:func:`~evaluators.datasets.cache.trained_entry`;
atomic write).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from evaluators.core.io import atomic_torch_save
from evaluators.core.safe_load import CheckpointError, load_checkpoint_file
from evaluators.core.seeding import numerics_fingerprint, rng_neutral
from evaluators.datasets.cache import cache_key, entry_lock, trained_entry
from evaluators.datasets.motion.action import actor_frame_indices
from evaluators.networks.action_recognition import build_recognizer
from evaluators.networks.t2m_train import data_digest

log = logging.getLogger(__name__)

DEFAULTS = {"kind": "a2m_gru", "steps": 2000, "batch_size": 64, "lr": 1e-4, "seed": 0, "network": {},
            "num_frames": 60}


def actor_clip(motion: np.ndarray, num_frames: int | None, rng) -> np.ndarray:
    """ACTOR's "conseq" clip of ``num_frames`` (padded with the last frame when too short; None =
    whole motion), with the first frame's root joint moved to the origin, as the action datasets'
    ``torch_dataset`` yields. ``rng`` is a ``random.Random``."""
    m = np.asarray(motion, np.float32)
    if num_frames:
        m = m[actor_frame_indices(len(m), int(num_frames), rng)]
    return m - m[:1, :1]


@dataclass
class ActionSplit:
    motions: list[np.ndarray]  # [T_i, J, C]
    labels: np.ndarray  # int64 [N]

    def __len__(self) -> int:
        return len(self.motions)


def action_split(data: Any, split: str) -> ActionSplit:
    """Read ``split`` of an action-to-motion dataset (see module docstring)."""
    s = data.split(split) if hasattr(data, "split") and callable(data.split) else data
    if isinstance(s, ActionSplit):
        return s
    if getattr(s, "motions", None) is not None:
        return ActionSplit([np.asarray(m, np.float32) for m in s.motions], np.asarray(s.labels, np.int64))
    items = [s[i] for i in range(len(s))]
    if items and isinstance(items[0], dict):
        def get(it, k):
            return it["joints"] if k == "motion" and "motion" not in it else it[k]
    else:  # evaluators/datasets/motion/action.py ActionSample(name, joints [T, J, 3], label)
        def get(it, k):
            return it.joints if k == "motion" and not hasattr(it, "motion") else getattr(it, k)
    return ActionSplit([np.asarray(get(it, "motion"), np.float32) for it in items],
                       np.asarray([int(get(it, "label")) for it in items], np.int64))


def num_classes(data: Any, split: ActionSplit) -> int:
    return int(getattr(data, "num_classes", None) or int(split.labels.max()) + 1)


def pad_motions(motions: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """``[T_i, J, C]`` list -> zero-padded ``[B, T_max, J, C]`` and lengths ``[B]``."""
    t = max(len(m) for m in motions)
    out = np.zeros((len(motions), t, *motions[0].shape[1:]), np.float32)
    for i, m in enumerate(motions):
        out[i, :len(m)] = m
    return torch.from_numpy(out), torch.tensor([len(m) for m in motions])


@torch.no_grad()
def recognizer_outputs(net: nn.Module, motions, lengths, batch_size: int = 256,
                       generator: torch.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(logits [N, K], features [N, F])`` of ``motions [N, T, J, C]`` in eval mode. A stochastic
    recogniser (the HumanAct12 GRU's random initial state) draws from ``generator`` when one is
    given, else from the global torch RNG."""
    net.eval()
    dev = next(net.parameters()).device
    logits, feats = [], []
    motions = torch.as_tensor(motions)
    lengths = torch.as_tensor(lengths)
    for i in range(0, len(motions), batch_size):
        kw = {} if generator is None else {"generator": generator}
        lo, fe = net(motions[i:i + batch_size].to(dev), lengths[i:i + batch_size].to(dev), **kw)
        logits.append(lo.cpu().numpy())
        feats.append(fe.cpu().numpy())
    return np.concatenate(logits), np.concatenate(feats)


def _build(kind: str, sample: np.ndarray, n_cls: int, network: dict, chains=None) -> nn.Module:
    _, j, c = sample.shape
    if kind == "a2m_gru":
        return build_recognizer(kind, input_size=j * c, output_size=n_cls, **network)
    # ST-GCN graph: SMPL for 24 joints (ACTOR), NTU for 25, else the dataset's kinematic chains
    default = "smpl" if j == 24 else "ntu-rgb+d" if j == 25 else ("chains" if chains else "chain")
    layout = network.pop("layout", default)
    if layout == "chains":
        network["chains"] = [list(map(int, ch)) for ch in chains]
    return build_recognizer(kind, in_channels=c, num_class=n_cls, layout=layout, num_node=j, **network)


def load_recognizer(checkpoint: str, kind: str, sample: np.ndarray, n_cls: int, network: dict | None = None,
                    chains=None):
    """A released / saved recogniser state dict (strict) for motions shaped like ``sample [T, J, C]``."""
    net = _build(kind, sample, n_cls, dict(network or {}), chains)
    state = load_checkpoint_file(checkpoint, what="recogniser checkpoint")
    state = state.get("model", state) if isinstance(state, dict) else state
    net.load_state_dict(state, strict=True)
    return net.eval()


# the caller's python / numpy / torch generators are left as they were: a run whose evaluator is
# trained here (cache miss) and one that loads it from the cache then draw the same generation
# noise (a resumed run loads the evaluator the uninterrupted run trained, and must end bit-identical)
@rng_neutral()
def train_recognizer(data: Any, *, split: str = "train", cache: bool = True, **kwargs) -> nn.Module:
    """Train (or load from cache) the recognition evaluator of ``data``; returns it in eval mode."""
    hp = {**DEFAULTS, **kwargs}
    tr = action_split(data, split)
    n_cls = num_classes(data, tr)

    digest = data_digest(tr.motions, [[str(v)] for v in tr.labels])
    key = cache_key("action_recognizer", getattr(data, "name", type(data).__name__), len(tr), n_cls,
                    list(tr.motions[0].shape[1:]), digest, hp, numerics_fingerprint())
    if not cache:
        return _train(tr, data, n_cls, hp)
    path = trained_entry("evaluators", key)
    with entry_lock(path):  # a second process missing this entry waits here, then loads it
        if path.exists():
            net = _fresh(tr, data, n_cls, hp)
            try:
                net.load_state_dict(load_checkpoint_file(path, what="recogniser cache")["model"])
                return net.eval()
            except (CheckpointError, KeyError, RuntimeError) as e:  # a damaged cache entry: retrain, one line
                log.warning("cached recogniser unusable (%s): retraining it", e)
        net = _train(tr, data, n_cls, hp)  # a fresh net: a failed load may have written part of the other one
        atomic_torch_save({"model": net.state_dict(), "kind": hp["kind"], "num_classes": n_cls, "hparams": hp}, path)
    return net


def _fresh(tr, data: Any, n_cls: int, hp: dict) -> nn.Module:
    """The untrained recogniser of ``hp``: its initial weights depend on the seed only."""
    torch.manual_seed(hp["seed"])
    return _build(hp["kind"], tr.motions[0], n_cls, dict(hp["network"]), getattr(data, "kinematic_chain", None))


def _train(tr, data: Any, n_cls: int, hp: dict) -> nn.Module:
    """A fresh recogniser trained on ``tr`` with the hyperparameters ``hp``, in eval mode."""
    net = _fresh(tr, data, n_cls, hp)
    torch.manual_seed(hp["seed"])
    rng = np.random.default_rng(hp["seed"])
    clip_rng = random.Random(hp["seed"])
    opt = torch.optim.AdamW(net.parameters(), lr=hp["lr"])
    crit = nn.CrossEntropyLoss()
    net.train()
    for step in range(int(hp["steps"])):
        idx = rng.choice(len(tr), min(hp["batch_size"], len(tr)), replace=False)
        x, lens = pad_motions([actor_clip(tr.motions[i], hp["num_frames"], clip_rng) for i in idx])
        logits, _ = net(x, lens)
        loss = crit(logits, torch.from_numpy(tr.labels[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 200 == 0:
            log.info("recognizer %s step %d loss %.4f", hp["kind"], step, loss.item())
    return net.eval()
