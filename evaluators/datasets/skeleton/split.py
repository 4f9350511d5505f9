"""One split of a skeleton dataset as arrays in the MAMP/MacDiff layout ``[N, C=3, T=300, V=25, M=2]``.

Below both :mod:`evaluators.datasets.skeleton.dataset` (which holds splits and hands out feeders)
and :mod:`evaluators.datasets.skeleton.feeder` (which reads one), so the feeder needs nothing from the dataset module.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MAX_FRAMES = 300  # NTU RGB+D's longest sequence; every sequence is zero-padded to it (seq_transformation.py)


def count_valid_frames(data: np.ndarray) -> np.ndarray:
    """Non-zero frames per sample, as MAMP's feeder counts them (``data.sum(C, V, M) != 0``).

    data: ``[N, 3, T, 25, 2]`` -> int64 ``[N]``.
    """
    return (data.sum(axis=(1, 3, 4)) != 0).sum(axis=1).astype(np.int64)


@dataclass
class SkeletonSplit:
    """One split: ``data`` float32 [N, 3, 300, 25, 2], ``labels`` int64 [N] (0-based),
    ``names`` list[str] (sample names), ``valid_frames`` int64 [N]."""

    data: np.ndarray
    labels: np.ndarray
    names: list[str]
    valid_frames: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.labels)
        if self.data.ndim != 5 or self.data.shape[1] != 3 or self.data.shape[3] != 25 or self.data.shape[4] != 2:
            raise ValueError(f"split data must be [N, 3, T, 25, 2], got {tuple(self.data.shape)}")
        if not (len(self.data) == n == len(self.names) == len(self.valid_frames)):
            raise ValueError(f"split arrays disagree in length: data {len(self.data)}, labels {n}, "
                             f"names {len(self.names)}, valid_frames {len(self.valid_frames)}")

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, indices: Sequence[int] | np.ndarray) -> SkeletonSplit:
        """The samples at ``indices`` (e.g. the 1% / 10% labelled subset of the semi-supervised protocol)."""
        idx = np.asarray(indices, dtype=np.int64)
        return SkeletonSplit(self.data[idx], self.labels[idx], [self.names[i] for i in idx],
                             self.valid_frames[idx])

    @classmethod
    def from_arrays(cls, data: np.ndarray, labels: np.ndarray, names: list[str]) -> SkeletonSplit:
        data = np.ascontiguousarray(data, dtype=np.float32)
        return cls(data, np.asarray(labels, dtype=np.int64), list(names), count_valid_frames(data))
