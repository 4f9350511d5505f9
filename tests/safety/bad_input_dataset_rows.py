"""Dataset-format rows of the bad-input table (``test_bad_inputs_table.py`` runs them): HumanAct12
and UESTC pickles, HumanML3D / KIT-ML features and texts, NTU npz and .skeleton files, COCO, MPII and PKU.

Each row builds one malformed file under ``tmp`` and returns ``(call, DatasetError, needle)``; the
table checks that the call raises exactly that class naming the file. Kept apart from the run-config,
checkpoint and record rows because these are one family: the readers of ``evaluators/datasets``.
"""

from __future__ import annotations

import json
import pickle

import numpy as np

from evaluators.datasets import DatasetError
from tests.safety.bad_input_rows import Evil, registrar

DATASET_CASES: dict[str, object] = {}
case = registrar(DATASET_CASES)


# -- dataset pickles --------------------------------------------------------------------------------------
def _act12(tmp, data: bytes, name="humanact12poses.pkl"):
    from evaluators.datasets.motion.action import read_humanact12

    (tmp / name).write_bytes(data)
    return lambda: read_humanact12(tmp / name)


GOOD_ACT = {"joints3D": [np.zeros((10, 24, 3), np.float32)], "poses": [np.zeros((10, 72))], "y": [1]}

PICKLE_ROWS = {
    "pkl-crafted-reduce": lambda tmp: {**GOOD_ACT, "x": Evil(tmp / "ran.txt")},
    "pkl-ordereddict": lambda tmp: __import__("collections").OrderedDict(GOOD_ACT),
    "pkl-label-float": lambda tmp: {**GOOD_ACT, "y": [3.7]},
    "pkl-label-out-of-range": lambda tmp: {**GOOD_ACT, "y": [12]},
    "pkl-label-negative": lambda tmp: {**GOOD_ACT, "y": [-1]},
    "pkl-label-string": lambda tmp: {**GOOD_ACT, "y": ["walk"]},
    "pkl-joints-bool": lambda tmp: {**GOOD_ACT, "joints3D": [np.zeros((10, 24, 3), bool)]},
    "pkl-joints-complex": lambda tmp: {**GOOD_ACT, "joints3D": [np.zeros((10, 24, 3), complex)]},
    "pkl-joints-string": lambda tmp: {**GOOD_ACT, "joints3D": [np.full((10, 24, 3), "a")]},
    "pkl-joints-nan": lambda tmp: {**GOOD_ACT, "joints3D": [np.full((10, 24, 3), np.nan)]},
    "pkl-joints-shape": lambda tmp: {**GOOD_ACT, "joints3D": [np.zeros((10, 22, 3))]},
    "pkl-missing-keys": lambda tmp: {"joints": []},
}
for _name, _make in PICKLE_ROWS.items():
    DATASET_CASES[_name] = (lambda make: lambda tmp: (_act12(tmp, pickle.dumps(make(tmp))), DatasetError,
                                             "humanact12poses.pkl"))(_make)


@case("pkl-truncated")
def _(tmp):
    return _act12(tmp, pickle.dumps(GOOD_ACT)[:-30]), DatasetError, "humanact12poses.pkl"


@case("pkl-directory")
def _(tmp):
    from evaluators.datasets.motion.action import read_humanact12

    (tmp / "humanact12poses.pkl").mkdir()
    return (lambda: read_humanact12(tmp / "humanact12poses.pkl")), DatasetError, "humanact12poses.pkl"


def _uestc(tmp, names=b"a1_d1_p1_c1_color.avi\n", nf=b"60\n", vibe=None):
    from evaluators.datasets.motion.action import read_uestc

    (tmp / "info").mkdir(exist_ok=True)
    (tmp / "info" / "names.txt").write_bytes(names)
    (tmp / "info" / "num_frames_min.txt").write_bytes(nf)
    vibe = vibe if vibe is not None else {"joints3d": [np.zeros((60, 49, 3))], "pose": [np.zeros((60, 72))],
                                          "orig_cam": [np.ones((60, 4))]}
    (tmp / "vibe_cache_refined.pkl").write_bytes(pickle.dumps(vibe))
    return lambda: read_uestc(tmp)


@case("uestc-names-not-utf8")
def _(tmp):
    return _uestc(tmp, names=b"\xff\xfe\x00bad\n"), DatasetError, "names.txt"


@case("uestc-frame-counts-non-numeric")
def _(tmp):
    return _uestc(tmp, nf=b"sixty\n"), DatasetError, "num_frames_min.txt"


@case("uestc-missing-orig-cam")
def _(tmp):
    return _uestc(tmp, vibe={"joints3d": [np.zeros((60, 49, 3))], "pose": [np.zeros((60, 72))]}), DatasetError, \
        "orig_cam"


@case("uestc-crafted-reduce")
def _(tmp):
    return _uestc(tmp, vibe={"joints3d": Evil(tmp / "ran.txt")}), DatasetError, "vibe_cache_refined.pkl"


# -- HumanML3D / KIT-ML -----------------------------------------------------------------------------------
def _features(tmp, arr, name="000001.npy"):
    from evaluators.datasets.motion.t2m_dataset import load_features

    d = tmp / "new_joint_vecs"
    d.mkdir(exist_ok=True)
    np.save(d / name, arr, allow_pickle=True)
    return lambda: load_features(d / name)


FEATURE_ROWS = {
    "t2m-features-bool": np.zeros((40, 263), bool),
    "t2m-features-complex": np.zeros((40, 263), complex),
    "t2m-features-string": np.full((40, 263), "x"),
    "t2m-features-object": np.array([[object()] * 263] * 2, dtype=object),
    "t2m-features-nan": np.full((40, 263), np.nan, np.float32),
    "t2m-features-inf": np.full((40, 263), np.inf, np.float32),
    "t2m-features-3d": np.zeros((40, 22, 3), np.float32),
    "t2m-features-width": np.zeros((40, 100), np.float32),
    "t2m-features-empty": np.zeros((0, 263), np.float32),
}
for _name, _arr in FEATURE_ROWS.items():
    DATASET_CASES[_name] = (lambda arr: lambda tmp: (_features(tmp, arr), DatasetError, "000001.npy"))(_arr)


@case("t2m-features-truncated")
def _(tmp):
    call = _features(tmp, np.zeros((40, 263), np.float32))
    p = tmp / "new_joint_vecs" / "000001.npy"
    p.write_bytes(p.read_bytes()[:200])
    return call, DatasetError, "000001.npy"


@case("t2m-features-directory")
def _(tmp):
    from evaluators.datasets.motion.t2m_dataset import load_features

    (tmp / "new_joint_vecs" / "000001.npy").mkdir(parents=True)
    return (lambda: load_features(tmp / "new_joint_vecs" / "000001.npy")), DatasetError, "directory"


@case("t2m-stats-bool")
def _(tmp):
    from evaluators.datasets.motion.t2m_dataset import load_stat

    np.save(tmp / "Mean.npy", np.ones(263, bool))
    return (lambda: load_stat(tmp / "Mean.npy", 263)), DatasetError, "Mean.npy"


@case("t2m-stats-nan")
def _(tmp):
    from evaluators.datasets.motion.t2m_dataset import load_stat

    np.save(tmp / "Std.npy", np.full(263, np.nan))
    return (lambda: load_stat(tmp / "Std.npy", 263)), DatasetError, "Std.npy"


@case("t2m-split-not-utf8")
def _(tmp):
    from evaluators.datasets.motion.t2m_dataset import read_split_file

    (tmp / "train.txt").write_bytes(b"000001\n\xc3\x28\n")
    return (lambda: read_split_file(tmp / "train.txt")), DatasetError, "train.txt"


@case("t2m-split-directory")
def _(tmp):
    from evaluators.datasets.motion.t2m_dataset import read_split_file

    (tmp / "train.txt").mkdir()
    return (lambda: read_split_file(tmp / "train.txt")), DatasetError, "train.txt"


@case("t2m-caption-not-utf8")
def _(tmp):
    from evaluators.datasets.motion.t2m_text import read_caption_file

    (tmp / "000001.txt").write_bytes(b"a person walks\xff#a/DET#0.0#0.0\n")
    return (lambda: read_caption_file(tmp / "000001.txt")), DatasetError, "000001.txt"


@case("t2m-joints-bool")
def _(tmp):
    from evaluators.datasets.base import inspect_path

    (tmp / "new_joints").mkdir()
    np.save(tmp / "new_joints" / "000002.npy", np.zeros((30, 22, 3), bool))
    return (lambda: inspect_path(tmp / "new_joints" / "000002.npy")), DatasetError, "000002.npy"


# -- NTU --------------------------------------------------------------------------------------------------
def _npz(tmp, **over):
    from evaluators.datasets.skeleton.ntu_preprocess import read_npz

    arrs = {"x_train": np.zeros((2, 30, 150), np.float32), "y_train": np.array([0, 1]),
            "x_test": np.zeros((1, 30, 150), np.float32), "y_test": np.array([1])}
    arrs.update(over)
    arrs = {k: v for k, v in arrs.items() if v is not None}
    np.savez(tmp / "NTU60_CS.npz", **arrs)
    return lambda: read_npz(tmp / "NTU60_CS.npz", 60)


NPZ_ROWS = {
    "ntu-npz-nan": {"x_train": np.full((2, 30, 150), np.nan, np.float32)},
    "ntu-npz-inf": {"x_test": np.full((1, 30, 150), np.inf, np.float32)},
    "ntu-npz-bool": {"x_train": np.zeros((2, 30, 150), bool)},
    "ntu-npz-complex": {"x_train": np.zeros((2, 30, 150), complex)},
    "ntu-npz-label-float": {"y_train": np.array([0.0, 3.7])},
    "ntu-npz-label-range": {"y_train": np.array([0, 60])},
    "ntu-npz-label-bool": {"y_test": np.array([True])},
    "ntu-npz-missing-key": {"y_test": None},
    "ntu-npz-shape": {"x_train": np.zeros((2, 30, 75), np.float32)},
}
for _name, _over in NPZ_ROWS.items():
    DATASET_CASES[_name] = (lambda over: lambda tmp: (_npz(tmp, **over), DatasetError, "NTU60_CS.npz"))(_over)


@case("ntu-npz-truncated")
def _(tmp):
    call = _npz(tmp, x_train=np.random.rand(4, 30, 150).astype(np.float32))
    p = tmp / "NTU60_CS.npz"
    p.write_bytes(p.read_bytes()[:1500])
    return call, DatasetError, "NTU60_CS.npz"


@case("ntu-npz-directory")
def _(tmp):
    from evaluators.datasets.skeleton.ntu_preprocess import read_npz

    (tmp / "NTU60_CS.npz").mkdir()
    return (lambda: read_npz(tmp / "NTU60_CS.npz")), DatasetError, "NTU60_CS.npz"


def _skeleton_text(frames=1, joint_state="2", body_state="2", header=None):
    joint = " ".join(["0.1"] * 11 + [joint_state])
    body = " ".join(["72057594037931101"] + ["0"] * 8 + [body_state])
    lines = [header or str(frames)]
    for _ in range(frames):
        lines += ["1", body, "25"] + [joint] * 25
    return "\r\n".join(lines) + "\r\n"


def _skel(tmp, text):
    from evaluators.datasets.skeleton.ntu import read_skeleton

    p = tmp / "S001C001P001R001A001.skeleton"
    p.write_text(text)
    return lambda: read_skeleton(p)


@case("ntu-skeleton-huge-frame-count")
def _(tmp):
    return _skel(tmp, _skeleton_text(header="99999999999")), DatasetError, "S001C001P001R001A001.skeleton"


@case("ntu-skeleton-joint-tracking-state")
def _(tmp):
    return _skel(tmp, _skeleton_text(joint_state="3")), DatasetError, "trackingState"


@case("ntu-skeleton-body-tracking-state")
def _(tmp):
    return _skel(tmp, _skeleton_text(body_state="7")), DatasetError, "trackingState"


@case("ntu-skeleton-non-numeric")
def _(tmp):
    return _skel(tmp, _skeleton_text().replace("0.1", "abc", 1)), DatasetError, "S001C001P001R001A001.skeleton"


# -- COCO / MPII / PKU -------------------------------------------------------------------------------------
def _coco(tmp, mutate):
    from evaluators.datasets.pose2d.coco import parse_coco_keypoints

    data = {"images": [{"id": 1, "file_name": "1.jpg", "width": 640, "height": 480}],
            "annotations": [{"id": 7, "image_id": 1, "bbox": [10, 10, 50, 80], "area": 4000, "iscrowd": 0,
                             "num_keypoints": 17, "keypoints": [20, 20, 2] * 17, "category_id": 1}]}
    mutate(data)
    (tmp / "person_keypoints_val.json").write_text(json.dumps(data))
    return lambda: parse_coco_keypoints(tmp / "person_keypoints_val.json", tmp / "images", check_images=False)


COCO_ROWS = {
    "coco-visibility-3": (lambda d: d["annotations"][0].update(keypoints=[20, 20, 3] * 17), "visibility"),
    "coco-visibility-negative": (lambda d: d["annotations"][0].update(keypoints=[20, 20, -1] * 17), "visibility"),
    "coco-bbox-zero-width": (lambda d: d["annotations"][0].update(bbox=[10, 10, 0, 80]), "bbox"),
    "coco-bbox-negative-height": (lambda d: d["annotations"][0].update(bbox=[10, 10, 50, -2]), "bbox"),
    "coco-bbox-3-numbers": (lambda d: d["annotations"][0].update(bbox=[10, 10, 50]), "bbox"),
    "coco-bbox-string": (lambda d: d["annotations"][0].update(bbox=["10", 10, 50, 80]), "bbox"),
    "coco-keypoints-null": (lambda d: d["annotations"][0].update(keypoints=[None] * 51), "keypoints"),
    "coco-annotations-null": (lambda d: d.update(annotations=None), "annotations"),
    "coco-missing-file-name": (lambda d: d["images"][0].pop("file_name"), "file_name"),
    "coco-missing-bbox": (lambda d: d["annotations"][0].pop("bbox"), "bbox"),
    "coco-16-keypoints": (lambda d: d["annotations"][0].update(keypoints=[20, 20, 2] * 16), "16 keypoints"),
}
for _name, (_mut, _needle) in COCO_ROWS.items():
    DATASET_CASES[_name] = (lambda mut, needle: lambda tmp: (_coco(tmp, mut), DatasetError, needle))(_mut, _needle)


def _mpii(tmp, mutate):
    from evaluators.datasets.pose2d.mpii import parse_mpii

    data = [{"image": "1.jpg", "center": [100.0, 120.0], "scale": 1.5, "joints": [[50.0, 60.0]] * 16,
             "joints_vis": [1] * 16}]
    mutate(data[0])
    (tmp / "mpii_val.json").write_text(json.dumps(data))
    return lambda: parse_mpii(tmp / "mpii_val.json", None)


MPII_ROWS = {
    "mpii-scale-zero": (lambda a: a.update(scale=0), "scale"),
    "mpii-scale-negative": (lambda a: a.update(scale=-1.5), "scale"),
    "mpii-scale-list": (lambda a: a.update(scale=[1.0, 2.0]), "scale"),
    "mpii-centre-3": (lambda a: a.update(center=[1.0, 2.0, 3.0]), "center"),
    "mpii-centre-string": (lambda a: a.update(center="100,120"), "center"),
    "mpii-visibility-2": (lambda a: a.update(joints_vis=[2] * 16), "joints_vis"),
    "mpii-joints-non-numeric": (lambda a: a.update(joints=[["a", "b"]] * 16), "joints"),
    "mpii-missing-scale": (lambda a: a.pop("scale"), "mpii_val.json"),
}
for _name, (_mut, _needle) in MPII_ROWS.items():
    DATASET_CASES[_name] = (lambda mut, needle: lambda tmp: (_mpii(tmp, mut), DatasetError, needle))(_mut, _needle)


@case("pku-interval-end-beyond-video")
def _(tmp):
    from evaluators.datasets.skeleton.pku import instances

    seq = np.ones((50, 150), np.float32)
    return (lambda: list(instances(seq, np.array([[1, 10, 60]]), "0002-L", path=tmp / "0002-L.txt"))), \
        DatasetError, "0002-L.txt"
