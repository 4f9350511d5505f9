"""Training views of a text-motion dataset for the three MoMask stages.

The dataset object comes from ``evaluators/datasets`` (HumanML3D / KIT-ML / synth_t2m);
:func:`text_motion_split` reads one split into plain arrays, and the two torch datasets
below reproduce the official samplers (EricGuo5513/momask-codes ``data/t2m_dataset.py``):

- :class:`MotionWindows` (tokenizer): every start offset of a ``window``-frame crop of
  every motion longer than the window (official ``MotionDataset``);
- :class:`TextMotionCrops` (transformers): one random caption, length rounded down to a
  multiple of ``unit`` (with prob. 1/3 one more unit removed), a random start, zero-padded
  to ``max_len`` (official ``Text2MotionDataset``).
Randomness uses the global torch RNG, which the shared train loop seeds and checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset


@dataclass
class TextMotionSplit:
    """``motions``: raw float32 ``[T_i, D]``; ``captions``: list of caption lists; ``mean``/``std`` ``[D]``."""

    motions: list[np.ndarray]
    captions: list[list[str]]
    mean: np.ndarray
    std: np.ndarray

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])


def _get(item, *names):
    for n in names:
        if isinstance(item, dict) and n in item:
            return item[n]
        if hasattr(item, n):
            return getattr(item, n)
    raise KeyError(f"dataset item has none of {names}")


def text_motion_split(dataset, split: str = "train") -> TextMotionSplit:
    """Read ``split`` of a text-motion dataset object into a :class:`TextMotionSplit`.

    Uses the ``MotionTextDataset`` API (``evaluators/datasets/motion/t2m_dataset.py``):
    ``dataset.split(name)`` -> samples with raw ``motion [T, D]`` and ``texts`` (``.caption``),
    plus ``dataset.mean`` / ``dataset.std``. Objects without ``split`` but with
    ``torch_dataset(split, normalize=False)`` items (``motion``, ``length``, ``captions``) also work.
    """
    if isinstance(dataset, TextMotionSplit):
        return dataset
    motions, caps = [], []
    if hasattr(dataset, "split") and callable(dataset.split):
        for s in dataset.split(split):
            texts = [t.caption if hasattr(t, "caption") else str(t) for t in s.texts]
            if texts:
                motions.append(np.asarray(s.motion, dtype=np.float32))
                caps.append(texts)
    else:
        tds = dataset.torch_dataset(split, normalize=False)
        for i in range(len(tds)):
            item = tds[i]
            motions.append(np.asarray(_get(item, "motion"), dtype=np.float32)[: int(_get(item, "length"))])
            c = _get(item, "captions", "texts", "text", "caption")
            caps.append([c] if isinstance(c, str) else [str(x) for x in c])
    if not motions:
        raise ValueError(f"dataset split {split!r} is empty")
    return TextMotionSplit(motions, caps, np.asarray(dataset.mean, np.float32), np.asarray(dataset.std, np.float32))


class MotionWindows(Dataset):
    """Normalised ``[window, D]`` crops at every start offset (tokenizer training)."""

    def __init__(self, data: TextMotionSplit, window: int) -> None:
        self.window = window
        self.motions = [(m - data.mean) / data.std for m in data.motions if len(m) > window]
        if not self.motions:  # tiny smoke sets: fall back to the shortest motion length
            window = min(len(m) for m in data.motions) // 4 * 4
            self.window = window
            self.motions = [(m - data.mean) / data.std for m in data.motions if len(m) >= window]
        counts = [max(len(m) - self.window, 1) for m in self.motions]
        self.cum = np.cumsum([0] + counts)

    def __len__(self) -> int:
        return int(self.cum[-1])

    def __getitem__(self, i: int) -> torch.Tensor:
        j = int(np.searchsorted(self.cum, i, side="right") - 1)
        s = i - int(self.cum[j])
        return torch.from_numpy(np.ascontiguousarray(self.motions[j][s:s + self.window], dtype=np.float32))


class TextMotionCrops(Dataset):
    """Items ``{"motion": [max_len, D] normalised, zero-padded, "length": int, "caption": str}``."""

    def __init__(self, data: TextMotionSplit, unit: int = 4, max_len: int = 196, min_len: int = 4) -> None:
        self.unit, self.max_len = unit, max_len
        self.items = [((m[:max_len] - data.mean) / data.std, c) for m, c in zip(data.motions, data.captions)
                      if len(m) >= max(min_len, unit)]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        m, caps = self.items[i]
        cap = caps[int(torch.randint(len(caps), ()))]
        n = len(m) // self.unit * self.unit
        if n > self.unit and int(torch.randint(3, ())) == 0:  # official "double" coin (p = 1/3)
            n -= self.unit
        start = int(torch.randint(len(m) - n + 1, ()))
        out = np.zeros((self.max_len, m.shape[1]), np.float32)
        out[:n] = m[start:start + n]
        return {"motion": torch.from_numpy(out), "length": n, "caption": cap}


def collate_text_motion(items: list[dict]) -> dict:
    """Stack motions/lengths, keep captions as a list."""
    return {"motion": torch.stack([it["motion"] for it in items]),
            "length": torch.tensor([it["length"] for it in items]),
            "caption": [it["caption"] for it in items]}
