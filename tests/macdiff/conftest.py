"""Tiny skeleton datasets for the MacDiff / skeleton-protocol tests.

``tiny_skeletons`` builds a :class:`SkeletonDataset` in the real layout ([N, 3, 300, 25, 2],
variable valid length, zero padding) whose classes differ by WHICH joints move and at what
frequency, so a representation that captures motion separates them while raw random features
do so less well. ``synth_ntu_or_tiny`` prefers the bundled synth_ntu dataset when it is registered.
"""

from __future__ import annotations

import numpy as np
import pytest

from evaluators.datasets.skeleton.dataset import SkeletonDataset, SkeletonSplit


def make_tiny(n_train: int = 60, n_test: int = 30, num_classes: int = 3, seed: int = 0, frames: int = 300):
    rng = np.random.RandomState(seed)
    rest = rng.randn(25, 3).astype(np.float32) * 0.3

    def split(n: int, tag: str) -> SkeletonSplit:
        data = np.zeros((n, 3, frames, 25, 2), np.float32)
        labels = np.arange(n) % num_classes
        for i, c in enumerate(labels):
            valid = rng.randint(80, 160)
            t = np.arange(valid) / 30.0
            joints = np.arange(25)[(np.arange(25) % num_classes) == c]
            pose = np.repeat(rest[None], valid, 0) + rng.randn(1, 25, 3).astype(np.float32) * 0.02
            amp = 0.3 + 0.1 * rng.rand()
            phase = rng.rand() * 6.28
            pose[:, joints, (c % 3)] += amp * np.sin(2 * np.pi * (0.5 + 0.5 * c) * t + phase)[:, None]
            pose += rng.randn(*pose.shape).astype(np.float32) * 0.01
            data[i, :, :valid, :, 0] = pose.transpose(2, 0, 1)
        return SkeletonSplit.from_arrays(data, labels, [f"{tag}{i}" for i in range(n)])

    return SkeletonDataset("tiny_skeletons", source="synthetic", benchmark="xsub", num_classes=num_classes,
                           splits={"train": split(n_train, "tr"), "test": split(n_test, "te")})


@pytest.fixture(scope="session")
def tiny_skeletons():
    return make_tiny()
