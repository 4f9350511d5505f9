"""Training view of a motion dataset for MLD: normalised, padded batches with a condition.

MLD trains both stages on motions normalised with the dataset's per-dimension Mean/Std
(official ``mld/data/humanml``), and generates normalised features that are
de-normalised with the same statistics (``methods/base.py``: generators return RAW features).

Items of the wrapped dataset may be dicts with a motion under ``motion`` / ``features`` /
``joints`` (``[T, D]``, or ``[T, J, 3]`` for action datasets, flattened to ``J*3``), an
optional ``length``, and a condition under ``text`` / ``caption`` / ``captions`` (one caption is
drawn at random per load when several are given, as the official loader does) or ``action``
/ ``label``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

MOTION_KEYS = ("motion", "features", "joints")
TEXT_KEYS = ("text", "caption", "captions", "texts")
ACTION_KEYS = ("action", "label", "action_id")


def _first(item: dict, keys: Sequence[str], what: str, required: bool = True) -> Any:
    for k in keys:
        if k in item and item[k] is not None:
            return item[k]
    if required:
        raise KeyError(f"dataset item has no {what} (looked for {list(keys)}; item keys: {sorted(item)})")
    return None


def motion_of(item: dict) -> np.ndarray:
    """The item's motion as float32 ``[T, D]`` (``[T, J, 3]`` flattened), cut to its length."""
    m = np.asarray(_first(item, MOTION_KEYS, "motion"), dtype=np.float32)
    if m.ndim == 3:
        m = m.reshape(m.shape[0], -1)
    if m.ndim != 2:
        raise ValueError(f"motion must be [T, D] or [T, J, 3], got shape {m.shape}")
    n = item.get("length", item.get("m_length"))
    return m[: int(n)] if n is not None else m


def condition_of(item: dict, condition: str, rng: random.Random | None = None) -> str | int:
    """A caption (text condition; one drawn at random if several) or an action id."""
    if condition == "action":
        return int(_first(item, ACTION_KEYS, "action label"))
    t = _first(item, TEXT_KEYS, "caption")
    if isinstance(t, (list, tuple)):
        if not t:
            raise ValueError("dataset item has an empty caption list")
        t = (rng or random).choice(list(t))
    if isinstance(t, dict):  # {"caption": ..., "tokens": ...} style annotations
        t = t.get("caption", t.get("text", ""))
    return str(t)


class NormalizedView(torch.utils.data.Dataset):
    """Wraps items as ``{"motion": [T, D] normalised, "length": T, "cond": caption | action}``.

    ``max_len`` crops longer motions at a random start (official: at most 196 frames).
    """

    def __init__(self, base, mean: np.ndarray, std: np.ndarray, condition: str = "text",
                 max_len: int | None = None) -> None:
        self.base, self.condition, self.max_len = base, condition, max_len
        self.mean = torch.as_tensor(mean, dtype=torch.float32).reshape(-1)
        self.std = torch.as_tensor(std, dtype=torch.float32).reshape(-1)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> dict:
        item = self.base[i]
        m = torch.from_numpy(motion_of(item))
        if self.max_len is not None and len(m) > self.max_len:
            start = random.randint(0, len(m) - self.max_len)
            m = m[start:start + self.max_len]
        if m.shape[-1] != self.mean.numel():
            raise ValueError(f"item {i}: feature width {m.shape[-1]} != mean/std width {self.mean.numel()}")
        return {"motion": (m - self.mean) / self.std, "length": len(m), "cond": condition_of(item, self.condition)}


def collate(items: list[dict]) -> dict:
    """Pads motions to the longest in the batch: ``motion [B, T, D]``, ``length [B]``, ``cond`` list."""
    T = max(it["length"] for it in items)
    D = items[0]["motion"].shape[-1]
    motion = torch.zeros(len(items), T, D)
    for b, it in enumerate(items):
        motion[b, : it["length"]] = it["motion"]
    return {"motion": motion, "length": torch.tensor([it["length"] for it in items]),
            "cond": [it["cond"] for it in items]}


def feature_stats(base, max_items: int = 20000) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean/std over all frames (fallback when the dataset ships no Mean/Std)."""
    n = min(len(base), max_items)
    frames = np.concatenate([motion_of(base[i]) for i in range(n)], axis=0)
    std = frames.std(axis=0)
    return frames.mean(axis=0), np.where(std < 1e-6, 1.0, std).astype(np.float32)


def infer_lengths(x: torch.Tensor) -> torch.Tensor:
    """Lengths ``[B]`` of zero-padded motions ``[B, T, D]`` (last frame with any non-zero + 1)."""
    nz = x.reshape(x.shape[0], x.shape[1], -1).abs().sum(-1) > 0
    idx = torch.arange(1, x.shape[1] + 1, device=x.device)[None].expand_as(nz)
    return (idx * nz).amax(dim=1).clamp_min(1)
