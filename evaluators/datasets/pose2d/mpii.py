"""MPII Human Pose in the annotation format MMPose publishes (``mpii_{train,val}.json``).

Each entry: ``{"image", "center" [2], "scale" (box height / 200), "joints" [16, 2],
"joints_vis" [16]}``. Head boxes for PCKh come from ``mpii_gt_val.mat`` (``headboxes_src``
[2, 2, N]), the file MMPose's ``MpiiDataset(headbox_file=...)`` reads: head size =
||headbox[1] - headbox[0]|| * SC_BIAS (0.6) (MMPose ``mpii_dataset.py``). Centre/scale are
converted as MMPose does: scale * 200 pixels, centre y moved down by 15 * scale, then the
1-based MATLAB centre moved to 0-based.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from evaluators.core.paths import resolve_inside
from evaluators.datasets.base import DatasetError, register_dataset, register_inspector, resolve_root
from evaluators.datasets.checks import MAX_PIXELS, check_points, json_numbers
from evaluators.datasets.pose2d.coco import PoseDataset, _load_json
from evaluators.datasets.pose2d.transforms import MPII_FLIP_PAIRS, MPII_SKELETON

NUM_MPII_KPTS = 16
PIXEL_STD = 200.0
SC_BIAS = 0.6  # MMPose / MPII evaluation: head size = 0.6 * head box diagonal
#: ours: a visible joint lies within this many person-box heights (scale * 200 px) of the person's
#: centre; in MMPose's MPII files the farthest is about half a box height away
JOINT_MARGIN_BOXES = 2.0


def read_headboxes(path: str | Path) -> np.ndarray:
    """``headboxes_src`` of an ``mpii_gt_val.mat`` as ``[N, 2, 2]`` ((x1, y1), (x2, y2))."""
    # lazy: scipy.io (0.2 s of CPU, with scipy.sparse) is needed only to read MPII's .mat, not at every start-up
    from scipy.io import loadmat

    path = Path(path)
    try:
        gt = loadmat(str(path))
    except FileNotFoundError:
        raise DatasetError("head box file is missing", path=path) from None
    except Exception as e:  # scipy raises several types for corrupt .mat files
        raise DatasetError(f"cannot read MATLAB file ({e})", path=path) from None
    if "headboxes_src" not in gt:
        raise DatasetError("no 'headboxes_src' variable (expected mpii_gt_val.mat layout)", path=path)
    hb = np.asarray(gt["headboxes_src"], dtype=np.float64)
    if hb.ndim != 3 or hb.shape[:2] != (2, 2):
        raise DatasetError(f"headboxes_src has shape {hb.shape}, expected [2, 2, N]", path=path)
    hb = np.transpose(hb, (2, 0, 1))
    bad = np.flatnonzero(~np.isfinite(hb).all(axis=(1, 2)) | ~(np.linalg.norm(hb[:, 1] - hb[:, 0], axis=1) > 0))
    if len(bad):  # PCKh divides by the head size
        raise DatasetError(f"head box {int(bad[0])} {hb[bad[0]].tolist()} is not finite or has size 0", path=path)
    return hb


def parse_mpii(path: str | Path, image_dir: str | Path | None, headbox_file: str | Path | None = None,
               check_images: bool = True, allow_symlinks: bool | None = None) -> list[dict[str, Any]]:
    """Instances of an MMPose-format MPII json (``head_size`` from the head boxes when given).

    ``allow_symlinks``: image links may lead out of ``image_dir`` (default: ``$MOTIONREPRO_ALLOW_SYMLINKS``)."""
    path = Path(path)
    anns = _load_json(path)
    if not isinstance(anns, list):
        raise DatasetError("not an MPII annotation list (expected a JSON list of {image, center, scale, joints, joints_vis})", path=path)
    heads = read_headboxes(headbox_file) if headbox_file else None
    if heads is not None and len(heads) != len(anns):
        raise DatasetError(f"{len(heads)} head boxes for {len(anns)} annotations in {path.name}", path=headbox_file)
    out = []
    for idx, ann in enumerate(anns):
        if not isinstance(ann, dict) or not {"image", "center", "scale", "joints", "joints_vis"} <= set(ann):
            raise DatasetError(f"entry {idx} lacks image/center/scale/joints/joints_vis", path=path)
        joints = json_numbers(ann["joints"], path, f"entry {idx} joints")
        vis = json_numbers(ann["joints_vis"], path, f"entry {idx} joints_vis")
        centre = json_numbers(ann["center"], path, f"entry {idx} center")
        sc = json_numbers(ann["scale"], path, f"entry {idx} scale")
        if centre.shape != (2,):
            raise DatasetError(f"entry {idx}: center must be 2 numbers [x, y], got shape {centre.shape}", path=path)
        if sc.ndim != 0 or not sc > 0:
            raise DatasetError(f"entry {idx}: scale must be one number > 0, got {ann['scale']!r}", path=path)
        if not np.isin(vis, (0, 1)).all():
            raise DatasetError(f"entry {idx}: joints_vis must be 0 or 1, got {vis[~np.isin(vis, (0, 1))][0]:g}",
                               path=path)
        if joints.shape != (NUM_MPII_KPTS, 2) or vis.shape != (NUM_MPII_KPTS,):
            raise DatasetError(f"entry {idx} has joints {joints.shape} / joints_vis {vis.shape}, expected (16, 2) / (16,)", path=path)
        if not (np.isfinite(joints).all() and np.isfinite(ann["scale"]) and np.isfinite(ann["center"]).all()):
            raise DatasetError(f"entry {idx} has NaN/inf values", path=path)
        if float(sc) * PIXEL_STD > MAX_PIXELS or np.abs(centre).max() > MAX_PIXELS:
            raise DatasetError(f"entry {idx}: center {centre.tolist()} / scale {float(sc):g} lie beyond "
                               f"{MAX_PIXELS:g} pixels", path=path)
        reach = JOINT_MARGIN_BOXES * float(sc) * PIXEL_STD
        check_points(joints, vis > 0, path, f"entry {idx} ({ann['image']}) joints",
                     tuple(centre - reach), tuple(centre + reach))
        scale = np.array([ann["scale"], ann["scale"]], dtype=np.float32) * PIXEL_STD
        center = np.asarray(ann["center"], dtype=np.float32).copy()
        if center[0] != -1:
            center[1] += 15.0 / PIXEL_STD * scale[1]  # MMPose: avoid cropping the legs
        center -= 1  # MATLAB 1-based -> 0-based
        bbox = np.array([center[0] - scale[0] / 2, center[1] - scale[1] / 2, scale[0], scale[1]], np.float32)
        # the image name is data: it must stay inside the image folder
        img_path = resolve_inside(image_dir, str(ann["image"]), source=path,
                                  allow_symlinks=allow_symlinks) if image_dir is not None else None
        inst = {"image_id": idx, "image_name": ann["image"],
                "image_path": str(img_path) if img_path is not None else None,
                "center": center, "scale": scale, "bbox": bbox, "bbox_score": 1.0,
                "keypoints": joints.astype(np.float32), "visible": vis.astype(np.float32),
                "area": float(scale[0] * scale[1]), "iscrowd": 0, "ann_id": idx}
        if heads is not None:
            inst["head_size"] = float(np.linalg.norm(heads[idx][1] - heads[idx][0]) * SC_BIAS)
        out.append(inst)
    if check_images and image_dir is not None:
        for p in sorted({i["image_path"] for i in out}):
            if not Path(p).exists():
                raise DatasetError(f"image file is missing (referenced by {path.name})", path=p)
    return out


def mpii_pose_dataset(name: str, source: str, root: Path, cfg: dict, *,
                      allow_symlinks: bool | None = None) -> PoseDataset:
    img_dir = root / cfg.get("image_dir", "images")
    eval_split = cfg.get("eval_split", "val")
    splits, ann_files = {}, {}
    for split, rel in (cfg.get("ann_files") or {"train": "annotations/mpii_train.json",
                                                "val": "annotations/mpii_val.json"}).items():
        ann = root / rel
        if not ann.exists():
            if split == eval_split:
                raise DatasetError(f"annotation file for split {split!r} is missing (dataset {name})", path=ann)
            continue
        hb = None
        if split == eval_split and cfg.get("headbox_file", "annotations/mpii_gt_val.mat"):
            hb = root / cfg.get("headbox_file", "annotations/mpii_gt_val.mat")
            hb = hb if hb.exists() else None
        splits[split] = parse_mpii(ann, img_dir, hb, check_images=cfg.get("check_images", True),
                                   allow_symlinks=allow_symlinks)
        ann_files[split] = ann
    return PoseDataset(name=name, source=source, num_keypoints=NUM_MPII_KPTS, flip_pairs=MPII_FLIP_PAIRS,
                       skeleton=MPII_SKELETON, splits=splits, ann_file=ann_files[eval_split], image_dir=img_dir,
                       ann_files=ann_files, fmt="mpii", eval_split=eval_split)


@register_dataset("mpii", task="pose2d", source="real")
def load(cfg: dict) -> PoseDataset:
    """MPII from ``$MPII_ROOT`` (``annotations/mpii_{train,val}.json``, ``mpii_gt_val.mat``, ``images/``)."""
    return mpii_pose_dataset(cfg.get("name", "mpii"), "real", resolve_root(cfg), cfg)


@register_inspector
def inspect_mpii(path: Path) -> dict | None:
    if not path.is_file():
        return None
    if path.suffix == ".mat":
        try:
            hb = read_headboxes(path)
        except DatasetError:
            return None
        return {"format": "mpii_gt_headboxes", "head_boxes": int(len(hb))}
    if path.suffix != ".json":
        return None
    head = path.read_text(encoding="utf-8", errors="replace")[:2048]
    if not head.lstrip().startswith("[") or '"joints' not in head:
        return None
    insts = parse_mpii(path, None, check_images=False)
    return {"format": "mpii_mmpose_json", "annotations": len(insts), "keypoints": NUM_MPII_KPTS,
            "images": len({i["image_name"] for i in insts}),
            "visible_keypoints": int(sum((i["visible"] > 0).sum() for i in insts))}
