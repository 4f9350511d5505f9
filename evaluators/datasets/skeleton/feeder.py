"""MAMP / MacDiff skeleton feeder: valid-frame crop, bilinear resize, rotation and joint noise.

Follows ``feeder/tools.py`` (``valid_crop_resize``, ``random_rot``, ``joint_noise``) and
``feeder/feeder_ntu.py`` of maoyunyao/MAMP and the MacDiff code (Wenrui-Shen/MacDiff@692888f):

- Only the first ``valid_frames`` frames are used (the rest is zero padding).
- Train (``p_interval=(0.5, 1)``): p ~ U[lo, hi], crop length ``min(max(floor(valid*p), 64), valid)``
  at a uniformly random start. Test (``p_interval=(0.95,)``): centre crop dropping
  ``int((1-p)*valid/2)`` frames at each end.
- The crop is resized to ``window`` frames with ``F.interpolate(mode="bilinear",
  align_corners=False)`` over a ``[C*V*M, L]`` image, exactly as MAMP does.
- ``random_rot``: one rotation with x/y/z angles ~ U[-theta, theta] (theta 0.3 rad), ``Rz Ry Rx``.
- ``joint_noise=(p, std)``: Gaussian noise on ``round(p*25)`` randomly chosen joints over all
  frames and both actors (MacDiff ``tools.joint_noise``); ``noise_std=s`` is shorthand for (1.0, s).

Randomness comes from torch's global generator (not numpy's, as MAMP does), so that
``torch.manual_seed`` and DataLoader worker seeding make every augmentation reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from evaluators.datasets.skeleton.split import SkeletonSplit

TRAIN_P_INTERVAL = (0.5, 1.0)
TEST_P_INTERVAL = (0.95,)
MIN_CROP = 64


def crop_bounds(valid: int, p_interval: Sequence[float], gen: torch.Generator | None = None) -> tuple[int, int]:
    """(start, length) of the temporal crop of a sequence with ``valid`` frames (see module doc)."""
    if valid <= 0:
        raise ValueError("cannot crop a sequence with no valid (non-zero) frame")
    if len(p_interval) == 1:
        bias = int((1 - p_interval[0]) * valid / 2)
        return bias, valid - 2 * bias
    lo, hi = float(p_interval[0]), float(p_interval[1])
    p = torch.rand(1, generator=gen).item() * (hi - lo) + lo
    length = min(max(int(math.floor(valid * p)), MIN_CROP), valid)
    start = int(torch.randint(0, valid - length + 1, (1,), generator=gen).item())
    return start, length


def resize_frames(x: torch.Tensor, window: int) -> torch.Tensor:
    """``[C, L, V, M]`` -> ``[C, window, V, M]`` by bilinear interpolation along time (MAMP)."""
    C, L, V, M = x.shape
    img = x.permute(0, 2, 3, 1).reshape(1, 1, C * V * M, L)
    out = F.interpolate(img, size=(C * V * M, window), mode="bilinear", align_corners=False)
    return out.reshape(C, V, M, window).permute(0, 3, 1, 2).contiguous()


def rotation_matrix(angles: torch.Tensor) -> torch.Tensor:
    """x/y/z angles [3] -> ``Rz @ Ry @ Rx`` [3, 3] with MAMP ``_rot``'s sign conventions."""
    c, s = angles.cos(), angles.sin()
    one, zero = torch.ones(()), torch.zeros(())
    rx = torch.stack([torch.stack([one, zero, zero]), torch.stack([zero, c[0], s[0]]),
                      torch.stack([zero, -s[0], c[0]])])
    ry = torch.stack([torch.stack([c[1], zero, -s[1]]), torch.stack([zero, one, zero]),
                      torch.stack([s[1], zero, c[1]])])
    rz = torch.stack([torch.stack([c[2], s[2], zero]), torch.stack([-s[2], c[2], zero]),
                      torch.stack([zero, zero, one])])
    return rz @ ry @ rx


def random_rot(x: torch.Tensor, theta: float = 0.3, gen: torch.Generator | None = None) -> torch.Tensor:
    """Rotate ``[3, T, V, M]`` by one random rotation (angles ~ U[-theta, theta])."""
    angles = (torch.rand(3, generator=gen) * 2 - 1) * theta
    R = rotation_matrix(angles)
    return torch.einsum("ij,jtvm->itvm", R, x)


def joint_noise(x: torch.Tensor, p: float, std: float, gen: torch.Generator | None = None) -> torch.Tensor:
    """Add N(0, std) to ``round(p*V)`` random joints of ``[3, T, V, M]`` (all frames, both actors)."""
    C, T, V, M = x.shape
    num = round(p * V)
    if num == 0 or std <= 0:
        return x
    joints = torch.randperm(V, generator=gen)[:num]
    out = x.clone()
    out[:, :, joints, :] += torch.randn(C, T, num, M, generator=gen) * std
    return out


class SkeletonFeeder(Dataset):
    """Feeder over a :class:`SkeletonSplit`.

    Yields ``(x float32 [3, window, 25, 2], label int, index int)``; with ``pair=True``
    yields ``(x, x_aug, label, index)`` where only ``x_aug`` carries the joint noise
    (and ``source_rot``), as MacDiff's pretraining feeder does.
    """

    def __init__(self, split: SkeletonSplit, train: bool, window: int = 120, *,
                 p_interval: Sequence[float] | None = None, random_rot: bool = False,
                 rot_theta: float = 0.3, noise_std: float = 0.0,
                 joint_noise: tuple[float, float] | None = None, one_person: bool = False,
                 pair: bool = False, source_rot: bool = False) -> None:
        if window <= 0:
            raise ValueError(f"window must be positive, got {window}")
        self.split, self.train, self.window = split, bool(train), int(window)
        p = tuple(p_interval) if p_interval is not None else (TRAIN_P_INTERVAL if train else TEST_P_INTERVAL)
        if len(p) not in (1, 2) or not all(0 < v <= 1 for v in p):
            raise ValueError(f"p_interval must be one or two ratios in (0, 1], got {p_interval}")
        self.p_interval = p
        self.random_rot, self.rot_theta = bool(random_rot), float(rot_theta)
        self.noise = joint_noise if joint_noise is not None else ((1.0, float(noise_std)) if noise_std else None)
        self.one_person, self.pair, self.source_rot = bool(one_person), bool(pair), bool(source_rot)
        bad = np.flatnonzero(np.asarray(split.valid_frames) <= 0)
        if len(bad):
            raise ValueError(f"sample {split.names[bad[0]]!r} has no valid frame (all zeros)")

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int):
        sp = self.split
        valid = int(sp.valid_frames[index])
        start, length = crop_bounds(valid, self.p_interval)
        x = torch.from_numpy(np.ascontiguousarray(sp.data[index][:, start:start + length], dtype=np.float32))
        if self.one_person:
            x = x.clone()
            x[..., 1:] = 0
        x = resize_frames(x, self.window)
        if self.random_rot:
            x = random_rot(x, self.rot_theta)
        label = int(sp.labels[index])
        if self.pair:
            xa = random_rot(x, self.rot_theta) if self.source_rot else x
            xa = joint_noise(xa, *self.noise) if self.noise else xa.clone()
            return x, xa, label, index
        if self.noise:
            x = joint_noise(x, *self.noise)
        return x, label, index
