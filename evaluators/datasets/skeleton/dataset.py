"""The skeleton dataset object shared by NTU RGB+D, PKU-MMD and synth_ntu (API: ``ntu.py`` docstring).

A :class:`SkeletonDataset` holds its splits as :class:`SkeletonSplit` arrays (``split.py``) in the
MAMP/MacDiff layout ``[N, C=3, T=300, V=25, M=2]`` and hands out feeders
(:mod:`evaluators.datasets.skeleton.feeder`) that apply the official temporal crop/resize.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from evaluators.datasets.base import DatasetError
from evaluators.datasets.skeleton.feeder import SkeletonFeeder
from evaluators.datasets.skeleton.split import MAX_FRAMES, SkeletonSplit, count_valid_frames

__all__ = ["MAX_FRAMES", "SPLIT_NAMES", "SkeletonDataset", "SkeletonSplit", "check_labels", "count_valid_frames"]

SPLIT_NAMES = ("train", "test")


class SkeletonDataset:
    """A skeleton action-recognition benchmark (one dataset + one evaluation split rule)."""

    split_names: tuple[str, ...] = SPLIT_NAMES

    def __init__(self, name: str, *, source: str, benchmark: str, num_classes: int,
                 splits: dict[str, SkeletonSplit] | Callable[[], dict[str, SkeletonSplit]],
                 root: str | None = None, info: dict[str, Any] | None = None,
                 feeder_defaults: dict[str, Any] | None = None) -> None:
        self.name, self.source, self.benchmark = name, source, benchmark
        self.num_classes = int(num_classes)
        self.root = root
        self.info = dict(info or {})
        # config ``feeder: {train_p_interval, test_p_interval}``: crop ratios used when the caller gives none
        self.feeder_defaults = dict(feeder_defaults or {})
        self._splits = splits if isinstance(splits, dict) else None
        self._make = None if isinstance(splits, dict) else splits

    def _all(self) -> dict[str, SkeletonSplit]:
        if self._splits is None:
            self._splits = self._make()
        return self._splits

    def split(self, name: str) -> SkeletonSplit:
        splits = self._all()
        if name not in splits:
            raise KeyError(f"dataset {self.name!r} has splits {sorted(splits)}, not {name!r}")
        return splits[name]

    def feeder(self, split: str | SkeletonSplit, train: bool, window: int = 120, **aug: Any):
        """A ``torch.utils.data.Dataset`` over ``split`` (a name or a SkeletonSplit, e.g. a subset).

        Yields ``(x [3, window, 25, 2] float32, label, index)``; see :class:`SkeletonFeeder`.
        """
        sp = self.split(split) if isinstance(split, str) else split
        key = "train_p_interval" if train else "test_p_interval"
        if aug.get("p_interval") is None and self.feeder_defaults.get(key) is not None:
            aug["p_interval"] = tuple(self.feeder_defaults[key])
        return SkeletonFeeder(sp, train=train, window=window, **aug)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "source": self.source, "benchmark": self.benchmark,
                               "num_classes": self.num_classes, "root": self.root}
        for s in self.split_names:
            sp = self.split(s)
            out[s] = {"samples": len(sp), "classes_present": int(len(np.unique(sp.labels))),
                      "mean_valid_frames": float(sp.valid_frames.mean()) if len(sp) else 0.0}
        out.update(self.info)
        return out

    def __repr__(self) -> str:
        return (f"SkeletonDataset({self.name!r}, source={self.source!r}, benchmark={self.benchmark!r}, "
                f"num_classes={self.num_classes})")


def check_labels(labels: np.ndarray, num_classes: int, where: str) -> None:
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise DatasetError(f"labels outside 0..{num_classes - 1} (min {labels.min()}, max {labels.max()})", where)
