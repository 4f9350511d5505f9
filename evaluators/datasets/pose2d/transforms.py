"""Top-down 2D pose transforms: box -> affine crop -> target heatmaps, and back to the image.

Conventions follow MMPose 1.x (``mmpose/structures/bbox/transforms.py`` ``get_warp_matrix``,
``mmpose/datasets/transforms`` ``GetBBoxCenterScale`` / ``TopdownAffine``,
``mmpose/codecs/msra_heatmap.py`` + ``codecs/utils``): a box is turned into a centre and a
*pixel* scale (w, h) padded by 1.25 and fixed to the input aspect ratio; the crop is a 3-point
affine warp; targets are Gaussians with sigma 2 on a 1/4-resolution grid centred at the
rounded keypoint position (MSRA / SimpleBaseline codec); decoding is argmax plus the
quarter-pixel shift towards the higher neighbour (or DARK). cv2 is not available here, so
the affine matrix is solved with numpy and the warp is PIL's ``Image.transform``.

Keypoint metadata (names, flip pairs, skeleton, OKS sigmas) for COCO-17 and MPII-16 lives
here too, so loaders, methods and metrics share one copy.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image

COCO_KEYPOINTS = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
                  "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
                  "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"]
COCO_FLIP_PAIRS = [(1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)]
# 0-based version of the `skeleton` field of person_keypoints_val2017.json
COCO_SKELETON = [(15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
                 (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6)]
# pycocotools / MMPose configs/_base_/datasets/coco.py per-keypoint OKS sigmas
COCO_SIGMAS = np.array([.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87,
                        .89, .89]) / 10.0

MPII_KEYPOINTS = ["right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
                  "pelvis", "thorax", "upper_neck", "head_top", "right_wrist", "right_elbow",
                  "right_shoulder", "left_shoulder", "left_elbow", "left_wrist"]
MPII_FLIP_PAIRS = [(0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)]
MPII_SKELETON = [(0, 1), (1, 2), (2, 6), (6, 3), (3, 4), (4, 5), (6, 7), (7, 8), (8, 9), (7, 12),
                 (12, 11), (11, 10), (7, 13), (13, 14), (14, 15)]

# upper / lower body joints: the `type` field of MMPose configs/_base_/datasets/{coco,mpii}.py
COCO_UPPER_BODY = list(range(0, 11))
COCO_LOWER_BODY = list(range(11, 17))
MPII_UPPER_BODY = list(range(7, 16))
MPII_LOWER_BODY = list(range(0, 7))
BODY_PARTS = {17: (COCO_UPPER_BODY, COCO_LOWER_BODY), 16: (MPII_UPPER_BODY, MPII_LOWER_BODY)}
# MMPose RandomHalfBody defaults (mmpose/datasets/transforms/common_transforms.py, __init__; its
# docstring says min_total_keypoints 8, the code default is 9), used unchanged by the HRNet config
HALF_BODY_DEFAULTS = {"prob": 0.3, "min_total_keypoints": 9, "min_upper_keypoints": 2, "min_lower_keypoints": 3,
                      "padding": 1.5, "upper_prioritized_prob": 0.7}

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


# -- boxes -----------------------------------------------------------------------------------
def fix_aspect_ratio(scale: np.ndarray, aspect_ratio: float) -> np.ndarray:
    """Grow ``scale`` (w, h) to ``aspect_ratio`` = w / h (MMPose ``_fix_aspect_ratio``)."""
    w, h = float(scale[0]), float(scale[1])
    if w > h * aspect_ratio:
        h = w / aspect_ratio
    else:
        w = h * aspect_ratio
    return np.array([w, h], dtype=np.float32)


def box_to_center_scale(bbox_xywh, aspect_ratio: float, padding: float = 1.25) -> tuple[np.ndarray, np.ndarray]:
    """COCO ``xywh`` box -> centre (x, y) and pixel scale (w, h), padded and aspect-fixed."""
    x, y, w, h = (float(v) for v in bbox_xywh[:4])
    center = np.array([x + w * 0.5, y + h * 0.5], dtype=np.float32)
    scale = fix_aspect_ratio(np.array([w, h], dtype=np.float32) * padding, aspect_ratio)
    return center, scale


def half_body_ids(visible: np.ndarray, upper_ids, lower_ids, rng: np.random.Generator,
                  cfg: dict | None = None) -> list[int] | None:
    """MMPose ``RandomHalfBody._random_select_half_body`` for one instance: the joint ids whose box
    replaces the person box, or ``None`` (no half-body crop).

    With at least ``min_total_keypoints`` labeled joints and probability ``prob``: keep the labeled
    upper-body joints (preferred with ``upper_prioritized_prob``) or the lower-body ones; a half with
    fewer than ``min_upper_keypoints`` / ``min_lower_keypoints`` labeled joints is never chosen,
    and if both are short nothing is done. The draws happen in MMPose's order.
    """
    c = {**HALF_BODY_DEFAULTS, **(cfg or {})}
    vis = np.minimum(1, np.asarray(visible, dtype=np.float64))  # MMPose keypoints_visible = min(1, v)
    if vis.sum() < c["min_total_keypoints"] or rng.random() > c["prob"]:
        return None
    upper = [i for i in upper_ids if vis[i] > 0]
    lower = [i for i in lower_ids if vis[i] > 0]
    prefer_upper = rng.random() < c["upper_prioritized_prob"]
    if len(upper) < c["min_upper_keypoints"] and len(lower) < c["min_lower_keypoints"]:
        return None
    if len(lower) < c["min_lower_keypoints"]:
        return upper
    if len(upper) < c["min_upper_keypoints"]:
        return lower
    return upper if prefer_upper else lower


def half_body_box(keypoints: np.ndarray, ids: list[int], padding: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    """MMPose ``RandomHalfBody._get_half_body_bbox``: centre = mean of the chosen joints, scale =
    their extent x ``padding`` (the aspect ratio is fixed afterwards, as in ``TopdownAffine``)."""
    sel = np.asarray(keypoints, dtype=np.float64)[ids, :2]
    center = sel.mean(axis=0)
    scale = (sel.max(axis=0) - sel.min(axis=0)) * padding
    return center.astype(np.float32), scale.astype(np.float32)


# -- affine ----------------------------------------------------------------------------------
def _rotate(pt: np.ndarray, rad: float) -> np.ndarray:
    s, c = np.sin(rad), np.cos(rad)
    return np.array([pt[0] * c - pt[1] * s, pt[0] * s + pt[1] * c], dtype=np.float64)


def _third(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = a - b
    return b + np.array([-d[1], d[0]])


def _affine_from_3pts(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2x3 matrix mapping three ``src`` points onto ``dst`` (what cv2.getAffineTransform does)."""
    a = np.concatenate([src, np.ones((3, 1))], axis=1)  # [3, 3]
    return np.linalg.solve(a, dst).T  # [2, 3]


def get_warp_matrix(center, scale, rot: float, output_size, inv: bool = False) -> np.ndarray:
    """Affine [2, 3] from the box (centre, pixel scale, rotation in degrees) to ``output_size`` (w, h).

    Same three point pairs as MMPose ``get_warp_matrix``: the centre, a point half a box
    width above it (rotated), and a third point perpendicular to those two.
    """
    center = np.asarray(center, dtype=np.float64)
    src_w = float(scale[0])
    dst_w, dst_h = float(output_size[0]), float(output_size[1])
    src_dir = _rotate(np.array([0.0, src_w * -0.5]), np.deg2rad(rot))
    src = np.zeros((3, 2))
    dst = np.zeros((3, 2))
    src[0], src[1] = center, center + src_dir
    dst[0] = [dst_w * 0.5, dst_h * 0.5]
    dst[1] = dst[0] + np.array([0.0, dst_w * -0.5])
    src[2], dst[2] = _third(src[0], src[1]), _third(dst[0], dst[1])
    return _affine_from_3pts(dst, src) if inv else _affine_from_3pts(src, dst)


def affine_points(pts: np.ndarray, mat: np.ndarray) -> np.ndarray:
    """Apply a [2, 3] affine to points ``[..., 2]``."""
    pts = np.asarray(pts, dtype=np.float64)
    return pts @ mat[:, :2].T + mat[:, 2]


def warp_image(img: np.ndarray, mat: np.ndarray, output_size) -> np.ndarray:
    """Warp an ``HxWx3`` uint8 image with the forward affine ``mat`` into ``output_size`` (w, h)."""
    full = np.vstack([mat, [0.0, 0.0, 1.0]])
    inv = np.linalg.inv(full)[:2].reshape(-1)  # PIL wants output -> input coefficients
    out = Image.fromarray(img).transform((int(output_size[0]), int(output_size[1])), Image.AFFINE,
                                         data=tuple(inv), resample=Image.BILINEAR, fillcolor=(0, 0, 0))
    return np.asarray(out)


def crop_to_image(coords: np.ndarray, center, scale, input_size, rot: float = 0.0) -> np.ndarray:
    """Inverse transform: coordinates in the input crop ``[..., 2]`` -> image coordinates."""
    return affine_points(coords, get_warp_matrix(center, scale, rot, input_size, inv=True))


# -- heatmap codec ---------------------------------------------------------------------------
def gaussian_heatmaps(heatmap_size, keypoints: np.ndarray, visible: np.ndarray, sigma: float
                      ) -> tuple[np.ndarray, np.ndarray]:
    """MSRA heatmaps ``[K, h, w]`` and weights ``[K]`` for keypoints ``[K, 2]`` in heatmap pixels.

    Unnormalised Gaussians (peak 1) centred on the rounded position, 3-sigma support; a joint
    that is unlabeled or whose support falls outside the grid gets weight 0
    (MMPose ``generate_gaussian_heatmaps``).
    """
    w, h = int(heatmap_size[0]), int(heatmap_size[1])
    k = keypoints.shape[0]
    heat = np.zeros((k, h, w), dtype=np.float32)
    weight = (np.asarray(visible) > 0).astype(np.float32)
    radius = int(np.ceil(sigma * 3))  # = MMPose's sigma * 3 for integer 3-sigma (e.g. sigma 2)
    size = 2 * radius + 1
    g1 = np.arange(size, dtype=np.float32)
    gauss = np.exp(-((g1[None, :] - radius) ** 2 + (g1[:, None] - radius) ** 2) / (2 * sigma ** 2))
    for j in range(k):
        if weight[j] < 0.5:
            continue
        mu = (keypoints[j] + 0.5).astype(np.int64)
        left, top = int(mu[0] - radius), int(mu[1] - radius)
        right, bottom = int(mu[0] + radius + 1), int(mu[1] + radius + 1)
        if left >= w or top >= h or right < 0 or bottom < 0:
            weight[j] = 0
            continue
        gx0, gx1 = max(0, -left), min(right, w) - left
        gy0, gy1 = max(0, -top), min(bottom, h) - top
        heat[j, max(0, top):min(bottom, h), max(0, left):min(right, w)] = gauss[gy0:gy1, gx0:gx1]
    return heat, weight


def heatmap_argmax(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``[B, K, h, w]`` -> integer-grid locations ``[B, K, 2]`` (x, y) and max values ``[B, K]``."""
    b, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(b, k, -1)
    val, idx = flat.max(dim=-1)
    xy = torch.stack([idx % w, torch.div(idx, w, rounding_mode="floor")], dim=-1).float()
    xy[val <= 0] = -1.0  # MMPose get_heatmap_maximum marks empty heatmaps
    return xy, val


def refine_quarter_offset(xy: torch.Tensor, heatmaps: torch.Tensor) -> torch.Tensor:
    """Shift each argmax a quarter pixel towards its higher neighbour (MMPose ``refine_keypoints``)."""
    b, k, h, w = heatmaps.shape
    out = xy.clone()
    xi = xy[..., 0].long().clamp(1, max(w - 2, 1))
    yi = xy[..., 1].long().clamp(1, max(h - 2, 1))
    inside = (xy[..., 0] >= 1) & (xy[..., 0] <= w - 2) & (xy[..., 1] >= 1) & (xy[..., 1] <= h - 2)
    flat = heatmaps.reshape(b, k, -1)

    def at(yy, xx):
        return flat.gather(-1, (yy * w + xx).unsqueeze(-1)).squeeze(-1)

    dx = at(yi, xi + 1) - at(yi, xi - 1)
    dy = at(yi + 1, xi) - at(yi - 1, xi)
    shift = torch.stack([torch.sign(dx), torch.sign(dy)], dim=-1) * 0.25
    return torch.where(inside.unsqueeze(-1), out + shift, out)


def refine_dark(xy: torch.Tensor, heatmaps: torch.Tensor, kernel: int = 11) -> torch.Tensor:
    """DARK sub-pixel refinement: Taylor step on the log of the Gaussian-smoothed heatmap.

    Zhang et al., "Distribution-Aware Coordinate Representation" (MMPose ``refine_keypoints_dark``).
    """
    b, k, h, w = heatmaps.shape
    sigma = 0.3 * ((kernel - 1) * 0.5 - 1) + 0.8
    g = torch.arange(kernel, dtype=heatmaps.dtype) - kernel // 2
    g = torch.exp(-(g ** 2) / (2 * sigma ** 2))
    g2 = (g[:, None] * g[None, :]) / (g.sum() ** 2)
    hm = heatmaps.reshape(b * k, 1, h, w)
    mx = hm.amax(dim=(2, 3), keepdim=True)
    sm = torch.nn.functional.conv2d(torch.nn.functional.pad(hm, [kernel // 2] * 4, mode="replicate"), g2[None, None])
    sm = sm * mx / sm.amax(dim=(2, 3), keepdim=True).clamp_min(1e-10)
    lg = torch.log(sm.clamp_min(1e-10)).reshape(b, k, h, w)
    lg = torch.nn.functional.pad(lg.reshape(b * k, 1, h, w), [1, 1, 1, 1], mode="replicate").reshape(b, k, h + 2, w + 2)
    x = xy[..., 0].long().clamp(0, w - 1) + 1
    y = xy[..., 1].long().clamp(0, h - 1) + 1
    flat = lg.reshape(b, k, -1)
    wp = w + 2

    def at(yy, xx):
        return flat.gather(-1, (yy.clamp(0, h + 1) * wp + xx.clamp(0, w + 1)).unsqueeze(-1)).squeeze(-1)

    dx = 0.5 * (at(y, x + 1) - at(y, x - 1))
    dy = 0.5 * (at(y + 1, x) - at(y - 1, x))
    dxx = 0.25 * (at(y, x + 2) - 2 * at(y, x) + at(y, x - 2))
    dyy = 0.25 * (at(y + 2, x) - 2 * at(y, x) + at(y - 2, x))
    dxy = 0.25 * (at(y + 1, x + 1) - at(y - 1, x + 1) - at(y + 1, x - 1) + at(y - 1, x - 1))
    det = dxx * dyy - dxy ** 2
    ok = det.abs() > 1e-12
    safe = torch.where(ok, det, torch.ones_like(det))
    ox = -(dyy * dx - dxy * dy) / safe
    oy = -(-dxy * dx + dxx * dy) / safe
    off = torch.stack([ox, oy], -1).clamp(-1.0, 1.0)
    return torch.where((ok & (xy[..., 0] >= 0)).unsqueeze(-1), xy + off, xy)


def decode_heatmaps(heatmaps: torch.Tensor, refine: str = "quarter") -> tuple[torch.Tensor, torch.Tensor]:
    """Heatmaps ``[B, K, h, w]`` -> sub-pixel keypoints ``[B, K, 2]`` in heatmap pixels and scores ``[B, K]``."""
    xy, val = heatmap_argmax(heatmaps)
    if refine == "dark":
        xy = refine_dark(xy, heatmaps)
    elif refine == "quarter":
        xy = refine_quarter_offset(xy, heatmaps)
    return xy, val


def flip_heatmaps(heatmaps: torch.Tensor, flip_pairs, shift: bool = True) -> torch.Tensor:
    """Undo a horizontal input flip on heatmaps ``[B, K, h, w]``: mirror, swap left/right channels.

    ``shift`` moves the mirrored map one pixel right, as the HRNet / MMPose ``shift_heatmap``
    test option does to compensate the flip's half-pixel misalignment.
    """
    out = heatmaps.flip(-1)
    idx = list(range(out.shape[1]))
    for a, b in flip_pairs:
        idx[a], idx[b] = b, a
    out = out[:, idx]
    if shift:
        out = torch.cat([out[..., :1], out[..., :-1]], dim=-1)
    return out


def flip_keypoints(kpts: np.ndarray, visible: np.ndarray, width: float, flip_pairs) -> tuple[np.ndarray, np.ndarray]:
    """Mirror keypoints ``[K, 2]`` in an image of ``width`` and swap left/right joints."""
    k = kpts.copy()
    v = visible.copy()
    k[:, 0] = width - 1 - k[:, 0]
    for a, b in flip_pairs:
        k[[a, b]] = k[[b, a]]
        v[[a, b]] = v[[b, a]]
    return k, v


def normalize_image(img: np.ndarray) -> torch.Tensor:
    """``HxWx3`` uint8 RGB -> ImageNet-normalised float tensor ``[3, H, W]``."""
    x = (img.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(x.transpose(2, 0, 1).copy())


def topdown_sample(img: np.ndarray, inst: dict[str, Any], input_size, heatmap_size, sigma: float,
                   flip_pairs, rng: np.random.Generator | None = None, aug: dict | None = None) -> dict[str, Any]:
    """One top-down training/eval sample: affine crop, optional augmentation, MSRA target.

    ``aug`` (train only): ``flip`` prob, ``half_body`` (a dict of :data:`HALF_BODY_DEFAULTS` keys,
    MMPose RandomHalfBody, applied after the flip as in the HRNet pipeline; absent/null = off),
    ``scale`` (lo, hi) factor, ``rot`` max degrees and ``rot_prob`` — MMPose RandomFlip +
    RandomHalfBody + a reduced RandomBBoxTransform (no shift).
    Returns img ``[3, H, W]``, target ``[K, h, w]``, target_weight ``[K]``, keypoints_hm
    ``[K, 2]`` (heatmap pixels) and meta.
    """
    aspect = input_size[0] / input_size[1]
    if "center" in inst and inst.get("center") is not None:
        center = np.asarray(inst["center"], dtype=np.float32).copy()
        scale = fix_aspect_ratio(np.asarray(inst["scale"], dtype=np.float32) * inst.get("padding", 1.25), aspect)
    else:
        center, scale = box_to_center_scale(inst["bbox"], aspect)
    kpts = np.asarray(inst["keypoints"], dtype=np.float64).copy()
    vis = np.asarray(inst["visible"], dtype=np.float32).copy()
    rot = 0.0
    if rng is not None and aug:
        if rng.random() < aug.get("flip", 0.5):
            img = img[:, ::-1].copy()
            kpts, vis = flip_keypoints(kpts, vis, img.shape[1], flip_pairs)
            center = center.copy()
            center[0] = img.shape[1] - 1 - center[0]
        hb = aug.get("half_body")
        if hb is not None and kpts.shape[0] in BODY_PARTS:
            hb = {**HALF_BODY_DEFAULTS, **dict(hb)}
            ids = half_body_ids(vis, *BODY_PARTS[kpts.shape[0]], rng, hb)
            if ids is not None:
                center, scale = half_body_box(kpts, ids, hb["padding"])
                scale = fix_aspect_ratio(scale, aspect)
        lo, hi = aug.get("scale", (0.75, 1.25))
        scale = scale * float(rng.uniform(lo, hi))
        if rng.random() < aug.get("rot_prob", 0.6):
            rot = float(np.clip(rng.normal() * aug.get("rot", 40.0), -2 * aug.get("rot", 40.0), 2 * aug.get("rot", 40.0)))
    mat = get_warp_matrix(center, scale, rot, input_size)
    crop = warp_image(img, mat, input_size)
    kin = affine_points(kpts, mat)
    stride = np.array([input_size[0] / heatmap_size[0], input_size[1] / heatmap_size[1]])
    target, weight = gaussian_heatmaps(heatmap_size, kin / stride, vis, sigma)
    meta = {"center": center.astype(np.float32), "scale": scale.astype(np.float32), "rot": np.float32(rot),
            "keypoints": kpts.astype(np.float32), "visible": vis, "bbox": np.asarray(inst["bbox"], np.float32),
            "bbox_score": np.float32(inst.get("bbox_score", 1.0)), "image_id": int(inst.get("image_id", -1)),
            "area": np.float32(inst.get("area", 0.0)), "head_size": np.float32(inst.get("head_size", 0.0))}
    return {"img": normalize_image(crop), "target": torch.from_numpy(target),
            "target_weight": torch.from_numpy(weight),
            "keypoints_hm": torch.from_numpy((kin / stride).astype(np.float32)), "meta": meta}
