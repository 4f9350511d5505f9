"""COCO AP is computed over every image of the GT file, as pycocotools / MMPose ``CocoMetric`` do.

A person the detector missed must count as a false negative and a detection on a person-free
image as a false positive; the reference is pycocotools' COCOeval run directly (default
``imgIds`` = all images) on the same result dicts.
"""

from __future__ import annotations

import contextlib
import io
import json
from types import SimpleNamespace

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from evaluators.protocols.pose import _accuracy, coco_eval_image_ids

K = 17


def _pose(x0: float, y0: float) -> np.ndarray:
    rng = np.random.default_rng(int(x0))
    return np.stack([x0 + rng.uniform(0, 60, K), y0 + rng.uniform(0, 120, K)], 1)


def _gt_file(tmp_path):
    p1, p3 = _pose(10, 10), _pose(200, 40)
    anns = []
    for aid, (img, p) in enumerate([(1, p1), (3, p3)], start=1):
        x, y = p.min(0)
        w, h = p.max(0) - p.min(0)
        kp = np.concatenate([p, np.full((K, 1), 2.0)], 1).reshape(-1).tolist()
        anns.append({"id": aid, "image_id": img, "category_id": 1, "iscrowd": 0, "num_keypoints": K,
                     "keypoints": kp, "bbox": [float(x), float(y), float(w), float(h)], "area": float(w * h)})
    gt = {"images": [{"id": i, "file_name": f"{i}.jpg", "width": 640, "height": 480} for i in (1, 2, 3)],
          "annotations": anns, "categories": [{"id": 1, "name": "person", "keypoints": [str(k) for k in range(K)],
                                               "skeleton": []}]}
    path = tmp_path / "person_keypoints_val.json"
    path.write_text(json.dumps(gt))
    return path, p1


def _pycocotools_ap(gt_path, results) -> float:
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        ev = COCOeval(gt, gt.loadRes(results), "keypoints")  # imgIds left at its default: every image
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0])


def test_coco_ap_counts_person_free_false_positive_and_missed_person(tmp_path):
    gt_path, p1 = _gt_file(tmp_path)
    # detector boxes: a hit on image 1, a confident false positive on the person-free image 2,
    # nothing on image 3 (a missed person)
    fp = _pose(300, 200)
    insts = [{"image_id": 1, "bbox": [10, 10, 60, 120], "bbox_score": 1.0},
             {"image_id": 2, "bbox": [300, 200, 60, 120], "bbox_score": 1.0}]
    preds = np.stack([np.concatenate([p1, np.full((K, 1), 0.8)], 1), np.concatenate([fp, np.full((K, 1), 0.9)], 1)])
    data = SimpleNamespace(fmt="coco", ann_file=str(gt_path), name="tiny")
    cfg = {"nms_thr": 0.9, "kpt_score_thr": 0.2, "pck_thr": 0.2}
    metrics, extra = _accuracy(data, None, insts, preds, cfg, "det")
    ref = [{"image_id": i["image_id"], "category_id": 1, "keypoints": p.reshape(-1).tolist(),
            "score": float(p[:, 2].mean())} for i, p in zip(insts, preds)]
    expected = 100.0 * _pycocotools_ap(gt_path, ref)
    assert metrics["ap"] == pytest.approx(expected, abs=1e-9)
    assert extra["eval_images"] == "all images of the annotation file"
    # the scenario matters: dropping image 3 (no instance) would hide the missed person
    assert coco_eval_image_ids(insts, truncated=False) is None
    restricted, _ = _accuracy(data, None, insts, preds, cfg, "det", truncated=True)
    assert restricted["ap"] > metrics["ap"] + 1.0
