"""Top-down transforms: affine round trip, MSRA heatmaps and decoding, flips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluators.datasets.pose2d.transforms import (
    COCO_FLIP_PAIRS,
    affine_points,
    box_to_center_scale,
    crop_to_image,
    decode_heatmaps,
    flip_heatmaps,
    flip_keypoints,
    gaussian_heatmaps,
    get_warp_matrix,
    refine_dark,
    warp_image,
)


def test_box_to_center_scale_pads_and_fixes_aspect():
    c, s = box_to_center_scale([10, 20, 40, 100], aspect_ratio=192 / 256)
    np.testing.assert_allclose(c, [30, 70])
    np.testing.assert_allclose(s, [125 * 0.75, 125])  # 1.25 padding, width grown to w/h = 0.75


@pytest.mark.parametrize("rot", [0.0, 30.0, -75.0])
def test_affine_round_trip(rot):
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 300, size=(17, 2))
    c, s = np.array([150.0, 120.0]), np.array([120.0, 160.0])
    fwd = get_warp_matrix(c, s, rot, (192, 256))
    np.testing.assert_allclose(crop_to_image(affine_points(pts, fwd), c, s, (192, 256), rot), pts, atol=1e-9)
    # the box centre lands on the crop centre and the box width on the crop width
    np.testing.assert_allclose(affine_points(c, fwd), [96, 128], atol=1e-9)
    if rot == 0.0:
        np.testing.assert_allclose(affine_points(c + [60, 0], fwd), [192, 128], atol=1e-9)


def test_warp_image_moves_a_bright_pixel_where_the_matrix_says():
    img = np.zeros((100, 120, 3), np.uint8)
    img[40, 70] = 255
    c, s = np.array([60.0, 50.0]), np.array([60.0, 80.0])
    mat = get_warp_matrix(c, s, 0.0, (48, 64))
    crop = warp_image(img, mat, (48, 64))
    y, x = np.unravel_index(crop[..., 0].argmax(), crop.shape[:2])
    np.testing.assert_allclose([x, y], affine_points([70, 40], mat), atol=1.0)


def test_gaussian_heatmaps_peak_weights_and_decode():
    kp = np.array([[10.0, 20.0], [3.3, 4.6], [-20.0, 5.0], [5.0, 5.0]])
    vis = np.array([2, 1, 2, 0])
    hm, w = gaussian_heatmaps((48, 64), kp, vis, 2.0)
    assert hm.shape == (4, 64, 48)
    np.testing.assert_array_equal(w, [1, 1, 0, 0])  # outside the grid / unlabeled -> weight 0
    assert hm[0, 20, 10] == 1.0 and hm[0, 20, 13] == pytest.approx(np.exp(-9 / 8))
    assert hm[2].sum() == 0 and hm[3].sum() == 0
    xy, score = decode_heatmaps(torch.from_numpy(hm[:2])[None], refine="none")
    np.testing.assert_allclose(xy[0].numpy(), [[10, 20], [3, 5]])
    assert score[0, 0] == 1.0


def test_quarter_offset_and_dark_move_towards_true_peak():
    ys, xs = np.mgrid[0:32, 0:24]
    hm = np.exp(-((xs - 10.4) ** 2 + (ys - 12.8) ** 2) / (2 * 2.0 ** 2))[None, None].astype(np.float32)
    t = torch.from_numpy(hm)
    q, _ = decode_heatmaps(t, refine="quarter")
    np.testing.assert_allclose(q[0, 0].numpy(), [10.25, 12.75])
    d = refine_dark(decode_heatmaps(t, refine="none")[0], t)
    np.testing.assert_allclose(d[0, 0].numpy(), [10.4, 12.8], atol=0.05)


def test_flip_heatmaps_twice_is_identity_and_swaps_pairs():
    hm = torch.rand(2, 17, 8, 6)
    back = flip_heatmaps(flip_heatmaps(hm, COCO_FLIP_PAIRS, shift=False), COCO_FLIP_PAIRS, shift=False)
    assert torch.equal(back, hm)
    f = flip_heatmaps(hm, COCO_FLIP_PAIRS, shift=False)
    assert torch.equal(f[:, 1], hm[:, 2].flip(-1)) and torch.equal(f[:, 0], hm[:, 0].flip(-1))


def test_flip_keypoints_mirrors_and_swaps():
    kp = np.arange(34, dtype=float).reshape(17, 2)
    vis = np.arange(17, dtype=float)
    fk, fv = flip_keypoints(kp, vis, 100, COCO_FLIP_PAIRS)
    np.testing.assert_allclose(fk[1], [99 - kp[2, 0], kp[2, 1]])
    assert fv[5] == vis[6] and fv[0] == vis[0]
