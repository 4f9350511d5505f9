"""Values no real file could hold, in the skeleton (NTU, PKU-MMD) and 2D-pose (COCO, MPII) formats.

Same table as ``test_dataset_values.py`` (which has the motion formats): each row crafts one
malformed file from a valid one (a real sample under ``$MOTIONREPRO_SHARED_DATA``, read in
place, or synthetic arrays), written under ``tmp_path``, and returns ``(loader call, path to
inspect or None, needles)``; loader and ``inspect`` must both raise :class:`DatasetError` naming
the file and the offending record/value.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from evaluators.datasets.__main__ import main as inspect_cli
from evaluators.datasets.pose2d.coco import parse_coco_detections, parse_coco_keypoints
from evaluators.datasets.pose2d.mpii import parse_mpii
from evaluators.datasets.skeleton.ntu_preprocess import read_npz
from evaluators.datasets.skeleton.ntu_reader import read_skeleton
from evaluators.datasets.skeleton.pku import read_split_file as read_pku_split
from tests.conftest import need_shared
from tests.safety.dataset_value_check import assert_refused_by_loader_and_inspect, registry

CASES, case = registry()


# -- NTU / PKU skeletons: the real .skeleton sample, and an npz from synthetic arrays ---------------
def _npz(tmp_path: Path, label: int = 5, name: str = "NTU60_XSub.npz") -> Path:
    y = np.array([1, label, 2])
    path = tmp_path / name
    np.savez(path, x_train=np.zeros((3, 300, 150), np.float32), y_train=y,
             x_test=np.zeros((3, 300, 150), np.float32), y_test=np.array([0, 1, 2]))
    return path


@case
def ntu_npz_label_77_of_60(tmp_path):
    p = _npz(tmp_path, 77)
    return (lambda: read_npz(p, 60)), p, ["NTU60_XSub.npz", "y_train", "label 77 at index 1", "0..59"]


@case
def ntu_npz_label_77_of_60_no_config(tmp_path):
    p = _npz(tmp_path, 77)  # the file name says NTU-60: inspect and a run without num_classes agree
    return (lambda: read_npz(p)), p, ["NTU60_XSub.npz", "label 77", "0..59"]


@case
def npz_member_header_beyond_member(tmp_path):
    p = _npz(tmp_path)
    import io

    from numpy.lib import format as npf

    buf = io.BytesIO()
    npf.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (10**9, 300, 150)})
    with zipfile.ZipFile(p) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    members["x_train.npy"] = buf.getvalue() + b"\0" * 1024
    with zipfile.ZipFile(p, "w") as zf:
        for n, b in members.items():
            zf.writestr(n, b)
    return (lambda: read_npz(p, 60)), p, ["NTU60_XSub.npz", "x_train.npy", "header declares", "1024 bytes"]


@case
def ntu_skeleton_frame_count_beyond_file(tmp_path):
    text = need_shared("ntu_rgbd", "S001C001P001R001A011.skeleton").read_text(encoding="ascii")
    p = tmp_path / "S001C001P001R001A011.skeleton"
    p.write_text("1000000000" + text[text.index("\n"):], encoding="ascii")
    return (lambda: read_skeleton(p)), p, ["S001C001P001R001A011.skeleton", "frame count 1000000000"]


@case
def pku_split_duplicate_video(tmp_path):
    root = tmp_path / "pku"
    (root / "skeleton").mkdir(parents=True)
    (root / "label").mkdir()
    p = root / "cross-subject.txt"
    p.write_text("Training videos: 3\n0002-L, 0002-M, 0002-L\nValidation videos: 1\n0291-L\n")
    return (lambda: read_pku_split(p)), root, ["cross-subject.txt", "duplicate training video on line 2 '0002-L'"]


@case
def ntu_skeleton_joint_far_away(tmp_path):
    lines = need_shared("ntu_rgbd", "S001C001P001R001A011.skeleton").read_bytes().decode("ascii").split("\r\n")
    # line 1 frame count, 2 body count, 3 body info, 4 joint count, 5.. joints of frame 1
    fields = lines[6].split()
    fields[0] = "1e6"
    lines[6] = " ".join(fields)
    p = tmp_path / "S001C001P001R001A011.skeleton"
    p.write_bytes("\r\n".join(lines).encode("ascii"))
    return (lambda: read_skeleton(p)), p, ["S001C001P001R001A011.skeleton", "line 7", "1000000.0", "100 m"]


# -- COCO keypoints and detections, MPII: the real MMPose test files ---------------------------------
def _coco(tmp_path: Path, edit) -> Path:
    data = json.loads(need_shared("coco", "test_coco.json").read_text(encoding="utf-8"))
    edit(data)
    p = tmp_path / "test_coco.json"
    p.write_text(json.dumps(data))
    return p


def _coco_case(tmp_path, edit, needles):
    p = _coco(tmp_path, edit)
    return (lambda: parse_coco_keypoints(p, None, check_images=False)), p, ["test_coco.json", *needles]


def _ann(k, **kv):
    return lambda d: d["annotations"][k].update(kv)


@case
def coco_duplicate_annotation_id(tmp_path):
    return _coco_case(tmp_path, _ann(3, id=198196), ["duplicate annotation id 198196"])


@case
def coco_duplicate_image_id(tmp_path):
    def edit(d):
        d["images"][1]["id"] = d["images"][0]["id"]
    return _coco_case(tmp_path, edit, ["duplicate image id 785"])


@case
def coco_box_far_outside(tmp_path):
    return _coco_case(tmp_path, _ann(0, bbox=[-5000, -5000, 10, 10]), ["annotation 442619 bbox", "-5000",
                                                                       "does not overlap"])


@case
def coco_box_huge(tmp_path):
    return _coco_case(tmp_path, _ann(0, bbox=[10, 10, 1e12, 1e12]), ["annotation 442619 bbox", "1000000000000.0"])


@case
def coco_box_string(tmp_path):
    return _coco_case(tmp_path, _ann(0, bbox="abcd"), ["annotation 442619 bbox", "'abcd'"])


@case
def coco_keypoint_far_away(tmp_path):
    def edit(d):
        kp = d["annotations"][0]["keypoints"]
        kp[15], kp[16], kp[17] = 1e6, 1e6, 2  # keypoint 5 labelled at (1e6, 1e6)
    return _coco_case(tmp_path, edit, ["annotation 442619 keypoints", "point 5", "1000000.0"])


@case
def coco_image_id_string(tmp_path):
    return _coco_case(tmp_path, _ann(0, image_id="785"), ["annotation 442619 image_id", "'785'"])


def _det_case(tmp_path, edit, needles):
    gt = need_shared("coco", "test_coco.json")
    dets = json.loads(need_shared("coco", "test_coco_det_AP_H_56.json").read_text(encoding="utf-8"))
    edit(dets)
    p = tmp_path / "test_coco_det_AP_H_56.json"
    p.write_text(json.dumps(dets))
    return (lambda: parse_coco_detections(p, gt, None)), p, ["test_coco_det_AP_H_56.json", *needles]


@case
def det_box_string(tmp_path):
    return _det_case(tmp_path, lambda d: d[2].update(bbox="abcd"), ["detection 2 bbox", "'abcd'"])


@case
def det_score_nan(tmp_path):
    return _det_case(tmp_path, lambda d: d[4].update(score=float("nan")), ["detection 4 score", "nan"])


@case
def det_box_zero_width(tmp_path):
    return _det_case(tmp_path, lambda d: d[0].update(bbox=[10, 10, 0, 20]), ["detection 0 bbox", "0 x 20"])


@case
def mpii_joint_far_away(tmp_path):
    data = json.loads(need_shared("mpii", "test_mpii.json").read_text(encoding="utf-8"))
    data[1]["joints"][3] = [1e6, 1e6]
    data[1]["joints_vis"][3] = 1
    p = tmp_path / "test_mpii.json"
    p.write_text(json.dumps(data))
    return (lambda: parse_mpii(p, None, check_images=False)), p, ["test_mpii.json", "entry 1", "point 3",
                                                                   "1000000.0"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_value_is_refused_by_loader_and_inspect(name, tmp_path):
    assert_refused_by_loader_and_inspect(CASES[name], tmp_path)


def test_inspect_cli_exits_2_with_one_line(tmp_path, capsys):
    _, target, _ = CASES["ntu_npz_label_77_of_60"](tmp_path)
    assert inspect_cli(["inspect", str(target)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "label 77" in err
