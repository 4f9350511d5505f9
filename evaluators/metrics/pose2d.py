"""2D pose metrics: PCK (MMPose semantics), MPII PCKh, COCO OKS AP through pycocotools.

- :func:`pck` follows MMPose ``keypoint_pck_accuracy`` / ``_calc_distances`` /
  ``_distance_acc``: distances normalised per sample by ``normalize`` [N, 2]; a joint that is
  invisible (or whose sample has a zero normaliser) is excluded; a joint with no valid sample
  gets -1 and is left out of the mean.
- :func:`pckh` follows MMPose ``MpiiPCKAccuracy``: normaliser = head size (0.6 x head-box
  diagonal, see ``evaluators/datasets/pose2d/mpii.py``) on both axes; the mean excludes pelvis and
  thorax (joints 6, 7) and weights joints by their visible counts; PCKh@0.1 from the same
  tables.
- :func:`oks_ap` writes the results to a temporary file and runs ``COCOeval(iouType='keypoints')``.
- :func:`oks_nms` / :func:`oks_iou` are MMPose's ``post_processing/nms.py`` semantics and
  :func:`rescore` is CocoMetric's instance score (box score x mean keypoint score above 0.2).
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Sequence

import numpy as np

from evaluators.datasets.pose2d.transforms import COCO_SIGMAS

COCO_STATS = ["AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl"]


def _distances(pred: np.ndarray, gt: np.ndarray, mask: np.ndarray, normalize: np.ndarray) -> np.ndarray:
    """Normalised distances ``[K, N]`` (-1 where not counted)."""
    n, k = mask.shape
    mask = mask.astype(bool).copy()
    mask[np.where((normalize == 0).sum(1))[0], :] = False
    dist = np.full((n, k), -1.0)
    norm = np.tile(normalize[:, None, :], (1, k, 1))
    dist[mask] = np.linalg.norm(((pred - gt) / np.where(norm == 0, 1, norm))[mask], axis=-1)
    return dist.T


def _acc(d: np.ndarray, thr: float) -> float:
    valid = d != -1
    return float((d[valid] < thr).sum() / valid.sum()) if valid.sum() > 0 else -1.0


def pck(pred, gt, visible, normalize, threshold: float = 0.2) -> tuple[np.ndarray, float]:
    """PCK per joint ``[K]`` and mean over joints with data.

    pred, gt: ``[N, K, 2]``; visible: ``[N, K]`` (> 0 counted); normalize: ``[N, 2]`` (e.g. box
    w, h for PCK@0.2 as MMPose ``norm_item='bbox'``). Joints without any valid sample get -1.
    """
    pred, gt = np.asarray(pred, np.float64), np.asarray(gt, np.float64)
    visible, normalize = np.asarray(visible) > 0, np.asarray(normalize, np.float64)
    if pred.shape != gt.shape or pred.shape[:2] != visible.shape or normalize.shape != (pred.shape[0], 2):
        raise ValueError(f"pck: shapes pred {pred.shape}, gt {gt.shape}, visible {visible.shape}, normalize {normalize.shape}")
    per = np.array([_acc(d, threshold) for d in _distances(pred, gt, visible, normalize)])
    ok = per[per >= 0]
    return per, float(ok.mean()) if len(ok) else 0.0


# MPII summary groups (MmPose MpiiPCKAccuracy.compute_metrics), indices into MPII-16
MPII_GROUPS = {"head": [9], "shoulder": [12, 13], "elbow": [11, 14], "wrist": [10, 15], "hip": [2, 3],
               "knee": [1, 4], "ankle": [0, 5]}


def pckh(pred, gt, visible, head_size, thresholds: Sequence[float] = (0.5, 0.1)) -> dict[str, object]:
    """MPII PCKh (in %) per joint, per group and mean at each threshold.

    pred, gt: ``[N, 16, 2]``; visible: ``[N, 16]``; head_size: ``[N]`` (0.6 x head-box diagonal).
    Returns ``{"pckh_0.5": mean, "pckh_0.5_per_joint": [16], "pckh_0.5_head": ..., ...}``; the
    mean leaves out pelvis and thorax and weights joints by their visible counts.
    """
    head = np.asarray(head_size, np.float64).reshape(-1)
    vis = np.asarray(visible) > 0
    norm = np.tile(head[:, None], (1, 2))
    count = vis.sum(0).astype(np.float64)
    count[6:8] = 0
    ratio = count / max(count.sum(), 1)
    out: dict[str, object] = {}
    for thr in thresholds:
        per, _ = pck(pred, gt, vis, norm, thr)
        per = 100.0 * np.where(per < 0, 0.0, per)
        key = f"pckh_{thr:g}"
        out[key] = float((per * ratio).sum())
        out[key + "_per_joint"] = per.tolist()
        for g, idx in MPII_GROUPS.items():
            out[f"{key}_{g}"] = float(np.mean(per[idx]))
    return out


def oks_ap(results: list[dict], gt_json_path: str | os.PathLike, sigmas: np.ndarray | None = None,
           image_ids: Sequence[int] | None = None) -> dict[str, float]:
    """COCO keypoint AP/AR of ``results`` against ``gt_json_path`` via pycocotools COCOeval.

    results: ``[{"image_id", "category_id": 1, "keypoints": [x, y, s] * K, "score"}]``;
    ``image_ids`` restricts the evaluation to those images (default: every image of the json).
    Returns ``{AP, AP50, AP75, APm, APl, AR, AR50, AR75, ARm, ARl}`` (fractions in [0, 1]).
    """
    from pycocotools.coco import COCO  # lazy: pycocotools is needed only for COCO AP, not for PCK
    from pycocotools.cocoeval import COCOeval  # lazy: as above

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_json_path))
        if not results:
            return {k: 0.0 for k in COCO_STATS}
        clean = [{"image_id": int(r["image_id"]), "category_id": int(r.get("category_id", 1)),
                  "keypoints": [float(v) for v in np.asarray(r["keypoints"]).reshape(-1)], "score": float(r["score"])}
                 for r in results]
        dt = gt.loadRes(clean)  # loadRes takes a list (it adds area/bbox/id to these copies)
        ev = COCOeval(gt, dt, "keypoints")
        if sigmas is not None:
            ev.params.kpt_oks_sigmas = np.asarray(sigmas)
        ev.params.useSegm = None
        if image_ids is not None:
            ev.params.imgIds = sorted(int(i) for i in image_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {k: float(v) for k, v in zip(COCO_STATS, ev.stats)}


def oks_iou(g: np.ndarray, d: np.ndarray, a_g: float, a_d: np.ndarray, sigmas=None, vis_thr=None) -> np.ndarray:
    """OKS between one pose ``g`` [K*3] and poses ``d`` [M, K*3] (MMPose ``oks_iou``)."""
    sigmas = COCO_SIGMAS if sigmas is None else np.asarray(sigmas)
    var = (sigmas * 2) ** 2
    xg, yg, vg = g[0::3], g[1::3], g[2::3]
    out = np.zeros(len(d))
    for i, dd in enumerate(d):
        dx, dy, vd = dd[0::3] - xg, dd[1::3] - yg, dd[2::3]
        e = (dx ** 2 + dy ** 2) / var / ((a_g + a_d[i]) / 2 + np.spacing(1)) / 2
        if vis_thr is not None:
            e = e[(vg > vis_thr) & (vd > vis_thr)]
        out[i] = np.sum(np.exp(-e)) / e.shape[0] if e.shape[0] != 0 else 0.0
    return out


def oks_nms(poses: list[dict], thr: float = 0.9, sigmas=None, vis_thr=None) -> list[int]:
    """Indices of the poses kept by greedy OKS-NMS (``poses[i]`` has keypoints [K, 3], score, area)."""
    if not poses:
        return []
    scores = np.array([p["score"] for p in poses])
    kpts = np.array([np.asarray(p["keypoints"]).reshape(-1) for p in poses])
    areas = np.array([p["area"] for p in poses])
    order = scores.argsort()[::-1]
    keep = []
    while order.size > 0:
        i = order[0]
        keep.append(int(i))
        ious = oks_iou(kpts[i], kpts[order[1:]], areas[i], areas[order[1:]], sigmas, vis_thr)
        order = order[1:][ious <= thr]
    return keep


def rescore(box_score: float, kpt_scores: np.ndarray, kpt_thr: float = 0.2) -> float:
    """CocoMetric instance score: box score x mean of keypoint scores above ``kpt_thr``."""
    s = np.asarray(kpt_scores)
    valid = s[s > kpt_thr]
    return float(box_score * (valid.mean() if valid.size else 0.0))


def coco_results(preds: np.ndarray, instances: list[dict], nms_thr: float | None = 0.9,
                 kpt_thr: float = 0.2, sigmas=None) -> list[dict]:
    """Predictions ``[N, K, 3]`` for ``instances`` -> COCO result dicts (rescored, OKS-NMS per image).

    As MMPose ``CocoMetric``: the area used by NMS is the box area.
    """
    per_img: dict[int, list[dict]] = {}
    for p, inst in zip(np.asarray(preds), instances):
        box = np.asarray(inst["bbox"], np.float64)
        per_img.setdefault(int(inst["image_id"]), []).append(
            {"image_id": int(inst["image_id"]), "category_id": 1, "keypoints": p.astype(np.float64),
             "score": rescore(inst.get("bbox_score", 1.0), p[:, 2], kpt_thr), "area": float(box[2] * box[3])})
    out = []
    for _img, poses in sorted(per_img.items()):
        keep = oks_nms(poses, nms_thr, sigmas) if nms_thr is not None else range(len(poses))
        for i in keep:
            out.append({k: (v.reshape(-1).tolist() if k == "keypoints" else v) for k, v in poses[i].items() if k != "area"})
    return out
