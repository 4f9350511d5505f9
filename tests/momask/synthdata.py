"""A tiny in-test text-motion dataset with the shapes of HumanML3D (``[T, 263]`` raw features).

Four motion classes, each with its own caption family and its own temporal pattern on
disjoint feature groups, so a text-conditioned generator can beat an unconditioned one
measurably within seconds of CPU training. Exposes the dataset-object interface
the methods read (``torch_dataset(split, normalize=False)``, ``mean``, ``std``).
"""

from __future__ import annotations

import numpy as np

CAPTIONS = [
    ["a person walks forward", "someone walks forward slowly", "the man walks ahead"],
    ["a person jumps up and down", "someone jumps in place", "the man jumps twice"],
    ["a person waves the right hand", "someone waves with the right arm", "the man waves his hand"],
    ["a person turns to the left", "someone turns around to the left", "the man turns left"],
]


def make_motion(cls: int, length: int, rng: np.random.Generator, dim: int = 263) -> np.ndarray:
    t = np.arange(length, dtype=np.float32)[:, None]
    # smooth per-sample background (random mixtures of 4 slow sinusoids) + small noise
    freqs = rng.uniform(0.02, 0.12, size=4)
    basis = np.sin(freqs[None] * t + rng.uniform(0, 2 * np.pi, size=4)[None])  # [T, 4]
    mix = np.random.default_rng(1234).standard_normal((4, dim))  # one mixing matrix for the whole set
    x = (0.3 * basis @ mix + 0.01 * rng.standard_normal((length, dim))).astype(np.float32)
    group = slice(4 + cls * 16, 4 + (cls + 1) * 16)
    freq = 0.15 + 0.1 * cls
    phase = rng.uniform(0, 2 * np.pi)
    x[:, group] += np.sin(freq * t + phase + np.arange(16)[None] * 0.3).astype(np.float32)
    x[:, 0] += 0.5 * cls
    return x


class _Split:
    def __init__(self, items):
        self.items = items

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


class TinyT2M:
    """``n`` motions per split (classes round-robin), lengths in [40, 64] frames."""

    def __init__(self, n_train: int = 96, n_test: int = 64, seed: int = 0, dim: int = 263, max_len: int = 64):
        rng = np.random.default_rng(seed)
        self.splits = {}
        for split, n in (("train", n_train), ("test", n_test)):
            items = []
            for i in range(n):
                cls = i % 4
                length = int(rng.integers(40, max_len + 1)) // 4 * 4
                m = np.zeros((max_len, dim), np.float32)
                m[:length] = make_motion(cls, length, rng, dim)
                items.append({"motion": m, "length": length, "captions": CAPTIONS[cls], "label": cls})
            self.splits[split] = items
        allm = np.concatenate([it["motion"][: it["length"]] for it in self.splits["train"]])
        self.mean = allm.mean(0)
        self.std = allm.std(0) + 1e-3

    def torch_dataset(self, split: str = "train", normalize: bool = True):
        assert not normalize
        return _Split(self.splits[split])
