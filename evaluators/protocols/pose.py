"""Top-down 2D pose protocol: COCO OKS AP (detection and GT boxes), MPII PCKh, PCK@0.2, step sweep.

Registered as ``pose`` and, with their own configs, ``coco_ap`` / ``mpii_pckh``
(``configs/protocol/{coco_ap,mpii_pckh}.yaml``). Conventions (MMPose ``CocoMetric`` /
``MpiiPCKAccuracy``, HRNet test settings; ``shared/reference/diffusionpose.md``):

- COCO val: one result per box source — ``det`` (the person detector's boxes, the main
  table) and ``gt`` — with the flip test on, instance score = box score x mean keypoint score
  above 0.2, OKS-NMS at 0.9 per image, then pycocotools COCOeval (AP in percent) over EVERY
  image of the annotation file, as MMPose / pycocotools do (``coco_eval_image_ids``);
- MPII val: GT centre/scale boxes, flip test, PCKh@0.5 and @0.1 per joint group and mean;
- every dataset also gets PCK@0.2 (box-normalised, MMPose ``PCKAccuracy``) on GT boxes;
- ``steps_sweep: [1, 2, 5, 10]``: one result per reverse-step count (variant ``steps=N``) with
  the accuracy metric and the inference time per instance, for methods whose ``predict``
  takes ``steps`` (DiffusionPose);
- ``overlays``: skeleton-overlay PNGs of the first images (and of the real COCO / MPII
  samples when ``real_samples`` points at them) under ``<workdir>/overlays``.

Evaluation is sharded over ranks (``evaluators.core.distributed``); each instance counts once.

:func:`checkpoint_scorer` is the validation score a pose method's ``fit`` uses to keep its best
checkpoint (the method itself reads no image and computes no metric).
"""

from __future__ import annotations

import inspect
import io
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from evaluators.core import distributed as D
from evaluators.core.io import atomic_write_bytes
from evaluators.datasets.pose2d.coco import parse_coco_keypoints, read_image
from evaluators.datasets.pose2d.mpii import parse_mpii
from evaluators.metrics.pose2d import coco_results, oks_ap, pck, pckh
from evaluators.protocols.registry import ProtocolResult, RunContext, complete_config, register_protocol

log = logging.getLogger(__name__)
def predict_instances(method, instances: list[dict], cfg: dict, steps: int | None = None) -> tuple[np.ndarray, float]:
    """Predictions ``[N, K, 3]`` for instance dicts (sharded over ranks, gathered) and wall seconds."""
    kwargs = {}
    params = inspect.signature(method.predict).parameters
    if "flip" in params:
        kwargs["flip"] = bool(cfg["flip_test"])
    if steps is not None and "steps" in params:
        kwargs["steps"] = steps
    idx = D.shard_indices(len(instances))
    bs = int(cfg["batch_size"])
    outs = []
    wall = 0.0  # time inside predict only (crop + network + decoding), not image reading
    for i in range(0, len(idx), bs):
        chunk = [instances[j] for j in idx[i:i + bs]]
        imgs = [read_image(c["image_path"]) for c in chunk]
        boxes = np.stack([np.asarray(c["bbox"], np.float64) for c in chunk])
        t0 = time.perf_counter()
        out = method.predict(imgs, boxes, **kwargs)
        if hasattr(out, "is_cuda") and out.is_cuda:
            torch.cuda.synchronize()
        wall += time.perf_counter() - t0
        outs.append(np.asarray(out.cpu() if hasattr(out, "cpu") else out, dtype=np.float64))
    k = getattr(method, "num_keypoints", 17)
    local = np.concatenate(outs) if outs else np.zeros((0, k, 3))
    preds = D.gather_concat(local)
    order = D.gather_concat(np.asarray(idx, dtype=np.int64))
    full = np.zeros((len(instances),) + tuple(np.asarray(preds).shape[1:]))
    full[np.asarray(order)] = np.asarray(preds)
    return full, wall


def _pck_metrics(preds: np.ndarray, instances: list[dict], thr: float) -> dict[str, float]:
    gt = np.stack([i["keypoints"] for i in instances])
    vis = np.stack([i["visible"] for i in instances])
    norm = np.stack([np.asarray(i["bbox"], np.float64)[2:4] for i in instances])
    _per, mean = pck(preds[..., :2], gt, vis, norm, thr)
    return {f"pck_{thr:g}": 100.0 * mean}


def coco_eval_image_ids(instances: list[dict], truncated: bool) -> list[int] | None:
    """The ``imgIds`` COCOeval runs over: ``None`` = every image of the GT json.

    MMPose ``CocoMetric`` and pycocotools evaluate every image of the annotation file, so a
    person the detector missed (an image with GT but no detection) counts as a false
    negative and a detection on a person-free image as a false positive. Only when the run
    was cut to ``max_instances`` (a debugging subsample) is the evaluation restricted to the
    images of the evaluated instances, so the subsample is not scored against the whole set.
    """
    return sorted({int(i["image_id"]) for i in instances}) if truncated else None


def coco_ap_metrics(results: list[dict], ann_file, image_ids: list[int] | None = None) -> tuple[dict, dict]:
    """COCO keypoint results -> ``(metrics in percent, extra)`` via pycocotools (``oks_ap``); also
    what a submitted results JSON is scored with (``evaluators/score.py``)."""
    stats = oks_ap(results, ann_file, image_ids=image_ids)
    extra = {"eval_images": "all images of the annotation file" if image_ids is None else len(image_ids),
             # COCOeval reports -1 when an area range has no instance: leave those out (listed here)
             "undefined_metrics": [k.lower() for k, v in stats.items() if v < 0],
             "ap_unit": "percent (COCOeval stats x 100)"}
    return {k.lower(): 100.0 * v for k, v in stats.items() if v >= 0}, extra


def _accuracy(data, method, instances, preds, cfg, source: str, truncated: bool = False) -> tuple[dict, dict]:
    """Metrics of ``preds`` for the dataset format (COCO AP or MPII PCKh) plus PCK on GT boxes."""
    metrics: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    if data.fmt == "coco":
        res = coco_results(preds, instances, cfg["nms_thr"], cfg["kpt_score_thr"])
        ids = coco_eval_image_ids(instances, truncated)
        m, e = coco_ap_metrics(res, data.ann_file, ids)
        metrics.update(m)
        extra.update(e)
    elif all(i.get("head_size", 0) > 0 for i in instances):
        gt = np.stack([i["keypoints"] for i in instances])
        vis = np.stack([i["visible"] for i in instances])
        out = pckh(preds[..., :2], gt, vis, np.array([i["head_size"] for i in instances]))
        extra.update({k: v for k, v in out.items() if k.endswith("per_joint")})
        metrics.update({k: v for k, v in out.items() if not k.endswith("per_joint")})
    else:
        log.warning("%s: no head boxes (mpii_gt_val.mat) -> PCKh not computed, PCK@%g only", data.name, cfg["pck_thr"])
    if source == "gt":
        labeled = [j for j, i in enumerate(instances) if (np.asarray(i["visible"]) > 0).any()]
        if labeled:
            metrics.update(_pck_metrics(preds[labeled], [instances[j] for j in labeled], cfg["pck_thr"]))
    return metrics, extra


@register_protocol("pose", needs="PoseEstimator", tasks="pose2d")
def run_pose(method, data, cfg: dict, ctx: RunContext) -> list[ProtocolResult]:
    """Top-down pose evaluation: COCO AP (det + GT boxes) or MPII PCKh, PCK@0.2, optional step sweep."""
    # the YAML of the protocol it runs as (coco_ap / mpii_pckh) holds every default; a partial config
    # (tests) is completed from it
    name = str((cfg or {}).get("name") or ("mpii_pckh" if data.fmt == "mpii" else "coco_ap"))
    cfg = complete_config(name, cfg)
    split = cfg["split"] or data.eval_split
    sources = [s for s in cfg["boxes"] if data.fmt == "coco" or s == "gt"] or ["gt"]
    results = []
    first_preds = None
    for source in sources:
        insts = data.instances("det" if source == "det" else split)
        if source == "det" and not insts:
            log.warning("%s: no detection file -> skipping detection-box evaluation", data.name)
            continue
        expected = len(insts)
        if cfg["max_instances"]:
            insts = insts[: int(cfg["max_instances"])]
        preds, wall = predict_instances(method, insts, cfg, cfg["steps"])
        metrics, extra = _accuracy(data, method, insts, preds, cfg, source, truncated=len(insts) < expected)
        extra.update({"boxes": source, "flip_test": cfg["flip_test"], "steps": cfg["steps"],
                      "infer_s_per_instance": wall / max(len(insts), 1)})
        results.append(ProtocolResult(metrics=metrics, split=split, variant=f"{source}_boxes",
                                      n_samples={"expected": expected, "evaluated": len(insts)}, extra=extra))
        if first_preds is None:
            first_preds = (insts, preds)
    for steps in cfg["steps_sweep"] or []:
        if "steps" not in inspect.signature(method.predict).parameters:
            log.info("method has no sampler steps; skipping the step sweep")
            break
        source = "det" if cfg["sweep_boxes"] == "det" and data.fmt == "coco" and data.det_instances else "gt"
        insts = data.instances("det" if source == "det" else split)
        expected = len(insts)
        if cfg["max_instances"]:
            insts = insts[: int(cfg["max_instances"])]
        preds, wall = predict_instances(method, insts, cfg, int(steps))
        metrics, extra = _accuracy(data, method, insts, preds, cfg, source, truncated=len(insts) < expected)
        metrics["infer_s_per_instance"] = wall / max(len(insts), 1)
        extra.update({"steps": int(steps), "boxes": source, "flip_test": cfg["flip_test"]})
        results.append(ProtocolResult(metrics=metrics, split=split, variant=f"steps={int(steps)}",
                                      n_samples={"expected": expected, "evaluated": len(insts)}, extra=extra))
    if ctx.rank == 0 and cfg["overlays"] and first_preds is not None:
        out_dir = Path(ctx.workdir) / "overlays" / data.name
        written = draw_overlays(first_preds[0], first_preds[1], method.skeleton, out_dir, int(cfg["overlays"]))
        real = _real_samples_dir(cfg["real_samples"])
        if real is not None:
            written += draw_real_samples(method, real, out_dir / "real")
        for r in results:
            r.extra["overlays"] = [str(p) for p in written]
    return results


register_protocol("coco_ap", needs="PoseEstimator", tasks="pose2d")(run_pose)
register_protocol("mpii_pckh", needs="PoseEstimator", tasks="pose2d")(run_pose)


def checkpoint_scorer(data) -> Callable[[Callable[..., Any]], tuple[str, float]]:
    """The best-checkpoint validation of a pose method's training, ``method.fit(data, validate=...)``.

    Returns ``score(predict) -> (metric name, value)``, higher is better (MMPose ``CheckpointHook``
    ``save_best``, ``rule='greater'``), where ``predict(images, boxes) -> [B, K, 3]`` runs with the
    method's own settings (its flip test and step count) on ``data.eval_split``, every instance on
    every rank: COCO ``coco/AP`` (percent; detection boxes when the dataset has them, as MMPose's
    val_dataloader ``bbox_file``; COCOeval over every image of the annotation file), MPII ``PCKh``
    (PCKh@0.5), or ``PCK`` (PCK@0.2 of the box size, percent) when there are no head boxes.
    """
    def score(predict: Callable[..., Any]) -> tuple[str, float]:
        det = data.fmt == "coco" and bool(getattr(data, "det_instances", None))
        insts = data.instances("det" if det else getattr(data, "eval_split", "val"))
        preds = []
        for i in range(0, len(insts), 64):
            chunk = insts[i:i + 64]
            out = predict([read_image(c["image_path"]) for c in chunk], np.stack([c["bbox"] for c in chunk]))
            preds.append(np.asarray(out, dtype=np.float64))
        preds = np.concatenate(preds) if preds else np.zeros((0, data.num_keypoints, 3))
        if data.fmt == "coco":
            return "coco/AP", 100.0 * oks_ap(coco_results(preds, insts), data.ann_file)["AP"]
        gt = np.stack([i["keypoints"] for i in insts])
        vis = np.stack([i["visible"] for i in insts])
        if all(i.get("head_size", 0) > 0 for i in insts):
            return "PCKh", float(pckh(preds[..., :2], gt, vis, np.array([i["head_size"] for i in insts]))["pckh_0.5"])
        norm = np.stack([np.asarray(i["bbox"], np.float64)[2:4] for i in insts])
        return "PCK", 100.0 * pck(preds[..., :2], gt, vis, norm, 0.2)[1]

    return score


def _real_samples_dir(opt) -> Path | None:
    """``auto``: ``$MOTIONREPRO_SHARED_DATA`` or ``../shared/data`` next to the checkout, if present."""
    if not opt:
        return None
    if opt != "auto":
        return Path(opt)
    cand = Path(os.environ.get("MOTIONREPRO_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
    return cand if cand.exists() else None


# -- skeleton overlays --------------------------------------------------------------------------
def draw_skeleton(img: np.ndarray, poses: np.ndarray, skeleton, score_thr: float = 0.0) -> np.ndarray:
    """Draw poses ``[P, K, 3]`` (x, y, score) as limbs and joints on a copy of ``img``."""
    im = Image.fromarray(np.asarray(img).astype(np.uint8))
    d = ImageDraw.Draw(im)
    r = max(2, int(min(im.size) / 150))
    for p in np.asarray(poses):
        for a, b in skeleton:
            if p[a, 2] > score_thr and p[b, 2] > score_thr:
                d.line([tuple(p[a, :2]), tuple(p[b, :2])], fill=(0, 255, 0), width=r)
        for x, y, s in p:
            if s > score_thr:
                d.ellipse([x - r, y - r, x + r, y + r], fill=(255, 40, 40))
    return np.asarray(im)


def _save_png(arr: np.ndarray, path: Path) -> Path:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
    return path


def draw_overlays(instances: list[dict], preds: np.ndarray, skeleton, out_dir: Path, n_images: int) -> list[Path]:
    """Skeleton-overlay PNGs of the first ``n_images`` images (all their instances)."""
    by_img: dict[str, list[int]] = {}
    for j, inst in enumerate(instances):
        by_img.setdefault(inst["image_path"], []).append(j)
    written = []
    for path, idx in list(by_img.items())[:n_images]:
        arr = draw_skeleton(read_image(path), preds[idx], skeleton, 0.1)
        written.append(_save_png(arr, out_dir / f"{Path(path).stem}_pred.png"))
    return written


def draw_real_samples(method, shared_dir: Path, out_dir: Path) -> list[Path]:
    """Predict and draw on the real COCO (GT boxes of test_coco.json) or MPII samples matching the method's format."""
    fmt = getattr(method, "fmt", "coco")
    if fmt == "coco" and (shared_dir / "coco" / "test_coco.json").exists():
        insts = parse_coco_keypoints(shared_dir / "coco" / "test_coco.json", shared_dir / "coco")
    elif fmt == "mpii" and (shared_dir / "mpii" / "test_mpii.json").exists():
        insts = parse_mpii(shared_dir / "mpii" / "test_mpii.json", shared_dir / "mpii")
    else:
        log.warning("no real %s samples under %s", fmt, shared_dir)
        return []
    preds, _ = predict_instances(method, insts, {"flip_test": True, "batch_size": 16})
    return draw_overlays(insts, preds, method.skeleton, out_dir, 10)
