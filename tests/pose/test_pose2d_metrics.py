"""pck / pckh hand cases, OKS-NMS hand cases, oks_ap == pycocotools run directly on the real COCO samples."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from evaluators.datasets.pose2d.coco import parse_coco_keypoints
from evaluators.metrics.pose2d import coco_results, oks_ap, oks_nms, pck, pckh, rescore
from tests.conftest import need_shared


def test_pck_hand_case_invisible_and_zero_normaliser_excluded():
    gt = np.zeros((2, 3, 2))
    pred = np.array([[[1, 0], [3, 0], [0, 0]], [[50, 50], [50, 50], [50, 50]]], float)
    vis = np.array([[1, 1, 0], [1, 1, 1]])
    norm = np.array([[10, 10], [0, 10]], float)  # sample 1 has a zero normaliser -> ignored entirely
    per, mean = pck(pred, gt, vis, norm, 0.2)
    np.testing.assert_allclose(per, [1.0, 0.0, -1.0])
    assert mean == pytest.approx(0.5)


def test_pck_uses_per_axis_normalisation():
    gt = np.zeros((1, 1, 2))
    pred = np.array([[[3.0, 4.0]]])
    # normalised offset (3/10, 4/40) -> distance sqrt(0.09 + 0.01) = 0.316
    assert pck(pred, gt, np.ones((1, 1)), np.array([[10.0, 40.0]]), 0.32)[1] == 1.0
    assert pck(pred, gt, np.ones((1, 1)), np.array([[10.0, 40.0]]), 0.31)[1] == 0.0


def test_pck_rejects_bad_shapes():
    with pytest.raises(ValueError, match="shapes"):
        pck(np.zeros((2, 3, 2)), np.zeros((2, 4, 2)), np.ones((2, 3)), np.ones((2, 2)), 0.2)


def test_pckh_hand_case():
    gt = np.zeros((2, 16, 2))
    pred = np.zeros((2, 16, 2))
    pred[0, :, 0] = 4.0   # head size 10 -> 0.4
    pred[0, 9, 0] = 6.0   # head top 0.6 -> wrong at 0.5
    pred[1, :, 0] = 4.0   # head size 20 -> 0.2
    out = pckh(pred, gt, np.ones((2, 16)), np.array([10.0, 20.0]))
    per = np.array(out["pckh_0.5_per_joint"])
    assert per[9] == pytest.approx(50.0) and np.all(np.delete(per, 9) == 100.0)
    # mean over the 14 joints other than pelvis/thorax, equal visible counts
    assert out["pckh_0.5"] == pytest.approx((13 * 100 + 50) / 14)
    assert out["pckh_0.5_head"] == pytest.approx(50.0) and out["pckh_0.5_shoulder"] == 100.0
    assert out["pckh_0.1"] == 0.0


def test_oks_nms_and_rescore_hand_cases():
    k = np.zeros((17, 3))
    k[:, 0], k[:, 1], k[:, 2] = np.arange(17) * 5.0, 10.0, 1.0
    far = k.copy()
    far[:, 0] += 500
    poses = [{"keypoints": k, "score": 0.8, "area": 1e4}, {"keypoints": k, "score": 0.9, "area": 1e4},
             {"keypoints": far, "score": 0.5, "area": 1e4}]
    assert oks_nms(poses, 0.9) == [1, 2]
    assert rescore(0.5, np.array([0.1, 0.4, 0.8])) == pytest.approx(0.5 * 0.6)


def _direct_cocoeval(gt_path, results):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        dt = gt.loadRes([dict(r) for r in results])
        ev = COCOeval(gt, dt, "keypoints")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


def _gt_results(gt_path, noise: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    anns = json.loads(gt_path.read_text())["annotations"]
    out = []
    for a in anns:
        if a["num_keypoints"] == 0:  # unlabeled people are ignored by COCOeval; a guess for them is a FP
            continue
        kp = np.asarray(a["keypoints"], float).reshape(17, 3)
        kp[:, :2] += rng.normal(0, noise, size=(17, 2)) * (kp[:, 2:] > 0)
        kp[:, 2] = 1.0
        out.append({"image_id": a["image_id"], "category_id": 1, "keypoints": kp.reshape(-1).tolist(),
                    "score": float(rng.uniform(0.5, 1.0))})
    return out


@pytest.mark.parametrize("noise", [0.0, 4.0, 15.0])
def test_oks_ap_equals_pycocotools_on_real_coco_samples(noise):
    gt_path = need_shared("coco", "test_coco.json")
    results = _gt_results(gt_path, noise)
    ours = oks_ap(results, gt_path)
    direct = _direct_cocoeval(gt_path, results)
    np.testing.assert_allclose([ours[k] for k in ["AP", "AP50", "AP75", "APm", "APl", "AR"]], direct[:6])
    if noise == 0.0:
        assert ours["AP"] == pytest.approx(1.0)  # the GT itself is a perfect prediction
    else:
        assert ours["AP"] < 1.0


def test_coco_results_keep_gt_perfect_ap_on_real_samples():
    """Rescoring + OKS-NMS of GT-box predictions equal to the GT keep AP at 1 (no true pose suppressed)."""
    gt_path = need_shared("coco", "test_coco.json")
    insts = parse_coco_keypoints(gt_path, need_shared("coco"))
    preds = np.stack([np.concatenate([i["keypoints"], (i["visible"][:, None] > 0) * 1.0], 1) for i in insts])
    assert oks_ap(coco_results(preds, insts), gt_path)["AP"] == pytest.approx(1.0)
