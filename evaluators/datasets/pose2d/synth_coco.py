"""synth-coco / synth-mpii: rendered articulated figures written in the COCO and MPII formats.

Each image is a textured background (noise, stripes, blobs) with 1-3 stick-and-volume figures:
an articulated 2D body (torso lean, arm/leg joint angles, head) at several scales and
positions, limbs drawn with thickness (left limbs in warm colours, right limbs in cool ones,
as a real person's sides look different), and random occluding rectangles. Keypoints behind
an occluder get v=1 (labeled, occluded), outside the image v=0, otherwise v=2; ``area`` is
0.42 x the box area (see ``AREA_RATIO``). A detection file
holds jittered GT boxes with scores, a few misses and low-score false positives.

``style: markers`` (the smoke scale's set, ``configs/dataset/synth_coco.yaml``) draws the same
bodies as thin grey sticks on a plain background, every keypoint a disc of its own colour (one hue
per joint type, a lighter shade on the person's left), with no occluders: what a pose estimator
must find is then in the pixels at a glance, so a CPU smoke run of a few hundred steps learns it
and its COCO AP is a pipeline check that can fail (on the textured figures it stays near 0).

The files are exactly what :mod:`evaluators.datasets.pose2d.coco` / :mod:`evaluators.datasets.pose2d.mpii`
read for the real datasets (same loader code path). Deterministic per seed (PNG images),
generated once into ``cache_root()/synth_coco/<key>`` via a temporary folder and a rename.
"""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from evaluators.core.io import atomic_write_bytes, atomic_write_text
from evaluators.datasets.base import register_dataset
from evaluators.datasets.cache import build_staged, cache_key, cache_root, valid_or_discard
from evaluators.datasets.pose2d.coco import coco_pose_dataset
from evaluators.datasets.pose2d.mpii import mpii_pose_dataset

log = logging.getLogger(__name__)
GENERATOR_VERSION = 3
# MPII joint i taken from COCO-style body points (see _body): indices into the extended body array
_MPII_FROM_BODY = [16, 14, 12, 11, 13, 15, 17, 18, 19, 20, 10, 8, 6, 5, 7, 9]
_LIMBS = [  # (a, b, width fraction of body height, colour id); body indices as in _body
    (11, 13, 0.055, 0), (13, 15, 0.045, 0), (12, 14, 0.055, 1), (14, 16, 0.045, 1),
    (5, 7, 0.045, 2), (7, 9, 0.038, 2), (6, 8, 0.045, 3), (8, 10, 0.038, 3), (18, 19, 0.05, 4),
]
# COCO `area` is the segmentation area; a stick figure paints far less than a clothed person, which
# would make OKS unrealistically strict, so we store a typical person-area / box-area ratio
# (median of the 14 real annotations in shared/data/coco/test_coco.json is 0.42).
AREA_RATIO = 0.42
_PALETTE = np.array([[230, 60, 40], [40, 90, 230], [250, 170, 30], [30, 200, 200], [200, 160, 130]])
STYLES = ("figure", "markers")
# markers style: one saturated hue per joint type (nose, eyes, ears, shoulders, elbows, wrists, hips,
# knees, ankles), the person's left a lighter shade than the right; index = COCO keypoint
_JOINT_HUES = np.array([[255, 255, 255], [255, 0, 255], [0, 255, 255], [255, 255, 0], [0, 0, 255], [255, 0, 0],
                        [0, 255, 0], [255, 128, 0], [128, 0, 255]])
_JOINT_TYPE = [0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8]
MARKER_COLOURS = [tuple(int(v) for v in (_JOINT_HUES[t] if k % 2 else 0.55 * _JOINT_HUES[t]))
                   for k, t in enumerate(_JOINT_TYPE)]  # odd COCO indices are the left keypoints (nose: full)
_STICKS = [(5, 6), (11, 12), (5, 11), (6, 12), (5, 7), (7, 9), (6, 8), (8, 10), (11, 13), (13, 15), (12, 14), (14, 16),
           (18, 19), (0, 19)]


def _rot(v: np.ndarray, a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


def _body(rng: np.random.Generator, cx: float, cy: float, h: float) -> np.ndarray:
    """21 body points: COCO-17, then hip centre (17), thorax (18), upper neck (19), head top (20)."""
    lean = rng.normal(0, 0.15)
    up = _rot(np.array([0.0, -1.0]), lean)
    side = np.array([-up[1], up[0]])  # image-right when facing the camera = person's left
    hipc = np.array([cx, cy])
    thorax = hipc + up * 0.30 * h
    neck = thorax + up * 0.05 * h
    head_c = neck + up * 0.09 * h
    p = np.zeros((21, 2))
    p[17], p[18], p[19] = hipc, thorax, neck
    p[20] = head_c + up * 0.07 * h
    p[0] = head_c - up * 0.005 * h + side * rng.normal(0, 0.01) * h
    for i, sgn in ((1, 1), (2, -1)):
        p[i] = p[0] + up * 0.025 * h + side * sgn * 0.025 * h
    for i, sgn in ((3, 1), (4, -1)):
        p[i] = p[0] + up * 0.01 * h + side * sgn * 0.055 * h
    for (sh, el, wr), sgn in (((5, 7, 9), 1), ((6, 8, 10), -1)):
        p[sh] = thorax + side * sgn * 0.11 * h
        a1 = sgn * rng.uniform(-0.3, 2.6)  # upper arm angle away from the body
        a2 = a1 + sgn * rng.uniform(-0.2, 2.2)
        p[el] = p[sh] + _rot(-up, -a1) * 0.16 * h
        p[wr] = p[el] + _rot(-up, -a2) * 0.14 * h
    for (hp, kn, an), sgn in (((11, 13, 15), 1), ((12, 14, 16), -1)):
        p[hp] = hipc + side * sgn * 0.08 * h
        a1 = sgn * rng.uniform(-0.4, 1.0)
        a2 = a1 - sgn * rng.uniform(0.0, 1.6)
        p[kn] = p[hp] + _rot(-up, -a1) * 0.24 * h
        p[an] = p[kn] + _rot(-up, -a2) * 0.23 * h
    if rng.random() < 0.5:  # mirror the pose left/right (the figure stays facing the camera)
        p[:, 0] = 2 * cx - p[:, 0]
        for a, b in ((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)):
            p[[a, b]] = p[[b, a]]
    return p


def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    base = rng.uniform(40, 200, size=3)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.ones((h, w, 3)) * base
    f, ph = rng.uniform(0.02, 0.2), rng.uniform(0, 6.28)
    img += rng.uniform(10, 40) * np.sin(f * (xx * np.cos(ph) + yy * np.sin(ph)))[..., None]
    coarse = rng.normal(0, 30, size=(h // 16 + 2, w // 16 + 2, 3))
    img += np.kron(coarse, np.ones((16, 16, 1)))[:h, :w]
    img += rng.normal(0, 8, size=img.shape)
    return np.clip(img, 0, 255)


def _place_figure(rng: np.random.Generator, w: int, h: int) -> tuple[float, np.ndarray, Image.Image]:
    """A figure's height, its keypoints at a random place in the image, and an empty mask to draw it into."""
    bh = rng.uniform(0.45, 0.95) * h
    cx, cy = rng.uniform(0.15 * w, 0.85 * w), rng.uniform(0.35 * h, 0.65 * h) + 0.1 * bh
    return bh, _body(rng, cx, cy, bh), Image.new("L", (w, h), 0)


def _occlude(people: list[dict], occluders: np.ndarray) -> None:
    """Each figure's ``occ``: the occluders plus every figure drawn after it (later ones cover earlier)."""
    for i, p in enumerate(people):
        cover = occluders.copy()
        for q in people[i + 1:]:
            cover |= q["mask"]
        p["occ"] = cover


def _render_markers(rng: np.random.Generator, w: int, h: int, n_people: int):
    """Plain background, grey stick bodies, a coloured disc on every keypoint, no occluders."""
    img = Image.new("RGB", (w, h), tuple(int(v) for v in rng.integers(70, 130) + rng.integers(-10, 11, size=3)))
    people = []
    for _ in range(n_people):
        bh, pts, mask = _place_figure(rng, w, h)
        for li, d in enumerate([ImageDraw.Draw(img), ImageDraw.Draw(mask)]):
            for a, b in _STICKS:
                d.line([tuple(pts[a]), tuple(pts[b])], fill=(200, 200, 200) if li == 0 else 255,
                       width=max(1, int(0.02 * bh)))
            for k in range(17):  # body joints first, the small face discs over them
                kk = (k + 5) % 17
                r = (0.012 if kk < 5 else 0.03) * bh
                q = pts[kk]
                d.ellipse([q[0] - r, q[1] - r, q[0] + r, q[1] + r], fill=MARKER_COLOURS[kk] if li == 0 else 255)
        people.append({"pts": pts, "mask": np.asarray(mask) > 0})
    _occlude(people, np.zeros((h, w), bool))
    return np.asarray(img), people


def _render_image(rng: np.random.Generator, w: int, h: int, n_people: int, style: str = "figure"):
    if style == "markers":
        return _render_markers(rng, w, h, n_people)
    img = Image.fromarray(_background(rng, w, h).astype(np.uint8))
    people = []
    for _ in range(n_people):
        bh, pts, mask = _place_figure(rng, w, h)
        layers = [ImageDraw.Draw(img), ImageDraw.Draw(mask)]
        jitter = rng.integers(-25, 26, size=(len(_PALETTE), 3))
        torso = [tuple(pts[i]) for i in (5, 6, 12, 11)]
        shirt = tuple(int(v) for v in rng.integers(60, 230, size=3))
        for li, d in enumerate(layers):
            d.polygon(torso, fill=shirt if li == 0 else 255)
            for a, b, wf, c in _LIMBS:
                col = tuple(int(v) for v in np.clip(_PALETTE[c] + jitter[c], 0, 255)) if li == 0 else 255
                d.line([tuple(pts[a]), tuple(pts[b])], fill=col, width=max(2, int(wf * bh)))
                r = wf * bh / 2
                for q in (pts[a], pts[b]):
                    d.ellipse([q[0] - r, q[1] - r, q[0] + r, q[1] + r], fill=col)
            r = 0.075 * bh
            hc = (pts[19] + pts[20]) / 2 + (pts[20] - pts[19]) * 0.1
            d.ellipse([hc[0] - r * 0.85, hc[1] - r, hc[0] + r * 0.85, hc[1] + r], fill=(225, 190, 160) if li == 0 else 255)
            if li == 0:
                for i, col in ((0, (120, 40, 40)), (1, (20, 20, 20)), (2, (20, 20, 20)), (3, (90, 60, 40)), (4, (90, 60, 40))):
                    q, rr = pts[i], max(1.0, 0.012 * bh)
                    d.ellipse([q[0] - rr, q[1] - rr, q[0] + rr, q[1] + rr], fill=col)
        people.append({"pts": pts, "mask": np.asarray(mask) > 0, "occ": np.zeros((w, h), bool).T})
    occ = np.zeros((h, w), bool)
    draw = ImageDraw.Draw(img)
    for _ in range(rng.integers(0, 3)):
        ow, oh = rng.uniform(0.1, 0.35) * w, rng.uniform(0.1, 0.35) * h
        x0, y0 = rng.uniform(0, w - ow), rng.uniform(0, h - oh)
        draw.rectangle([x0, y0, x0 + ow, y0 + oh], fill=tuple(int(v) for v in rng.integers(0, 255, size=3)))
        occ[int(y0):int(y0 + oh) + 1, int(x0):int(x0 + ow) + 1] = True
    _occlude(people, occ)
    for p in people:
        p["mask"] = p["mask"] & ~occ
    return np.asarray(img), people


def _annotate(p: dict, w: int, h: int, idx: list[int]) -> tuple[np.ndarray, np.ndarray]:
    pts = p["pts"][idx]
    inside = (pts[:, 0] >= 0) & (pts[:, 0] < w) & (pts[:, 1] >= 0) & (pts[:, 1] < h)
    vis = np.where(inside, 2, 0)
    for j in np.where(inside)[0]:
        if p["occ"][int(pts[j, 1]), int(pts[j, 0])]:
            vis[j] = 1
    return pts, vis


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def generate(out: Path, seed: int = 0, n_train: int = 240, n_val: int = 60, image_size=(160, 160),
             max_people: int = 2, style: str = "figure") -> None:
    """Write a synth-coco tree (COCO layout) and the matching MPII files into ``out``; ``style``
    ``figure`` (textured, occluded) or ``markers`` (colour-coded keypoints on a plain background)."""
    if style not in STYLES:
        raise ValueError(f"synth_coco: style must be one of {STYLES}, got {style!r}")
    w, h = image_size
    rng = np.random.default_rng(seed)
    cat = {"id": 1, "name": "person", "supercategory": "person",
           "keypoints": ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
                         "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
                         "left_knee", "right_knee", "left_ankle", "right_ankle"],
           "skeleton": [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8], [7, 9],
                        [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]]}
    ann_id = 1
    for split, n in (("train", n_train), ("val", n_val)):
        images, anns, dets, mpii, heads = [], [], [], [], []
        for i in range(n):
            img_id = (1 if split == "train" else 2) * 1_000_000 + i
            fname = f"{img_id:012d}.png"
            arr, people = _render_image(rng, w, h, int(rng.integers(1, max_people + 1)), style)
            atomic_write_bytes(out / f"{split}2017" / fname, _png(arr))
            images.append({"id": img_id, "file_name": fname, "width": w, "height": h})
            for p in people:
                kp, vis = _annotate(p, w, h, list(range(17)))
                ys, xs = np.nonzero(p["mask"])
                if len(xs) < 20:
                    continue
                x0, y0, x1, y1 = float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)
                kp_out = np.concatenate([np.round(kp, 2) * (vis[:, None] > 0), vis[:, None]], 1)
                anns.append({"id": ann_id, "image_id": img_id, "category_id": 1, "iscrowd": 0,
                             "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
                             "area": round(AREA_RATIO * (x1 - x0) * (y1 - y0), 2), "num_keypoints": int((vis > 0).sum()),
                             "keypoints": [float(v) for v in kp_out.reshape(-1)]})
                ann_id += 1
                if rng.random() > 0.05:  # 5% missed by the "detector"
                    bw, bh_ = x1 - x0, y1 - y0
                    cx = (x0 + x1) / 2 + rng.normal(0, 0.06) * bw
                    cy = (y0 + y1) / 2 + rng.normal(0, 0.06) * bh_
                    sw, sh = bw * rng.uniform(0.9, 1.15), bh_ * rng.uniform(0.9, 1.15)
                    dets.append({"image_id": img_id, "category_id": 1, "score": round(float(rng.uniform(0.6, 1.0)), 4),
                                 "bbox": [round(cx - sw / 2, 2), round(cy - sh / 2, 2), round(sw, 2), round(sh, 2)]})
                mk, mv = _annotate(p, w, h, _MPII_FROM_BODY)
                s = (y1 - y0) / 200.0
                # inverse of MMPose's loader conversion (centre y + 15 * scale, 1-based -> 0-based)
                mpii.append({"image": f"{split}2017/{fname}", "center": [round((x0 + x1) / 2 + 1, 3), round((y0 + y1) / 2 - 15 * s + 1, 3)],
                             "scale": round(float(s), 5), "joints": np.round(mk, 3).tolist(),
                             "joints_vis": (mv > 0).astype(int).tolist()})
                hc, hr = (p["pts"][19] + p["pts"][20]) / 2, np.linalg.norm(p["pts"][20] - p["pts"][19]) * 0.75
                heads.append([[hc[0] - hr, hc[1] - hr], [hc[0] + hr, hc[1] + hr]])
            if split == "val" and rng.random() < 0.3:  # a low-score false positive
                fw, fh = rng.uniform(0.1, 0.4) * w, rng.uniform(0.2, 0.6) * h
                dets.append({"image_id": img_id, "category_id": 1, "score": round(float(rng.uniform(0.05, 0.4)), 4),
                             "bbox": [round(float(rng.uniform(0, w - fw)), 2), round(float(rng.uniform(0, h - fh)), 2),
                                      round(fw, 2), round(fh, 2)]})
        coco = {"info": {"description": f"synth-coco seed {seed}"}, "licenses": [], "images": images,
                "annotations": anns, "categories": [cat]}
        atomic_write_text(out / "annotations" / f"person_keypoints_{split}2017.json", json.dumps(coco))
        atomic_write_text(out / "mpii" / "annotations" / f"mpii_{split}.json", json.dumps(mpii))
        if split == "val":
            atomic_write_text(out / "person_detection_results" / "COCO_val2017_detections_synth.json", json.dumps(dets))
            # lazy: scipy.io (0.2 s of CPU, with scipy.sparse) only when the set is generated, not at every start-up
            from scipy.io import savemat

            buf = io.BytesIO()
            savemat(buf, {"headboxes_src": np.transpose(np.asarray(heads, np.float64), (1, 2, 0))})
            mat = buf.getvalue()
            # the 116-byte text header carries a creation time: fix it so files are byte-identical per seed
            header = b"MATLAB 5.0 MAT-file, written by motionrepro synth_coco".ljust(116, b" ")
            atomic_write_bytes(out / "mpii" / "annotations" / "mpii_gt_val.mat", header + mat[116:])
    for split in ("train", "val"):  # MPII images live next to its annotations (images/<split>2017/...)
        os.makedirs(out / "mpii" / "images", exist_ok=True)
        os.symlink(os.path.join("..", "..", f"{split}2017"), out / "mpii" / "images" / f"{split}2017")


def ensure_synth(cfg: dict) -> Path:
    """Path of the generated tree for ``cfg`` (generated atomically on first use)."""
    opts = {k: cfg.get(k, d) for k, d in (("seed", 0), ("n_train", 240), ("n_val", 60), ("image_size", [160, 160]),
                                          ("max_people", 2), ("style", "figure"))}
    opts["image_size"] = list(opts["image_size"])
    final = cache_root() / "synth_coco" / cache_key(GENERATOR_VERSION, opts)
    if valid_or_discard(final, "synth_coco"):  # sizes + checksums (a damaged copy is rebuilt, one warning)
        return final
    def write(stage: Path) -> None:
        generate(stage, **opts)
        (stage / "DONE").write_text(json.dumps(opts))

    build_staged(final, write)
    log.info("synth-coco generated at %s", final)
    return final


@register_dataset("synth_coco", task="pose2d", source="synthetic")
def load_synth_coco(cfg: dict):
    root = ensure_synth(cfg)
    return coco_pose_dataset(cfg.get("name", "synth_coco"), "synthetic", root,
                             {**cfg, "det_file": "person_detection_results/COCO_val2017_detections_synth.json"})


@register_dataset("synth_mpii", task="pose2d", source="synthetic")
def load_synth_mpii(cfg: dict):
    root = ensure_synth(cfg)
    # our own cache links mpii/images/<split>2017 to the COCO images beside mpii/ (written by ensure_synth)
    return mpii_pose_dataset(cfg.get("name", "synth_mpii"), "synthetic", root / "mpii", cfg, allow_symlinks=True)
