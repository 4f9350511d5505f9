"""Values no real file could hold: every format the suite reads, through its loader AND ``inspect``.

Each row crafts one malformed file from a valid one (a real sample under
``$MOTIONREPRO_SHARED_DATA``, read in place, or a synthetic generator's output), written under
``tmp_path``, and returns ``(loader call, path to inspect or None, needles)``. The loader and
``python -m evaluators.datasets inspect`` must both raise :class:`DatasetError` (never another
class), and the message must name the file and the offending record/value (every needle).
The rows are samples of classes: non-finite values, ranges and order, duplicate ids, wrong
types, header sizes beyond the file, text no caption holds. This file has the motion formats
(HumanML3D / KIT-ML, HumanAct12, UESTC) and the check that every real sample still loads; the
skeleton and 2D-pose formats are in ``test_dataset_values_skeleton_pose.py``.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

from evaluators.datasets.base import inspect_path
from evaluators.datasets.motion import synth_action
from evaluators.datasets.motion.action import read_humanact12, read_uestc
from evaluators.datasets.motion.t2m_dataset import MotionTextDataset
from evaluators.datasets.motion.t2m_text import read_caption_file, read_tmr_annotations
from evaluators.datasets.pose2d.coco import parse_coco_detections, parse_coco_keypoints
from evaluators.datasets.pose2d.mpii import parse_mpii
from evaluators.datasets.skeleton.ntu_reader import read_skeleton
from tests.conftest import need_shared
from tests.safety.dataset_value_check import assert_refused_by_loader_and_inspect, registry

CASES, case = registry()


# -- HumanML3D / KIT-ML: a layout folder built from the real 012314 sample ---------------------
def _t2m(tmp_path: Path, caption: str = "a man walks.#a/DET man/NOUN walk/VERB#0.0#0.0\n") -> Path:
    real = need_shared("humanml3d", "HumanML3D")
    root = tmp_path / "HumanML3D"
    (root / "new_joint_vecs").mkdir(parents=True)
    (root / "texts").mkdir()
    shutil.copyfile(real / "new_joint_vecs" / "012314.npy", root / "new_joint_vecs" / "012314.npy")
    for stat in ("Mean.npy", "Std.npy"):
        shutil.copyfile(real / stat, root / stat)
    (root / "texts" / "012314.txt").write_bytes(caption.encode())
    (root / "train.txt").write_text("012314\n")
    return root


def _t2m_load(root: Path):
    return lambda: MotionTextDataset(root, name="humanml3d").split("train")


@case
def caption_nul_byte(tmp_path):
    root = _t2m(tmp_path, "a man\x00 walks.#a/DET man/NOUN walk/VERB#0.0#0.0\n")
    return _t2m_load(root), root / "texts" / "012314.txt", ["012314.txt", "line 1", "control character", "\\x00"]


@case
def caption_300_kb(tmp_path):
    root = _t2m(tmp_path, "a man walks " * 25_000 + "#a/DET#0.0#0.0\n")
    return _t2m_load(root), root / "texts" / "012314.txt", ["012314.txt", "line 1", "characters"]


@case
def caption_empty_span(tmp_path):
    root = _t2m(tmp_path, "a man walks.#a/DET man/NOUN#2.0#2.0\n")
    return _t2m_load(root), root / "texts" / "012314.txt", ["012314.txt:1", "end 2.0 not after start 2.0"]


@case
def caption_span_after_motion(tmp_path):
    # 012314 has 170 frames = 8.5 s at 20 fps; this span starts at 20 s
    root = _t2m(tmp_path, "a man walks.#a/DET man/NOUN#20.0#25.0\n")
    return _t2m_load(root), None, ["012314.txt:1", "20", "after the end of motion 012314", "170 frames"]


@case
def split_duplicate_id(tmp_path):
    root = _t2m(tmp_path)
    (root / "train.txt").write_text("012314\n012314\n")
    return _t2m_load(root), root, ["train.txt", "line 2", "'012314'", "line 1"]


def _huge_npy(path: Path, shape=(10**12, 263)) -> None:
    from numpy.lib import format as npf

    with open(path, "wb") as fh:
        npf.write_array_header_1_0(fh, {"descr": "<f4", "fortran_order": False, "shape": shape})
        fh.write(b"\0" * 4096)


@case
def npy_header_beyond_file(tmp_path):
    root = _t2m(tmp_path)
    _huge_npy(root / "new_joint_vecs" / "012314.npy")
    return _t2m_load(root), root / "new_joint_vecs" / "012314.npy", ["012314.npy", "header declares",
                                                                      "1000000000000, 263"]


@case
def npy_header_beyond_file_folder_inspect(tmp_path):
    root = _t2m(tmp_path)
    _huge_npy(root / "new_joint_vecs" / "012314.npy")
    return _t2m_load(root), root, ["012314.npy", "header declares", "4096 bytes"]


def _kit(tmp_path: Path, edit) -> Path:
    data = json.loads(need_shared("kitml", "annotations.json").read_text(encoding="utf-8"))
    key = sorted(data)[0]
    edit(data[key])
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(data))  # json writes NaN as the bare NaN token Python's reader accepts
    return path


def _first_ann(field, value):
    def edit(entry):
        entry["annotations"][0][field] = value
    return edit


@case
def kit_end_nan(tmp_path):
    p = _kit(tmp_path, _first_ann("end", float("nan")))
    return (lambda: read_tmr_annotations(p)), p, ["annotations.json", "annotation 0 end", "nan"]


@case
def kit_end_before_start(tmp_path):
    def edit(entry):
        entry["annotations"][0].update(start=2.0, end=1.0)
    p = _kit(tmp_path, edit)
    return (lambda: read_tmr_annotations(p)), p, ["annotations.json", "annotation 0", "end 1 not after start 2"]


@case
def kit_end_beyond_duration(tmp_path):
    def edit(entry):
        entry["annotations"][0].update(start=0.5, end=entry["duration"] + 60)
    p = _kit(tmp_path, edit)
    return (lambda: read_tmr_annotations(p)), p, ["annotations.json", "annotation 0", "not within the motion"]


@case
def kit_duplicate_id(tmp_path):
    src = need_shared("kitml", "annotations.json").read_text(encoding="utf-8")
    key = sorted(json.loads(src))[0]
    entry = json.dumps(json.loads(src)[key])
    p = tmp_path / "annotations.json"
    p.write_text(src.rstrip().rstrip("}") + f', "{key}": {entry}}}')
    return (lambda: read_tmr_annotations(p)), p, ["annotations.json", "duplicate key", key]


# -- HumanAct12 (synthetic generator) and UESTC -------------------------------------------------
def _humanact12(tmp_path: Path, edit) -> Path:
    path = synth_action.generate(tmp_path / "humanact12poses.pkl", {"clips_per_class": 1})
    data = pickle.loads(path.read_bytes())
    edit(data)
    path.write_bytes(pickle.dumps(data, protocol=4))
    return path


@case
def humanact12_joints_int(tmp_path):
    p = _humanact12(tmp_path, lambda d: d.update(joints3D=7))
    return (lambda: read_humanact12(p)), p, ["humanact12poses.pkl", "'joints3D'", "int"]


@case
def humanact12_label_out_of_range(tmp_path):
    p = _humanact12(tmp_path, lambda d: d["y"].__setitem__(3, 12))
    return (lambda: read_humanact12(p)), p, ["humanact12poses.pkl", "label 12 at index 3", "0..11"]


def _uestc(tmp_path: Path, cam_scale: float = 1.0, first_frames: int = 80) -> Path:
    names = ["a0_d1_p001_c1_color.avi", "a5_d2_p003_c2_color.avi"]
    frames = [first_frames, 70]
    (tmp_path / "info").mkdir()
    (tmp_path / "info" / "names.txt").write_text("\n".join(names) + "\n")
    (tmp_path / "info" / "num_frames_min.txt").write_text("\n".join(map(str, frames)) + "\n")
    rng = np.random.default_rng(0)
    n = [max(f, 1) + 2 for f in frames]
    cams = [np.tile([cam_scale, 1.0, 0.1, 0.2], (k, 1)) for k in n]
    vibe = {"pose": [np.zeros((k, 72)) for k in n], "joints3d": [rng.normal(size=(k, 49, 3)) for k in n],
            "orig_cam": cams}
    (tmp_path / "vibe_cache_refined.pkl").write_bytes(pickle.dumps(vibe))
    return tmp_path


@case
def uestc_zero_camera(tmp_path):
    root = _uestc(tmp_path, cam_scale=0.0)
    return (lambda: read_uestc(root)), root, ["vibe_cache_refined.pkl", "clip 0", "orig_cam frame 0", "scale"]


@case
def uestc_zero_frame_count(tmp_path):
    root = _uestc(tmp_path, first_frames=0)
    return (lambda: read_uestc(root)), root, ["num_frames_min.txt", "line 1", "frame count 0"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_value_is_refused_by_loader_and_inspect(name, tmp_path):
    assert_refused_by_loader_and_inspect(CASES[name], tmp_path)


def test_real_samples_still_load_unchanged():
    """The real files pass every new check, and give the numbers a plain numpy/json read gives."""
    coco = need_shared("coco", "test_coco.json")
    insts = parse_coco_keypoints(coco, None, check_images=False)
    raw = json.loads(coco.read_text())
    assert len(insts) == sum(not a["iscrowd"] for a in raw["annotations"])
    first = next(a for a in raw["annotations"] if a["id"] == insts[0]["ann_id"])
    np.testing.assert_array_equal(insts[0]["keypoints"], np.float32(np.reshape(first["keypoints"], (17, 3))[:, :2]))
    dets = parse_coco_detections(need_shared("coco", "test_coco_det_AP_H_56.json"), coco, None)
    assert len(dets) == len(json.loads(need_shared("coco", "test_coco_det_AP_H_56.json").read_text()))
    mpii = parse_mpii(need_shared("mpii", "test_mpii.json"), None, check_images=False)
    assert len(mpii) == len(json.loads(need_shared("mpii", "test_mpii.json").read_text()))
    ann = read_tmr_annotations(need_shared("kitml", "annotations.json"))
    assert len(ann) == 5766
    vec = need_shared("humanml3d", "HumanML3D", "new_joint_vecs", "012314.npy")
    assert inspect_path(vec)["frames"] == np.load(vec).shape[0] == 170
    for name in ("S001C001P001R001A011", "S001C003P008R002A058"):
        rec = read_skeleton(need_shared("ntu_rgbd", f"{name}.skeleton"))
        assert rec.num_frames > 0


def test_caption_file_without_defects_reads(tmp_path):
    root = _t2m(tmp_path, "a man walks.#a/DET man/NOUN walk/VERB#0.0#0.0\nhe turns.#he/PRON turn/VERB#1.0#5.5\n")
    caps = read_caption_file(root / "texts" / "012314.txt")
    assert [(c.start, c.end) for c in caps] == [(0.0, 0.0), (1.0, 5.5)]
    samples = MotionTextDataset(root, name="humanml3d", min_motion_length=40).split("train")
    assert sorted(len(s.motion) for s in samples) == [90, 170]  # motion[20:110] and the whole motion
