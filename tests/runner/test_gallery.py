"""The gallery exporter on fabricated run folders: the pose overlays and the training curves it
publishes, the records it links, and the curve thinning (no trained method needed)."""

from __future__ import annotations

import csv
import json

import numpy as np
from PIL import Image

from evaluators.runner.gallery import POSE_PX, export_gallery
from leaderboards.curves import read_published, thin


def _record(method: str, protocol: str, variant: str, workdir: str) -> dict:
    return {"method": method, "dataset": "synth_coco", "protocol": protocol, "variant": variant, "seed": 0,
            "started": "2026-12-06T03:05:29Z", "git": {"commit": "abc123"},
            "provenance": {"weights": {"workdir": workdir}}, "config": {}}


def _scalars(path, steps: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["step", "tag", "value"])
        for s in range(1, steps + 1):
            w.writerow([s, "train/loss", 1.0 / s])
            w.writerow([s, "train/lr", 1e-3])  # not a loss: not published
        w.writerow([steps, "val/ap", 0.5])


def test_thin_keeps_the_ends_and_spaces_the_rest_evenly():
    rows = [(s, "train/loss", float(s)) for s in range(1, 1001)]
    steps = [r[0] for r in thin(rows, 11)]
    assert len(steps) == 11 and steps[0] == 1 and steps[-1] == 1000
    gaps = np.diff(steps)
    assert gaps.min() >= 99 and gaps.max() <= 101  # 999 steps in 10 gaps: 99.9 each, rounded
    assert thin(rows[:5], 11) == rows[:5]


def test_pose_overlays_and_curves_are_published_with_their_record(tmp_path):
    run = tmp_path / "runs" / "work" / "pose" / "run0"
    img = (np.random.default_rng(0).random((600, 400, 3)) * 255).astype(np.uint8)
    (run / "overlays" / "synth_coco").mkdir(parents=True)
    for i in range(4):
        Image.fromarray(img).save(run / "overlays" / "synth_coco" / f"00000{i}_pred.png")
    _scalars(run / "pose_train" / "scalars.csv", 500)
    rec = _record("diffusionpose", "coco_ap", "gt_boxes", "runs/work/pose/run0")
    other = _record("diffusionpose", "coco_ap", "det_boxes", "runs/work/pose/run0")
    out = tmp_path / "lb"
    manifest = json.loads(export_gallery([rec, other], out, root=tmp_path, n=3).read_text(encoding="utf-8"))
    assert manifest["captions"] == []  # no text-to-motion record: no caption rows
    (pose,) = manifest["pose"]
    assert pose["record"] == "diffusionpose_synth_coco_coco_ap_gt_boxes_20261206T030529Z_s0.json"
    assert pose["commit"] == "abc123" and len(pose["images"]) == 3
    assert (pose["dataset"], pose["protocol"], pose["variant"]) == ("synth_coco", "coco_ap", "gt_boxes")
    for rel in pose["images"]:
        w, h = Image.open(out / rel).size
        assert max(w, h) == POSE_PX and (w, h) == (round(POSE_PX * 400 / 600), POSE_PX)
    assert manifest["curves"] == {"diffusionpose": "curves/diffusionpose.png"}
    published = read_published(out / "curves" / "diffusionpose.csv")
    assert set(published["pose_train"]) == {"train/loss", "val/ap"}
    steps, values = published["pose_train"]["train/loss"]
    assert steps[0] == 1 and steps[-1] == 500 and len(steps) <= 150
    assert values == [float(f"{1.0 / s:.6g}") for s in steps]
    assert (out / "curves" / "diffusionpose.png").read_bytes()[:4] == b"\x89PNG"


def test_a_second_export_leaves_no_stale_cell(tmp_path):
    out = tmp_path / "lb"
    (out / "gallery").mkdir(parents=True)
    (out / "gallery" / "gone_0.gif").write_bytes(b"GIF89a")
    export_gallery([], out, root=tmp_path)
    assert not (out / "gallery" / "gone_0.gif").exists()
    assert json.loads((out / "gallery" / "gallery.json").read_text()) == {"captions": [], "curves": {}, "pose": []}
