"""PKU-MMD I/II: skeleton + label text formats, official split files, 300-frame alignment, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from evaluators.datasets import DatasetError, inspect_path, load_dataset
from evaluators.datasets.skeleton.pku import read_pku_labels, read_pku_skeleton, read_split_file


def _write_root(root, version=1, n_frames=400, labels="1,10,90,1\n5,100,400,2\n51,300,330,1\n"):
    (root / "skeleton").mkdir(parents=True)
    (root / "label").mkdir()
    rng = np.random.default_rng(0)
    videos = ["0002-L", "0002-M", "0003-R"]
    for v in videos:
        seq = rng.normal(0, 0.3, (n_frames, 150))
        seq[:, 2:75:3] += 2.5
        seq[:, 75:] = 0  # one person: the second body is zero, as the README says
        seq[200:260] = 0  # a stretch with nobody
        np.savetxt(root / "skeleton" / f"{v}.txt", seq, fmt="%.6f")
        (root / "label" / f"{v}.txt").write_text(labels)
    sub, view = ("cross-subject.txt", "cross-view.txt") if version == 1 else \
        ("cross_subject_v2.txt", "cross_view_v2.txt")
    (root / sub).write_text("Training videos: \n0002-L, 0002-M\nValidation videos: \n0003-R\n")
    (root / view).write_text("Training videos: \n0002-M, 0003-R\n")
    return videos


@pytest.mark.parametrize("version", [1, 2])
def test_instances_splits_and_alignment(tmp_path, version):
    _write_root(tmp_path, version)
    ds = load_dataset({"name": f"pku{version}_xsub", "root": str(tmp_path)})
    tr, te = ds.split("train"), ds.split("test")
    assert ds.num_classes == 51 and ds.benchmark == "xsub"
    assert tr.names == ["0002-L_0", "0002-L_1", "0002-L_2", "0002-M_0", "0002-M_1", "0002-M_2"]
    assert te.names == ["0003-R_0", "0003-R_1", "0003-R_2"]
    assert tr.labels.tolist() == [0, 4, 50] * 2
    # rows [start, end): 80 frames; 350 frames truncated to 300; 30 frames
    assert te.data.shape == (3, 3, 300, 25, 2)
    seq = read_pku_skeleton(tmp_path / "skeleton" / "0003-R.txt")
    np.testing.assert_allclose(te.data[0, :, :80, :, 0], seq[10:90, :75].reshape(80, 25, 3).transpose(2, 0, 1))
    assert (te.data[0, :, 80:] == 0).all() and (te.data[..., 1] == 0).all()
    np.testing.assert_allclose(te.data[1, :, :, :, 0], seq[100:400, :75].reshape(300, 25, 3).transpose(2, 0, 1))
    assert te.valid_frames.tolist() == [80, 240, 30]  # 60 empty frames inside the second instance
    view = load_dataset({"name": f"pku{version}_xview", "root": str(tmp_path)})
    assert [n[:6] for n in view.split("train").names[::3]] == ["0002-M", "0003-R"]


def test_all_zero_instances_are_skipped(tmp_path):
    _write_root(tmp_path, labels="1,10,90,1\n7,205,255,1\n")
    ds = load_dataset({"name": "pku1_xsub", "root": str(tmp_path)})
    assert ds.split("test").names == ["0003-R_0"]


def test_split_file_naming_unknown_video_raises(tmp_path):
    _write_root(tmp_path)
    (tmp_path / "cross-subject.txt").write_text("Training videos: \n0002-L, 9999-X\n")
    with pytest.raises(DatasetError, match="9999-X") as ei:
        load_dataset({"name": "pku1_xsub", "root": str(tmp_path)})
    assert "cross-subject.txt" in str(ei.value)
    ok = load_dataset({"name": "pku1_xsub", "root": str(tmp_path), "allow_unknown_split_names": True})
    assert len(ok.split("train")) == 3


BAD_SKELETONS = {
    "empty": "",
    "short row": " ".join(["0.1"] * 149) + "\n",
    "nan": " ".join(["nan"] + ["0.1"] * 149) + "\n",
    "inf": " ".join(["0.1"] * 149 + ["-inf"]) + "\n",
    "text": " ".join(["x"] + ["0.1"] * 149) + "\n",
}
BAD_LABELS = {"empty": "", "two fields": "1,10\n", "text": "a,1,2,1\n", "bad action": "52,1,20,1\n",
              "reversed": "3,50,20,1\n"}


@pytest.mark.parametrize("case", sorted(BAD_SKELETONS))
def test_bad_skeleton_files(tmp_path, case):
    p = tmp_path / "0001-L.txt"
    p.write_text(BAD_SKELETONS[case])
    with pytest.raises(DatasetError) as ei:
        read_pku_skeleton(p)
    assert str(p) in str(ei.value)


@pytest.mark.parametrize("case", sorted(BAD_LABELS))
def test_bad_label_files(tmp_path, case):
    p = tmp_path / "0001-L.txt"
    p.write_text(BAD_LABELS[case])
    with pytest.raises(DatasetError) as ei:
        read_pku_labels(p)
    assert str(p) in str(ei.value)


def test_missing_pieces_raise(tmp_path):
    _write_root(tmp_path)
    (tmp_path / "label" / "0002-M.txt").unlink()
    ds = load_dataset({"name": "pku1_xsub", "root": str(tmp_path)})
    with pytest.raises(DatasetError, match="no label file"):
        ds.split("train")
    (tmp_path / "cross-view.txt").unlink()
    with pytest.raises(DatasetError, match="split file not found"):
        load_dataset({"name": "pku1_xview", "root": str(tmp_path)})
    with pytest.raises(DatasetError, match="no training-video list"):
        (tmp_path / "bad.txt").write_text("Training videos:\n")
        read_split_file(tmp_path / "bad.txt")


def test_label_start_beyond_sequence_raises(tmp_path):
    _write_root(tmp_path, n_frames=50, labels="1,10,40,1\n2,60,90,1\n")
    ds = load_dataset({"name": "pku1_xsub", "root": str(tmp_path)})
    with pytest.raises(DatasetError, match=r"\[60, 90\) is not within the 50-frame"):
        ds.split("train")


def test_label_end_beyond_sequence_raises_instead_of_clipping(tmp_path):
    _write_root(tmp_path, n_frames=50, labels="1,10,40,1\n2,30,51,1\n")
    ds = load_dataset({"name": "pku1_xsub", "root": str(tmp_path)})
    with pytest.raises(DatasetError, match=r"0002-L.txt: label row 2: interval \[30, 51\)"):
        ds.split("train")


def test_inspect_pku(tmp_path):
    _write_root(tmp_path)
    s = inspect_path(tmp_path)
    assert s["format"] == "pku_mmd_folder" and s["videos"] == 3 and s["instances"] == 9
    f = inspect_path(tmp_path / "skeleton" / "0002-L.txt")
    assert f["format"] == "pku_mmd_skeleton" and f["frames"] == 400 and f["bodies"] == 1
    assert f["actions"] == [1, 5, 51]
    json.dumps(s), json.dumps(f)


def test_pku_npz_in_root_is_used(tmp_path):
    from evaluators.datasets.skeleton.ntu_preprocess import one_hot

    rng = np.random.default_rng(0)
    x = np.zeros((3, 300, 150), np.float32)
    x[:, :50] = rng.normal(size=(3, 50, 150))
    np.savez(tmp_path / "PKUv2_XView.npz", x_train=x[:2], y_train=one_hot(np.array([0, 50]), 51),
             x_test=x[2:], y_test=one_hot(np.array([7]), 51))
    ds = load_dataset({"name": "pku2_xview", "root": str(tmp_path)})
    assert ds.split("train").labels.tolist() == [0, 50] and ds.split("test").valid_frames.tolist() == [50]
    np.testing.assert_array_equal(ds.split("test").data[0, :, :, :, 0], x[2, :, :75].reshape(300, 25, 3).transpose(2, 0, 1))
