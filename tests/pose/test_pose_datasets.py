"""COCO / MPII loaders on the real samples, bad input -> DatasetError, synth round trip and determinism."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from evaluators.datasets import DatasetError, inspect_path, load_dataset
from evaluators.datasets.pose2d.coco import parse_coco_detections, parse_coco_keypoints
from evaluators.datasets.pose2d.mpii import parse_mpii
from evaluators.datasets.pose2d.synth_coco import MARKER_COLOURS, generate
from tests.conftest import need_shared


def _real_coco_cfg():
    root = need_shared("coco")
    return {"name": "coco_kpt", "root": str(root), "ann_files": {"val": "test_coco.json"},
            "image_dirs": {"val": "."}, "det_file": "test_coco_det_AP_H_56.json"}


def test_real_coco_samples_parse():
    ds = load_dataset(_real_coco_cfg())
    raw = json.loads((need_shared("coco") / "test_coco.json").read_text())
    insts = ds.instances("val")
    assert len(insts) == sum(1 for a in raw["annotations"] if not a["iscrowd"])
    a0 = raw["annotations"][0]
    np.testing.assert_allclose(insts[0]["keypoints"], np.asarray(a0["keypoints"]).reshape(17, 3)[:, :2])
    assert ds.num_keypoints == 17 and len(ds.flip_pairs) == 8
    dets = json.loads((need_shared("coco") / "test_coco_det_AP_H_56.json").read_text())
    assert len(ds.instances("det")) == len(dets)
    sample = ds.top_down_dataset("val")[0]
    assert sample["img"].shape == (3, 256, 192) and sample["target"].shape == (17, 64, 48)


def test_real_mpii_samples_parse_with_mmpose_centre_convention():
    root = need_shared("mpii")
    raw = json.loads((root / "test_mpii.json").read_text())
    insts = parse_mpii(root / "test_mpii.json", root)
    assert len(insts) == len(raw)
    c = np.asarray(raw[0]["center"], float)
    np.testing.assert_allclose(insts[0]["center"], [c[0] - 1, c[1] + 15 * raw[0]["scale"] - 1], rtol=1e-6)
    np.testing.assert_allclose(insts[0]["scale"], [raw[0]["scale"] * 200] * 2, rtol=1e-6)


def test_inspect_real_files():
    assert inspect_path(need_shared("coco", "test_coco.json"))["format"] == "coco_person_keypoints"
    assert inspect_path(need_shared("coco", "test_coco_det_AP_H_56.json"))["format"] == "coco_detections"
    assert inspect_path(need_shared("mpii", "test_mpii.json"))["annotations"] == 5


def _write(tmp_path, name, obj):
    p = tmp_path / name
    p.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return p


def test_bad_coco_inputs_name_the_file(tmp_path):
    raw = json.loads(need_shared("coco", "test_coco.json").read_text())
    bad = json.loads(json.dumps(raw))
    bad["annotations"][0]["keypoints"] = bad["annotations"][0]["keypoints"][:48]  # 16 keypoints
    p = _write(tmp_path, "bad_kpts.json", bad)
    with pytest.raises(DatasetError, match=r"bad_kpts\.json.*16 keypoints, expected 17"):
        parse_coco_keypoints(p, None)
    nan = json.loads(json.dumps(raw))
    nan["annotations"][1]["keypoints"][4] = float("nan")
    with pytest.raises(DatasetError, match=r"nan\.json.*NaN/inf"):
        parse_coco_keypoints(_write(tmp_path, "nan.json", nan), None)
    p = _write(tmp_path, "trunc.json", json.dumps(raw)[:500])
    with pytest.raises(DatasetError, match=r"trunc\.json.*malformed JSON"):
        parse_coco_keypoints(p, None)
    p = _write(tmp_path, "ok.json", raw)
    with pytest.raises(DatasetError, match=r"000000000785\.jpg.*missing"):
        parse_coco_keypoints(p, tmp_path)  # no images there
    with pytest.raises(DatasetError, match=r"dets\.json.*lacks image_id/bbox/score"):
        parse_coco_detections(_write(tmp_path, "dets.json", [{"bbox": [1, 2, 3, 4]}]), p, None)
    with pytest.raises(DatasetError, match="not found"):
        load_dataset({"name": "coco_kpt", "root": str(tmp_path / "nope"), "env_var": "COCO_ROOT_UNSET_X"})


def test_bad_mpii_inputs_name_the_file(tmp_path):
    raw = json.loads(need_shared("mpii", "test_mpii.json").read_text())
    raw[0]["joints"] = raw[0]["joints"][:15]
    p = _write(tmp_path, "mpii_bad.json", raw)
    with pytest.raises(DatasetError, match=r"mpii_bad\.json.*\(16, 2\)"):
        parse_mpii(p, None)
    with pytest.raises(DatasetError, match=r"gt\.mat"):
        parse_mpii(need_shared("mpii", "test_mpii.json"), None, headbox_file=_write(tmp_path, "gt.mat", "x"))


def test_synth_is_byte_identical_per_seed_and_differs_across_seeds(tmp_path):
    kw = {"n_train": 3, "n_val": 2, "image_size": (96, 96)}
    generate(tmp_path / "a", seed=3, **kw)
    generate(tmp_path / "b", seed=3, **kw)
    generate(tmp_path / "c", seed=4, **kw)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) == 5 + 6  # 5 PNGs, 2 COCO + 2 MPII jsons, detections, head boxes
    for f in files:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    assert (tmp_path / "a" / "val2017").exists()
    a = (tmp_path / "a" / "annotations" / "person_keypoints_val2017.json").read_bytes()
    assert a != (tmp_path / "c" / "annotations" / "person_keypoints_val2017.json").read_bytes()


def test_synth_round_trip_through_real_loaders(tmp_path, monkeypatch):
    monkeypatch.setenv("MOTIONREPRO_CACHE", str(tmp_path / "cache"))
    cfg = {"seed": 1, "n_train": 6, "n_val": 4, "image_size": [128, 128]}
    coco = load_dataset({"name": "synth_coco", **cfg})
    raw = json.loads(coco.ann_file.read_text())
    assert coco.source == "synthetic" and len(coco.instances("val")) == len(raw["annotations"])
    for inst, ann in zip(coco.instances("val"), raw["annotations"]):
        kp = np.asarray(ann["keypoints"]).reshape(17, 3)
        np.testing.assert_allclose(inst["keypoints"], kp[:, :2], atol=1e-4)
        assert set(np.unique(kp[:, 2])) <= {0, 1, 2}
    assert coco.det_file is not None and len(coco.instances("det")) > 0
    mpii = load_dataset({"name": "synth_mpii", **cfg})
    assert mpii.num_keypoints == 16 and len(mpii.instances("val")) == len(raw["annotations"])
    assert all(i["head_size"] > 0 for i in mpii.instances("val"))
    # MPII centre/scale (after MMPose's conversion) describe the same box as the COCO annotation
    for m, ann in zip(mpii.instances("val"), raw["annotations"]):
        box = np.asarray(ann["bbox"])
        np.testing.assert_allclose(m["center"], box[:2] + box[2:] / 2, atol=0.02)
        np.testing.assert_allclose(m["scale"][1], box[3], atol=0.01)
    # the cache is reused, and a removed cache is regenerated identically
    again = load_dataset({"name": "synth_coco", **cfg})
    assert again.ann_file == coco.ann_file
    before = coco.ann_file.read_bytes()
    shutil.rmtree(tmp_path / "cache")
    assert load_dataset({"name": "synth_coco", **cfg}).ann_file.read_bytes() == before
    s = coco.top_down_dataset("train", (48, 64), (12, 16), 1.0, train=True)[0]
    assert s["img"].shape == (3, 64, 48) and s["target"].shape == (17, 16, 12) and s["keypoints_hm"].shape == (17, 2)


def test_synth_markers_put_each_keypoint_colour_on_its_pixel(tmp_path):
    """``style: markers`` (the smoke set): what a pose estimator must find is in the pixels: the
    pixel under a labelled keypoint has that joint's colour (a later disc may cover a few), the
    background is plain, and left and right joints differ in colour."""
    generate(tmp_path / "m", seed=2, n_train=1, n_val=8, image_size=(128, 128), max_people=1, style="markers")
    raw = json.loads((tmp_path / "m" / "annotations" / "person_keypoints_val2017.json").read_text())
    files = {im["id"]: im["file_name"] for im in raw["images"]}
    hits = total = 0
    for ann in raw["annotations"]:
        img = np.asarray(Image.open(tmp_path / "m" / "val2017" / files[ann["image_id"]]).convert("RGB"))
        kp = np.asarray(ann["keypoints"]).reshape(17, 3)
        for k, (x, y, v) in enumerate(kp):
            if v == 2:
                total += 1
                hits += tuple(img[int(round(y)), int(round(x))]) == MARKER_COLOURS[k]
        _, counts = np.unique(img.reshape(-1, 3), axis=0, return_counts=True)
        assert counts.max() > 0.5 * img.shape[0] * img.shape[1]  # one plain background colour
    assert total > 80 and hits / total > 0.9, (hits, total)
    assert len(set(MARKER_COLOURS)) == 17
    with pytest.raises(ValueError, match="style"):
        generate(tmp_path / "x", n_train=1, n_val=1, style="cartoon")
