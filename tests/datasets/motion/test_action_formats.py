"""ACTOR-layout UESTC and HumanAct12 readers on tiny hand-made folders."""

from __future__ import annotations

import pickle

import numpy as np

from evaluators.datasets import load_dataset
from evaluators.datasets.motion.action import ACTION2MOTION_JOINTS, HUMANACT12_CLASSES, read_uestc


def _uestc(tmp_path, with_globtrans=True):
    rng = np.random.default_rng(0)
    names = ["a0_d1_p001_c1_color.avi", "a5_d2_p003_c2_color.avi", "a7_d8_p001_c2_color.avi",
             "a3_d1_p002_c1_color.avi"]
    frames = [80, 70, 60, 30]
    (tmp_path / "info").mkdir()
    (tmp_path / "info" / "names.txt").write_text("\n".join(names) + "\n")
    (tmp_path / "info" / "num_frames_min.txt").write_text("\n".join(map(str, frames)) + "\n")
    (tmp_path / "info" / "action_classes.txt").write_text("\n".join(f"class {k}" for k in range(40)) + "\n")
    joints = [rng.normal(size=(n + 2, 49, 3)) for n in frames]
    cams = [np.tile([1.0, 1.0, 0.1, 0.2], (n + 2, 1)) for n in frames]
    vibe = {"pose": [np.zeros((n + 2, 72)) for n in frames], "joints3d": joints, "orig_cam": cams}
    (tmp_path / "vibe_cache_refined.pkl").write_bytes(pickle.dumps(vibe))
    if with_globtrans:
        (tmp_path / "globtrans_usez.pkl").write_bytes(pickle.dumps([np.zeros((n + 2, 3)) for n in frames]))
    return joints


def test_uestc_splits_views_and_joint_subset(tmp_path):
    joints = _uestc(tmp_path)
    splits, classes = read_uestc(tmp_path, num_frames=60)
    assert len(classes) == 40
    # subject 1 is a training subject, 3 a test subject; side-2 view 8 is dropped; the 30-frame
    # training clip is under 3/4 * 60 frames and dropped (the test set is never filtered)
    assert [s.name for s in splits["train"]] == ["a0_d1_p001_c1"]
    assert [s.name for s in splits["test"]] == ["a5_d2_p003_c2"]
    tr, te = splits["train"][0], splits["test"][0]
    assert tr.label == 0 and te.label == 5 and tr.joints.shape == (80, 18, 3) and te.joints.shape == (70, 18, 3)
    np.testing.assert_allclose(tr.joints, joints[0][:80, ACTION2MOTION_JOINTS], atol=1e-6)
    th = -2 * np.pi / 4  # view 2 of side 2 rotated to the front: -view * pi/4 about Y
    rot = np.array([[np.cos(th), 0, np.sin(th)], [0, 1, 0], [-np.sin(th), 0, np.cos(th)]])
    np.testing.assert_allclose(te.joints, (joints[1] @ rot.T)[:70, ACTION2MOTION_JOINTS], atol=1e-5)


def test_uestc_translation_from_vibe_camera(tmp_path):
    _uestc(tmp_path, with_globtrans=False)
    ds = load_dataset({"name": "uestc", "root": str(tmp_path), "num_frames": 60})
    assert ds.num_classes == 40 and ds.split_names == ("train", "test")
    assert ds.torch_dataset("train", num_frames=60)[0]["joints"].shape == (60, 18, 3)


def test_humanact12_reader(tmp_path):
    rng = np.random.default_rng(1)
    data = {"poses": [rng.normal(size=(n, 72)) for n in (30, 50)],
            "joints3D": [rng.normal(size=(n, 24, 3)) for n in (30, 50)], "y": [4, 11]}
    (tmp_path / "humanact12poses.pkl").write_bytes(pickle.dumps(data))
    ds = load_dataset({"name": "humanact12", "root": str(tmp_path)})
    assert ds.split_names == ("train",) and ds.num_classes == 12 and ds.class_names == HUMANACT12_CLASSES
    a, b = ds.split("train")
    assert (a.label, b.label, a.joints.shape, b.joints.dtype) == (4, 11, (30, 24, 3), np.float32)
    np.testing.assert_allclose(b.joints, data["joints3D"][1].astype(np.float32))
    item = ds.torch_dataset("train", num_frames=60)[0]           # 30 < 60: padded with the last frame
    np.testing.assert_allclose(item["joints"][30:].numpy(), np.broadcast_to(item["joints"][29].numpy(), (30, 24, 3)))
