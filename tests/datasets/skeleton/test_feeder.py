"""MAMP/MacDiff feeder: crop rules, bilinear resize, rotation, joint noise, shapes, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from evaluators.datasets.skeleton.dataset import SkeletonSplit
from evaluators.datasets.skeleton.feeder import (
    SkeletonFeeder,
    crop_bounds,
    joint_noise,
    random_rot,
    resize_frames,
    rotation_matrix,
)


def _split(valid=(100, 40, 300), seed=0) -> SkeletonSplit:
    rng = np.random.default_rng(seed)
    data = np.zeros((len(valid), 3, 300, 25, 2), np.float32)
    for i, v in enumerate(valid):
        data[i, :, :v, :, 0] = rng.normal(size=(3, v, 25)) + 0.1
    return SkeletonSplit.from_arrays(data, np.arange(len(valid)), [f"s{i}" for i in range(len(valid))])


def test_test_crop_is_a_centre_crop_of_95_percent():
    assert crop_bounds(100, (0.95,)) == (2, 96)  # int(0.05 * 100 / 2) = 2 frames off each end
    assert crop_bounds(300, (0.95,)) == (7, 286)
    assert crop_bounds(10, (0.95,)) == (0, 10)


def test_train_crop_ratio_and_minimum_length():
    torch.manual_seed(0)
    for valid in (30, 64, 100, 300):
        for _ in range(200):
            start, length = crop_bounds(valid, (0.5, 1.0))
            assert min(64, valid) <= length <= valid and length >= math.floor(valid * 0.5)
            assert 0 <= start and start + length <= valid
    lengths = {crop_bounds(300, (0.5, 1.0))[1] for _ in range(300)}
    assert min(lengths) < 170 and max(lengths) > 280  # p spans [0.5, 1]
    with pytest.raises(ValueError):
        crop_bounds(0, (0.95,))


def test_resize_matches_half_pixel_linear_interpolation():
    """F.interpolate(bilinear, align_corners=False) along time == np.interp at (i+0.5)L/W-0.5 (clamped)."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 37, 25, 2)).astype(np.float32)
    for W in (120, 20):
        out = resize_frames(torch.from_numpy(x), W).numpy()
        src = np.clip((np.arange(W) + 0.5) * 37 / W - 0.5, 0, 36)
        want = np.apply_along_axis(lambda s, q=src: np.interp(q, np.arange(37), s), 1, x)
        np.testing.assert_allclose(out, want, atol=1e-5)


def test_rotation_matches_mamp_conventions():
    ang = torch.tensor([0.1, -0.2, 0.25])
    R = rotation_matrix(ang).numpy()
    # MAMP's rx/ry/rz are the standard rotations by the negated angles; product Rz @ Ry @ Rx
    want = Rotation.from_euler("ZYX", [-0.25, 0.2, -0.1]).as_matrix()
    np.testing.assert_allclose(R, want, atol=1e-6)
    x = torch.from_numpy(_split().data[0])
    y = random_rot(x, 0.3)
    np.testing.assert_allclose(y.norm(dim=0), x.norm(dim=0), atol=1e-5)  # lengths kept, zeros stay zero


def test_joint_noise_touches_round_p_times_25_joints():
    torch.manual_seed(0)
    x = torch.zeros(3, 120, 25, 2)
    y = joint_noise(x, 0.2, 0.01)
    changed = (y != 0).any(dim=(0, 1, 3))
    assert int(changed.sum()) == 5
    z = joint_noise(x, 1.0, 0.005)
    assert abs(z.std().item() - 0.005) < 0.0005


def test_feeder_items_shapes_and_dataloader():
    sp = _split()
    f = SkeletonFeeder(sp, train=True, random_rot=True, noise_std=0.005)
    x, y, i = f[1]
    assert x.shape == (3, 120, 25, 2) and x.dtype == torch.float32 and (y, i) == (1, 1)
    assert (x[..., 1] != 0).any()  # the noise also reaches the absent actor (MacDiff joint_noise)
    batch = next(iter(torch.utils.data.DataLoader(f, batch_size=3)))
    assert batch[0].shape == (3, 3, 120, 25, 2) and batch[1].tolist() == [0, 1, 2]


def test_test_feeder_is_deterministic_and_exact():
    sp = _split()
    f = SkeletonFeeder(sp, train=False, window=120)
    x, _, _ = f[0]
    want = resize_frames(torch.from_numpy(sp.data[0][:, 2:98]), 120)
    torch.testing.assert_close(x, want)
    torch.testing.assert_close(f[0][0], x)


def test_pair_mode_noise_only_on_the_augmented_copy():
    sp = _split()
    torch.manual_seed(5)
    x, xa, y, i = SkeletonFeeder(sp, train=True, pair=True, noise_std=0.005)[0]
    torch.manual_seed(5)
    x_clean, _, _ = SkeletonFeeder(sp, train=True)[0]
    torch.testing.assert_close(x, x_clean)
    assert 0.003 < (xa - x).std().item() < 0.007


def test_seeded_train_feeder_is_reproducible():
    sp = _split()
    f = SkeletonFeeder(sp, train=True, random_rot=True)
    torch.manual_seed(1)
    a = f[2][0]
    torch.manual_seed(1)
    torch.testing.assert_close(f[2][0], a)


def test_bad_feeder_arguments():
    sp = _split()
    with pytest.raises(ValueError):
        SkeletonFeeder(sp, train=True, p_interval=(0.0, 2.0))
    with pytest.raises(ValueError):
        SkeletonFeeder(sp, train=True, window=0)
    empty = SkeletonSplit.from_arrays(np.zeros((1, 3, 300, 25, 2), np.float32), [0], ["empty"])
    with pytest.raises(ValueError, match="empty"):
        SkeletonFeeder(empty, train=False)


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_dataset_feeder_uses_config_crop_ratios(synth):
    f = synth.feeder("test", train=False)
    assert f.p_interval == (0.95,) and len(f) == len(synth.split("test"))
    sub = synth.split("train").subset([0, 5])
    g = synth.feeder(sub, train=True, window=64)
    assert len(g) == 2 and g[1][0].shape == (3, 64, 25, 2) and g[1][1] == sub.labels[1]
