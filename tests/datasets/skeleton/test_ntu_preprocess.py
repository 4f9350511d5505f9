"""NTU preprocessing (denoise, actor selection, centring, padding), npz I/O and the official splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from evaluators.datasets import DatasetError, load_dataset
from evaluators.datasets.skeleton.ntu import parse_skeleton_text, read_skeleton
from evaluators.datasets.skeleton.ntu_preprocess import (
    ctvm_to_rows,
    one_hot,
    preprocess_skeleton,
    read_npz,
    rows_to_ctvm,
    select_actors,
)
from evaluators.datasets.skeleton.ntu_splits import (
    NTU60_XSUB_TRAIN,
    NTU120_XSET_TRAIN,
    NTU120_XSUB_TEST,
    NTU120_XSUB_TRAIN,
    RULES,
    split_indices,
)
from tests.conftest import REPO, need_shared
from tests.datasets.skeleton.helpers import NTU_SAMPLES, person, skeleton_text


@pytest.mark.parametrize("name", sorted(NTU_SAMPLES))
def test_real_sample_centred_on_first_frame_spine_and_padded(name):
    rec = read_skeleton(need_shared("ntu_rgbd", f"{name}.skeleton"))
    rows, n = preprocess_skeleton(rec)
    frames, bodies = NTU_SAMPLES[name]
    assert rows.shape == (300, 150) and rows.dtype == np.float32 and n == frames
    x = rows.reshape(300, 2, 25, 3)
    np.testing.assert_array_equal(x[0, 0, 1], 0)  # joint 2 of actor 1 in the first frame is the origin
    assert (x[n:] == 0).all() and (np.abs(x[:n, 0]).sum(axis=(1, 2)) > 0).all()
    assert ((np.abs(x[:n, 1]).sum() > 0) == (bodies == 2))
    if bodies == 1:  # single track: no denoising, so it is the raw track minus one origin (independent check)
        want = rec.joints[:, 0] - rec.joints[0, 0, 1]
        np.testing.assert_allclose(x[:n, 0], want, atol=1e-6)
    dup, _ = preprocess_skeleton(rec, single_actor="duplicate")  # the NTU-120 script's fill
    d = dup.reshape(300, 2, 25, 3)
    if bodies == 1:
        np.testing.assert_array_equal(d[:, 1], d[:, 0])


def _rec(frames):
    return parse_skeleton_text(skeleton_text(frames), "S001C001P001R001A001.skeleton")


def test_denoising_drops_short_and_flat_tracks_and_keeps_two_most_moving():
    rng = np.random.default_rng(0)
    T = 40
    a = person(rng, T)
    b = person(rng, T, centre=(1.0, 0, 3))
    b += np.linspace(0, 1, T)[:, None, None] * np.array([0.5, 0, 0])  # b moves a lot -> actor 1
    blip = person(rng, 8, centre=(-1, 0, 3))  # <= 11 frames: dropped by length
    flat = person(rng, T, centre=(0, -0.8, 2.5), spread=(1.5, 0.1, 0.2))  # x-spread >> y: dropped by spread
    frames = []
    for f in range(T):
        bodies = [("A", a[f]), ("B", b[f]), ("F", flat[f])]
        if 10 <= f < 18:
            bodies.append(("S", blip[f - 10]))
        frames.append(bodies)
    joints, n = select_actors(_rec(frames))
    assert n == 2 and joints.shape == (T, 2, 25, 3)
    np.testing.assert_allclose(joints[:, 0], b, atol=1e-5)  # largest motion first
    np.testing.assert_allclose(joints[:, 1], a, atol=1e-5)


def test_empty_frames_dropped_and_id_switch_joins_actor_one():
    rng = np.random.default_rng(1)
    a = person(rng, 30)
    a2 = person(rng, 30, centre=(0.1, 0, 3))
    frames = [[("A", a[f])] for f in range(15)] + [[]] * 3 + [[("A2", a2[f])] for f in range(15, 30)]
    joints, n = select_actors(_rec(frames))
    # 3 empty frames dropped; the two non-overlapping tracks both fill actor 1 (get_two_actors_points)
    assert joints.shape[0] == 30 and n == 2
    np.testing.assert_allclose(joints[:15, 0], a[:15], atol=1e-5)
    np.testing.assert_allclose(joints[15:, 0], a2[15:], atol=1e-5)
    assert (joints[:, 1] == 0).all()


def test_unusable_sequences_raise():
    rng = np.random.default_rng(2)
    with pytest.raises(DatasetError, match="no skeleton"):
        select_actors(_rec([[] for _ in range(5)]))
    a, b = person(rng, 10), person(rng, 10)
    with pytest.raises(DatasetError, match="shorter than 12"):
        select_actors(_rec([[("A", a[f]), ("B", b[f])] for f in range(10)]))


def test_row_layout_matches_mamp_reshape():
    rng = np.random.default_rng(3)
    rows = rng.normal(size=(2, 5, 150)).astype(np.float32)
    x = rows_to_ctvm(rows)
    n, t, m, v, c = 1, 3, 1, 7, 2
    assert x[n, c, t, v, m] == rows[n, t, m * 75 + v * 3 + c]
    np.testing.assert_array_equal(ctvm_to_rows(x), rows)


def _cfg(name: str) -> dict:
    cfg = yaml.safe_load((REPO / "configs" / "dataset" / f"{name}.yaml").read_text())
    cfg.pop("scales", None)
    return cfg


@pytest.mark.parametrize("name", ["ntu60_xsub", "ntu60_xview", "ntu120_xsub", "ntu120_xset",
                                  "pku1_xsub", "pku1_xview", "pku2_xsub", "pku2_xview"])
def test_missing_root_raises_with_layout_env_and_url(name, monkeypatch):
    cfg = _cfg(name)
    monkeypatch.delenv(cfg["env_var"], raising=False)
    with pytest.raises(DatasetError) as ei:
        load_dataset(cfg)
    msg = str(ei.value)
    assert cfg["env_var"] in msg and cfg["url"] in msg and "Expected layout" in msg
    with pytest.raises(DatasetError, match="not found"):
        load_dataset({**cfg, "root": "/nonexistent/ntu"})


def test_real_folder_loads_through_registered_names(cache_env):
    root = need_shared("ntu_rgbd")
    ds = load_dataset({**_cfg("ntu60_xview"), "root": str(root)})
    train, test = ds.split("train"), ds.split("test")
    assert train.names == ["S001C003P008R002A058"] and len(test) == 3  # camera 3 train, camera 1 test
    assert train.data.shape == (1, 3, 300, 25, 2) and train.labels.tolist() == [57]
    assert train.valid_frames.tolist() == [70] and ds.num_classes == 60
    assert ds.info["skipped_missing"] == 535
    assert any(p.name.startswith("ntu-arrays-") for p in cache_env.iterdir())  # cache written
    ds2 = load_dataset({**_cfg("ntu60_xview"), "root": str(root)})  # second load: from the cache
    np.testing.assert_array_equal(ds2.split("test").data, test.data)


def test_split_rules_use_the_official_ids():
    assert len(NTU60_XSUB_TRAIN) == 20 and len(NTU120_XSUB_TRAIN) == 53 and len(NTU120_XSUB_TEST) == 53
    assert set(NTU120_XSUB_TRAIN) | set(NTU120_XSUB_TEST) == set(range(1, 107))
    assert NTU120_XSET_TRAIN == tuple(range(2, 33, 2))
    assert RULES["ntu60_xview"][1:] == ((2, 3), (1,))
    names = ["S002C001P002R001A001", "S001C002P001R001A001", "S001C001P001R001A002", "S001C001P003R001A001"]
    got = split_indices(names, "ntu60_xsub")
    assert got["train"].tolist() == [2, 1, 0] and got["test"].tolist() == [3]  # by subject id, then name
    got = split_indices(names, "ntu60_xview")
    assert got["train"].tolist() == [1] and got["test"].tolist() == [2, 3, 0]
    got = split_indices(names, "ntu120_xset")
    assert got["train"].tolist() == [0] and sorted(got["test"].tolist()) == [1, 2, 3]
    with pytest.raises(DatasetError, match="P050"):
        split_indices(["S001C001P050R001A001"], "ntu60_xsub")


def test_npz_round_trip_and_bad_npz(synth, tmp_path):
    tr, te = synth.split("train"), synth.split("test")
    path = tmp_path / "NTU60_XSub.npz"
    np.savez(path, x_train=ctvm_to_rows(tr.data), y_train=one_hot(tr.labels, 60),
             x_test=ctvm_to_rows(te.data), y_test=one_hot(te.labels, 60))
    for cfg in ({**_cfg("ntu60_xsub"), "npz": str(path)}, {**_cfg("ntu60_xsub"), "root": str(tmp_path)}):
        ds = load_dataset(cfg)
        np.testing.assert_array_equal(ds.split("train").data, tr.data)
        np.testing.assert_array_equal(ds.split("test").labels, te.labels)
        np.testing.assert_array_equal(ds.split("test").valid_frames, te.valid_frames)
        assert ds.split("train").names[:2] == ["train_0", "train_1"]
    bad = {"missing key": dict(x_train=np.zeros((1, 300, 150)), y_train=np.eye(60)[:1]),
           "wrong width": dict(x_train=np.zeros((1, 300, 149)), y_train=np.eye(60)[:1],
                               x_test=np.zeros((1, 300, 150)), y_test=np.eye(60)[:1]),
           "not one-hot": dict(x_train=np.zeros((1, 300, 150)), y_train=np.ones((1, 60)),
                               x_test=np.zeros((1, 300, 150)), y_test=np.eye(60)[:1])}
    for what, arrays in bad.items():
        p = tmp_path / f"bad_{what.replace(' ', '_')}.npz"
        np.savez(p, **arrays)
        with pytest.raises(DatasetError) as ei:
            read_npz(p, 60)
        assert str(p) in str(ei.value), what
    with pytest.raises(DatasetError, match="not found"):
        load_dataset({**_cfg("ntu60_xsub"), "npz": str(tmp_path / "absent.npz")})


def test_sample_list_restricts_and_unknown_names_raise(tmp_path, cache_env):
    root = tmp_path / "ntu"
    root.mkdir()
    for name in ("S001C001P001R001A011", "S002C001P003R001A003"):
        src = need_shared("ntu_rgbd", f"{name}.skeleton")
        (root / src.name).write_bytes(src.read_bytes())
    lst = tmp_path / "samples.txt"
    lst.write_text("S001C001P001R001A011\n")
    ds = load_dataset({**_cfg("ntu60_xsub"), "root": str(root), "sample_list": str(lst)})
    assert ds.split("train").names == ["S001C001P001R001A011"] and len(ds.split("test")) == 0
    lst.write_text("S001C001P001R001A011\nS009C001P001R001A001\n")
    with pytest.raises(DatasetError, match="S009C001P001R001A001") as ei:
        load_dataset({**_cfg("ntu60_xsub"), "root": str(root), "sample_list": str(lst)})
    assert str(lst) in str(ei.value)


def test_truncated_file_in_dataset_folder_names_the_file(tmp_path, cache_env):
    root = tmp_path / "ntu"
    root.mkdir()
    src = need_shared("ntu_rgbd", "S001C001P001R001A011.skeleton")
    (root / src.name).write_bytes(src.read_bytes()[:5000])
    ds = load_dataset({**_cfg("ntu60_xsub"), "root": str(root), "missing_list": "none"})
    with pytest.raises(DatasetError) as ei:
        ds.split("train")
    assert str(Path(root / src.name)) in str(ei.value) and "truncated" in str(ei.value)


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_inspect_npz_and_synthetic_folder(synth, tmp_path):
    from evaluators.datasets import inspect_path

    tr = synth.split("train")
    p = tmp_path / "NTU60_XSub.npz"
    np.savez(p, x_train=ctvm_to_rows(tr.data[:4]), y_train=one_hot(tr.labels[:4], 60),
             x_test=ctvm_to_rows(tr.data[4:6]), y_test=one_hot(tr.labels[4:6], 60))
    s = inspect_path(p)
    assert s["format"] == "ntu_npz" and s["train"]["samples"] == 4 and s["test"]["values_per_frame"] == 150
    assert s["train"]["mean_valid_frames"] == pytest.approx(float(tr.valid_frames[:4].mean()))
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(3))
    with pytest.raises(DatasetError, match="not a format"):
        inspect_path(other)
    folder = inspect_path(next(synth.cache_dir.glob("synth_ntu-*")))
    assert folder["samples"] == 360 and folder["splits"]["ntu60_xsub"] == {"train": 180, "test": 180}
