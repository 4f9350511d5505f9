"""Skeleton tensor layout of MacDiff: persons folded into the batch, time resampled.

Batches follow ``methods.base``: ``[B, 3, T, V=25, M=2]`` raw coordinates; the networks take
``[B*M, T, V, 3]`` (official ``permute(0, 4, 2, 3, 1)``).
"""

from __future__ import annotations

import torch


def fold_persons(x: torch.Tensor) -> torch.Tensor:
    """``[B, 3, T, V, M] -> [B*M, T, V, 3]`` (official ``permute(0, 4, 2, 3, 1)``)."""
    if x.ndim != 5 or x.shape[1] != 3:
        raise ValueError(f"skeletons must be [B, 3, T, V, M], got {tuple(x.shape)}")
    b, c, t, v, m = x.shape
    return x.permute(0, 4, 2, 3, 1).reshape(b * m, t, v, c)


def unfold_persons(x: torch.Tensor, m: int) -> torch.Tensor:
    """Inverse of :func:`fold_persons`."""
    bm, t, v, c = x.shape
    return x.reshape(bm // m, m, t, v, c).permute(0, 4, 2, 3, 1)


def resize_time(x: torch.Tensor, length: int) -> torch.Tensor:
    """``[B, C, T, V, M] -> [B, C, length, V, M]`` by linear interpolation along time (zeros stay zeros)."""
    b, c, t, v, m = x.shape
    flat = x.permute(0, 1, 3, 4, 2).reshape(b, c * v * m, t)
    out = torch.nn.functional.interpolate(flat, size=length, mode="linear", align_corners=False)
    return out.reshape(b, c, v, m, length).permute(0, 1, 4, 2, 3).contiguous()
