"""COCO person keypoints (``person_keypoints_*.json`` + images + person detection files).

Format as published at https://cocodataset.org/#keypoints-2017 and read by MMPose
``CocoDataset``: ``images`` / ``annotations`` (17 keypoints as x, y, v triplets, v=0
unlabeled, 1 labeled occluded, 2 visible; ``bbox`` xywh, ``area``, ``iscrowd``,
``num_keypoints``) and a detection result list ``[{image_id, category_id, bbox, score}]``
(the standard one: ``COCO_val2017_detections_AP_H_56_person.json``).

:class:`PoseDataset` is the object every pose2d loader returns (COCO, MPII and their
synthetic twins): instances per split as plain dicts, and a torch top-down dataset built
from them with :mod:`evaluators.datasets.pose2d.transforms`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from evaluators.core.paths import resolve_inside
from evaluators.datasets.base import DatasetError, register_dataset, register_inspector, resolve_root
from evaluators.datasets.checks import check_box, check_points, finite_number, integer_id, json_numbers
from evaluators.datasets.pose2d.transforms import COCO_FLIP_PAIRS, COCO_SKELETON, topdown_sample

log = logging.getLogger(__name__)
NUM_COCO_KPTS = 17


@lru_cache(maxsize=256)
def _read_image_cached(path: str) -> np.ndarray:
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise DatasetError("image file is missing", path=path) from None
    except OSError as e:
        raise DatasetError(f"image cannot be decoded ({e})", path=path) from None


def read_image(path: str | Path) -> np.ndarray:
    """``HxWx3`` uint8 RGB image (read-only; small LRU cache)."""
    return _read_image_cached(str(path))


@dataclass
class PoseDataset:
    """A 2D pose dataset: per-split instance lists plus what the pose protocols need.

    An instance dict holds ``image_id``, ``image_path``, ``bbox`` (xywh), ``bbox_score``,
    ``keypoints`` ``[K, 2]``, ``visible`` ``[K]`` (COCO v flags or MPII 0/1), ``area``,
    ``iscrowd``, ``ann_id`` and, for MPII, ``center``/``scale`` (pixels) and ``head_size``.
    """

    name: str
    source: str  # real | synthetic
    num_keypoints: int
    flip_pairs: list[tuple[int, int]]
    skeleton: list[tuple[int, int]]
    splits: dict[str, list[dict[str, Any]]]
    ann_file: Path | None = None  # COCO json of the evaluation split (for COCOeval)
    image_dir: Path | None = None
    det_file: Path | None = None
    ann_files: dict[str, Path] = field(default_factory=dict)
    det_instances: list[dict[str, Any]] = field(default_factory=list)
    fmt: str = "coco"  # coco | mpii
    eval_split: str = "val"

    def instances(self, split: str) -> list[dict[str, Any]]:
        if split == "det":
            return self.det_instances
        if split not in self.splits:
            raise KeyError(f"dataset {self.name!r} has splits {sorted(self.splits)}, not {split!r}")
        return self.splits[split]

    def top_down_dataset(self, split: str, input_size=(192, 256), heatmap_size=(48, 64), sigma: float = 2.0,
                         train: bool = False, aug: dict | None = None, seed: int = 0):
        """Torch dataset of top-down samples (img ``[3, H, W]``, target ``[K, h, w]``, weight ``[K]``, meta).

        ``input_size`` / ``heatmap_size`` are (w, h) as in MMPose. ``split='det'`` crops the
        detection boxes (evaluation only).
        """
        return TopDownDataset(self.instances(split), tuple(input_size), tuple(heatmap_size), sigma,
                              self.flip_pairs, train=train, aug=aug, seed=seed)


class TopDownDataset:
    """``torch.utils.data.Dataset`` over instance dicts (see :func:`pose_transforms.topdown_sample`).

    Training augmentation is seeded per (seed, epoch-free index, call count) so two runs with
    the same seed see the same crops.
    """

    resume_state_attrs = ("_calls",)  # the training loop checkpoints the per-instance draw counters

    def __init__(self, instances, input_size, heatmap_size, sigma, flip_pairs, train=False, aug=None, seed=0):
        self.instances = instances
        self.input_size, self.heatmap_size, self.sigma = input_size, heatmap_size, sigma
        self.flip_pairs, self.train, self.seed = flip_pairs, train, seed
        self.aug = aug if aug is not None else {"flip": 0.5, "scale": (0.75, 1.25), "rot": 30.0, "rot_prob": 0.5}
        self._calls = np.zeros(len(instances), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.instances)

    def __getitem__(self, i: int) -> dict[str, Any]:
        inst = self.instances[i]
        rng = None
        if self.train:
            rng = np.random.default_rng([self.seed, i, int(self._calls[i])])
            self._calls[i] += 1
        out = topdown_sample(read_image(inst["image_path"]), inst, self.input_size, self.heatmap_size, self.sigma,
                             self.flip_pairs, rng=rng, aug=self.aug if self.train else None)
        out["meta"]["index"] = i
        return out


# -- value checks (shared by the loader and ``inspect``) --------------------------------------
def _image_size(im: dict) -> tuple[float, float] | None:
    return (float(im["width"]), float(im["height"])) if "width" in im and "height" in im else None


def check_image_entry(im: Any, path: Path) -> None:
    """A COCO ``images`` entry: a dict with an integer ``id``; ``width``/``height`` numbers > 0 when given."""
    if not isinstance(im, dict) or "id" not in im:
        raise DatasetError(f"image entry without an id: {im!r:.80}", path=path)
    integer_id(im["id"], path, "image id")
    for key in ("width", "height"):
        if key in im:
            finite_number(im[key], path, f"image {im['id']} {key}", above=0.0)
    if "file_name" in im and not isinstance(im["file_name"], str):
        raise DatasetError(f"image {im['id']} file_name: expected text, got {im['file_name']!r:.60}", path=path)


def check_annotation(ann: dict, path: Path, im: dict) -> np.ndarray:
    """One COCO keypoint annotation against its image; returns the keypoints ``[17, 3]``.

    Ids are integers, ``iscrowd`` 0/1, visibility flags 0/1/2 (cocodataset.org "Keypoint Detection"),
    a non-crowd box has w, h > 0 and overlaps its image (:func:`check_box`), labelled keypoints lie
    within one image size of the image."""
    aid = ann.get("id")
    if "id" in ann:
        integer_id(aid, path, "annotation id")
    integer_id(ann["image_id"], path, f"annotation {aid} image_id")
    crowd = ann.get("iscrowd", 0)
    if crowd not in (0, 1) or isinstance(crowd, bool):
        raise DatasetError(f"annotation {aid}: iscrowd {crowd!r} is not 0 or 1", path=path)
    kp = json_numbers(ann["keypoints"], path, f"annotation {aid} keypoints")
    if kp.size != NUM_COCO_KPTS * 3:
        raise DatasetError(f"annotation {aid} has {kp.size / 3:g} keypoints, expected {NUM_COCO_KPTS}", path=path)
    kp = kp.reshape(NUM_COCO_KPTS, 3)
    vis = kp[:, 2]
    if not np.isin(vis, (0, 1, 2)).all():
        raise DatasetError(f"annotation {aid}: visibility flag {vis[~np.isin(vis, (0, 1, 2))][0]:g} is not "
                           f"0, 1 or 2", path=path)
    size = _image_size(im)
    if crowd:
        json_numbers(ann["bbox"], path, f"annotation {aid} bbox", size=4)
    else:
        check_box(ann["bbox"], path, f"annotation {aid} bbox", size)
    if size is not None:
        w, h = size
        check_points(kp[:, :2], vis > 0, path, f"annotation {aid} keypoints", (-w, -h), (2 * w, 2 * h))
    if "num_keypoints" in ann:
        n = integer_id(ann["num_keypoints"], path, f"annotation {aid} num_keypoints")
        if not 0 <= n <= NUM_COCO_KPTS:
            raise DatasetError(f"annotation {aid}: num_keypoints {n} outside 0..{NUM_COCO_KPTS}", path=path)
    if "area" in ann:
        finite_number(ann["area"], path, f"annotation {aid} area", low=0.0)
    return kp


def check_detection(d: Any, path: Path, k: int, im: dict | None = None) -> np.ndarray:
    """One entry of a detection file: integer ``image_id``, a box as :func:`check_box` (against its image
    when known), a finite ``score``; returns the box."""
    if not isinstance(d, dict) or not {"image_id", "bbox", "score"} <= set(d):
        raise DatasetError(f"detection {k} lacks image_id/bbox/score: {d!r:.80}", path=path)
    integer_id(d["image_id"], path, f"detection {k} image_id")
    if "category_id" in d:
        integer_id(d["category_id"], path, f"detection {k} category_id")
    finite_number(d["score"], path, f"detection {k} score")
    return check_box(d["bbox"], path, f"detection {k} bbox", _image_size(im) if im is not None else None)


# -- parsing ---------------------------------------------------------------------------------
def _load_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except FileNotFoundError:
        raise DatasetError("file is missing", path=path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DatasetError(f"malformed JSON ({e})", path=path) from None


def parse_coco_keypoints(path: str | Path, image_dir: str | Path | None, *, train: bool = False,
                         check_images: bool = True) -> list[dict[str, Any]]:
    """Instances of a COCO person_keypoints json (crowd boxes skipped; ``train`` also skips unlabeled)."""
    path = Path(path)
    data = _load_json(path)
    if not isinstance(data, dict) or "images" not in data or "annotations" not in data:
        raise DatasetError("not a COCO keypoints json (needs 'images' and 'annotations')", path=path)
    if not isinstance(data["images"], list) or not isinstance(data["annotations"], list):
        raise DatasetError(f"'images' and 'annotations' must be lists, got {type(data['images']).__name__} / "
                           f"{type(data['annotations']).__name__}", path=path)
    images, image_paths = {}, {}
    for im in data["images"]:
        check_image_entry(im, path)
        if im["id"] in images:
            raise DatasetError(f"duplicate image id {im['id']}", path=path)
        images[im["id"]] = im
        if image_dir is not None and "file_name" not in im:
            raise DatasetError(f"image {im['id']} lacks 'file_name'", path=path)
        if image_dir is not None:  # a file_name is data: it must stay inside the image folder
            image_paths[im["id"]] = resolve_inside(image_dir, str(im["file_name"]), source=path)
    out = []
    seen: set[int] = set()
    for ann in data["annotations"]:
        if not isinstance(ann, dict) or "keypoints" not in ann or "bbox" not in ann or "image_id" not in ann:
            raise DatasetError(f"annotation {ann.get('id') if isinstance(ann, dict) else ann!r} lacks keypoints/bbox/image_id", path=path)
        integer_id(ann["image_id"], path, f"annotation {ann.get('id')} image_id")
        im = images.get(ann["image_id"])
        if im is None:
            raise DatasetError(f"annotation {ann.get('id')} refers to unknown image_id {ann['image_id']!r}", path=path)
        kp = check_annotation(ann, path, im)
        if "id" in ann:
            if ann["id"] in seen:  # COCOeval matches results to annotations by id
                raise DatasetError(f"duplicate annotation id {ann['id']}", path=path)
            seen.add(ann["id"])
        if ann.get("iscrowd", 0):
            continue
        kp = kp.reshape(NUM_COCO_KPTS, 3)
        if train and int(ann.get("num_keypoints", (kp[:, 2] > 0).sum())) == 0:
            continue
        w_img, h_img = float(im.get("width", 1e9)), float(im.get("height", 1e9))
        x, y, w, h = (float(v) for v in ann["bbox"])
        # clip the box to the image as MMPose's parse_data_info does
        x1, y1 = max(0.0, x), max(0.0, y)
        x2, y2 = min(w_img - 1, x1 + max(0.0, w)), min(h_img - 1, y1 + max(0.0, h))
        if x2 <= x1 or y2 <= y1:
            continue
        img_path = image_paths[im["id"]] if image_dir is not None else None
        out.append({"image_id": int(ann["image_id"]), "image_path": str(img_path) if img_path else None,
                    "bbox": np.array([x1, y1, x2 - x1, y2 - y1], np.float32), "bbox_score": 1.0,
                    "keypoints": kp[:, :2].astype(np.float32), "visible": kp[:, 2].astype(np.float32),
                    "area": float(ann.get("area", w * h)), "iscrowd": 0, "ann_id": int(ann.get("id", len(out))),
                    "num_keypoints": int(ann.get("num_keypoints", (kp[:, 2] > 0).sum())),
                    "width": w_img, "height": h_img})
    if check_images and image_dir is not None:
        for p in sorted({i["image_path"] for i in out}):
            if not Path(p).exists():
                raise DatasetError(f"image file is missing (referenced by {path.name})", path=p)
    return out


def parse_coco_detections(path: str | Path, gt_json: str | Path, image_dir: str | Path | None,
                          score_thr: float = 0.0, num_keypoints: int = NUM_COCO_KPTS) -> list[dict[str, Any]]:
    """Person detections -> instances with dummy keypoints (MMPose ``_load_detection_results``)."""
    path = Path(path)
    dets = _load_json(path)
    if not isinstance(dets, list):
        raise DatasetError("detection file must be a JSON list of {image_id, category_id, bbox, score}", path=path)
    images = {im["id"]: im for im in _load_json(Path(gt_json))["images"]}
    image_paths: dict[Any, Path] = {}  # one containment check per image, not per detection
    out = []
    for k, d in enumerate(dets):
        check_detection(d, path, k)
        if d.get("category_id", 1) != 1 or d["score"] < score_thr:
            continue
        im = images.get(d["image_id"])
        if im is None:
            raise DatasetError(f"detection {k} refers to image_id {d['image_id']} absent from {Path(gt_json).name}",
                               path=path)
        check_detection(d, path, k, im)  # the box against its image
        bbox = np.asarray(d["bbox"], dtype=np.float32)
        if image_dir is not None and d["image_id"] not in image_paths:
            image_paths[d["image_id"]] = resolve_inside(image_dir, str(im["file_name"]), source=gt_json)
        out.append({"image_id": int(d["image_id"]),
                    "image_path": str(image_paths[d["image_id"]]) if image_dir is not None else None,
                    "bbox": bbox, "bbox_score": float(d["score"]),
                    "keypoints": np.zeros((num_keypoints, 2), np.float32), "visible": np.ones(num_keypoints, np.float32),
                    "area": float(bbox[2] * bbox[3]), "iscrowd": 0, "ann_id": -1,
                    "width": float(im.get("width", 0)), "height": float(im.get("height", 0))})
    return out


def coco_pose_dataset(name: str, source: str, root: Path, cfg: dict) -> PoseDataset:
    """Build a :class:`PoseDataset` from a COCO-layout root (``annotations/``, ``<split>2017/``)."""
    splits, ann_files = {}, {}
    eval_split = cfg.get("eval_split", "val")
    for split, rel in (cfg.get("ann_files") or {"train": "annotations/person_keypoints_train2017.json",
                                                "val": "annotations/person_keypoints_val2017.json"}).items():
        ann = root / rel
        if not ann.exists():
            if split == eval_split:
                raise DatasetError(f"annotation file for split {split!r} is missing (dataset {name})", path=ann)
            continue
        img_dir = root / (cfg.get("image_dirs") or {}).get(split, f"{split}2017")
        splits[split] = parse_coco_keypoints(ann, img_dir, train=(split == "train"),
                                             check_images=cfg.get("check_images", True))
        ann_files[split] = ann
    det_file = root / cfg["det_file"] if cfg.get("det_file") else None
    det = []
    if det_file is not None and det_file.exists():
        img_dir = root / (cfg.get("image_dirs") or {}).get(eval_split, f"{eval_split}2017")
        det = parse_coco_detections(det_file, ann_files[eval_split], img_dir, cfg.get("det_score_thr", 0.0))
    elif det_file is not None:
        log.warning("%s: detection file %s not found; only GT-box evaluation is possible", name, det_file)
        det_file = None
    return PoseDataset(name=name, source=source, num_keypoints=NUM_COCO_KPTS, flip_pairs=COCO_FLIP_PAIRS,
                       skeleton=COCO_SKELETON, splits=splits, ann_file=ann_files[eval_split],
                       image_dir=root / (cfg.get("image_dirs") or {}).get(eval_split, f"{eval_split}2017"),
                       det_file=det_file, ann_files=ann_files, det_instances=det, fmt="coco", eval_split=eval_split)


@register_dataset("coco_kpt", task="pose2d", source="real")
def load(cfg: dict) -> PoseDataset:
    """COCO keypoints from ``$COCO_ROOT`` (``annotations/person_keypoints_{train,val}2017.json``, images, detections)."""
    return coco_pose_dataset(cfg.get("name", "coco_kpt"), "real", resolve_root(cfg), cfg)


# -- inspectors ------------------------------------------------------------------------------
@register_inspector
def inspect_coco_json(path: Path) -> dict | None:
    if path.suffix != ".json" or not path.is_file():
        return None
    try:
        head = path.read_text(encoding="utf-8", errors="replace")[:4096]
    except OSError:
        return None
    if '"annotations"' not in head and '"images"' not in head and not ('"keypoints"' in head and head.lstrip().startswith("{")):
        return None
    data = _load_json(path)
    if not isinstance(data, dict) or "annotations" not in data:
        return None
    insts = parse_coco_keypoints(path, None, check_images=False)
    nk = [int((i["visible"] > 0).sum()) for i in insts]
    return {"format": "coco_person_keypoints", "images": len(data.get("images", [])),
            "annotations": len(data["annotations"]), "non_crowd_instances": len(insts), "keypoints": NUM_COCO_KPTS,
            "instances_with_keypoints": int(sum(n > 0 for n in nk)), "labeled_keypoints": int(sum(nk))}


@register_inspector
def inspect_coco_det(path: Path) -> dict | None:
    if path.suffix != ".json" or not path.is_file():
        return None
    head = path.read_text(encoding="utf-8", errors="replace")[:2048].lstrip()
    if not head.startswith("[") or '"score"' not in head or '"bbox"' not in head:
        return None
    dets = _load_json(path)
    for k, d in enumerate(dets):  # the loader's checks (the image sizes need the keypoint json, not given here)
        check_detection(d, path, k)
    scores = [float(d["score"]) for d in dets]
    return {"format": "coco_detections", "detections": len(dets), "images": len({d["image_id"] for d in dets}),
            "score_min": min(scores) if scores else None, "score_max": max(scores) if scores else None}
