"""Every bad-input case raises DatasetError naming the file; ``inspect`` reports it and exits 1."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from evaluators.datasets import load_dataset
from evaluators.datasets.__main__ import main as cli
from evaluators.datasets.base import DatasetError, inspect_path
from evaluators.datasets.motion.action import read_humanact12, read_uestc
from evaluators.datasets.motion.t2m_dataset import MotionTextDataset, load_features


def _folder(tmp_path, n=2, dim=263, length=60):
    root = tmp_path / "HumanML3D"
    (root / "new_joint_vecs").mkdir(parents=True)
    (root / "texts").mkdir()
    for i in range(n):
        np.save(root / "new_joint_vecs" / f"{i:06d}.npy", np.zeros((length, dim), np.float32))
        (root / "texts" / f"{i:06d}.txt").write_text("a man walks.#a/DET man/NOUN walk/VERB#0.0#0.0\n")
    (root / "train.txt").write_text("".join(f"{i:06d}\n" for i in range(n)))
    np.save(root / "Mean.npy", np.zeros(dim, np.float32))
    np.save(root / "Std.npy", np.ones(dim, np.float32))
    return root


def test_missing_root_explains_layout_env_and_url(monkeypatch):
    monkeypatch.delenv("HUMANML3D_ROOT", raising=False)
    cfg = {"name": "humanml3d", "root": None, "env_var": "HUMANML3D_ROOT", "layout": "HumanML3D/\n  new_joint_vecs/",
           "url": "https://github.com/EricGuo5513/HumanML3D"}
    with pytest.raises(DatasetError) as e:
        load_dataset(cfg)
    msg = str(e.value)
    assert "new_joint_vecs" in msg and "HUMANML3D_ROOT" in msg and "EricGuo5513/HumanML3D" in msg


def test_wrong_feature_count(tmp_path):
    root = _folder(tmp_path)
    np.save(root / "new_joint_vecs" / "000001.npy", np.zeros((60, 250), np.float32))
    with pytest.raises(DatasetError, match=r"000001\.npy.*feature count"):
        MotionTextDataset(root, name="t").split("train")


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_nan_or_inf_features(tmp_path, value):
    root = _folder(tmp_path)
    arr = np.zeros((60, 263), np.float32)
    arr[5, 7] = value
    np.save(root / "new_joint_vecs" / "000000.npy", arr)
    with pytest.raises(DatasetError, match=r"000000\.npy.*NaN"):
        MotionTextDataset(root, name="t").split("train")


def test_empty_sequence(tmp_path):
    path = tmp_path / "new_joint_vecs" / "x.npy"
    path.parent.mkdir()
    np.save(path, np.zeros((0, 263), np.float32))
    with pytest.raises(DatasetError, match=r"x\.npy.*empty"):
        load_features(path)


def test_empty_and_unparsable_caption_files(tmp_path):
    root = _folder(tmp_path)
    (root / "texts" / "000001.txt").write_text("")
    with pytest.raises(DatasetError, match=r"000001\.txt.*empty"):
        MotionTextDataset(root, name="t").split("train")
    (root / "texts" / "000001.txt").write_text("just a sentence without fields\n")
    with pytest.raises(DatasetError, match=r"000001\.txt:1"):
        MotionTextDataset(root, name="t").split("train")


def test_split_file_naming_unknown_samples(tmp_path):
    root = _folder(tmp_path)
    (root / "train.txt").write_text("000000\n000001\n999999\n")
    with pytest.raises(DatasetError, match=r"train\.txt.*unknown.*999999"):
        MotionTextDataset(root, name="t").split("train")
    ds = MotionTextDataset(root, name="t", missing="skip")  # the official loader's lenient mode
    assert len(ds.split("train")) == 2


def test_bad_statistics(tmp_path):
    root = _folder(tmp_path)
    np.save(root / "Std.npy", np.ones(200, np.float32))
    with pytest.raises(DatasetError, match=r"Std\.npy"):
        MotionTextDataset(root, name="t")


def test_bad_humanact12_pickles(tmp_path):
    good = {"poses": [np.zeros((10, 72))], "joints3D": [np.zeros((10, 24, 3))], "y": [3]}
    cases = {"trunc.pkl": pickle.dumps(good)[:-20], "joints.pkl": pickle.dumps({**good, "joints3D": [np.zeros((10, 22, 3))]}),
             "nan.pkl": pickle.dumps({**good, "joints3D": [np.full((10, 24, 3), np.nan)]}),
             "empty.pkl": pickle.dumps({**good, "joints3D": [np.zeros((0, 24, 3))]}),
             "label.pkl": pickle.dumps({**good, "y": [12]}), "keys.pkl": pickle.dumps({"x": 1})}
    for name, blob in cases.items():
        path = tmp_path / name
        path.write_bytes(blob)
        with pytest.raises(DatasetError, match=name.replace(".", r"\.")):
            read_humanact12(path)


def test_bad_uestc_folder(tmp_path):
    with pytest.raises(DatasetError, match="names.txt"):
        read_uestc(tmp_path)


def test_inspect_cli_reports_errors_and_exits_1(tmp_path, capsys):
    bad = tmp_path / "new_joint_vecs" / "000000.npy"
    bad.parent.mkdir()
    np.save(bad, np.zeros((10, 100), np.float32))
    assert cli(["inspect", str(bad)]) == 2
    assert "000000.npy" in capsys.readouterr().err
    txt = tmp_path / "texts" / "000000.txt"
    txt.parent.mkdir()
    txt.write_text("oops\n")
    assert cli(["inspect", str(txt)]) == 2
    joints = tmp_path / "new_joints" / "000000.npy"
    joints.parent.mkdir()
    np.save(joints, np.zeros((10, 17, 3), np.float32))
    with pytest.raises(DatasetError, match="joint count"):
        inspect_path(joints)
