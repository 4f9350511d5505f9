"""A dataset file never makes the suite read outside the dataset folder.

For every loader that builds paths from data (split ids, COCO ``file_name``, MPII ``image``, NTU and
PKU file names), a tiny dataset in the published layout is written under ``tmp_path/ds`` and a
readable decoy under ``tmp_path/outside``. Three attacks per loader, where the format allows them:
an id with ``../`` climbing out, an absolute id, and a symlink inside the folder pointing at the
decoy. Each must raise one :class:`DatasetError` naming the file (and line) and the id; before
``evaluators/core/paths.py`` every one of them loaded the decoy without an error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from evaluators.core.errors import DatasetError
from evaluators.core.paths import ALLOW_SYMLINKS_ENV, resolve_inside
from evaluators.datasets import load_dataset

REPO = Path(__file__).resolve().parents[2]
CAPTION = "a person walks forward#a/DET person/NOUN walk/VERB forward/ADV#0.0#0.0\n"


# -- resolve_inside on its own -------------------------------------------------------------------------------
def test_resolve_inside_accepts_ids_that_stay_inside(tmp_path):
    (tmp_path / "sub").mkdir()
    assert resolve_inside(tmp_path, "a.npy", source="s.txt") == tmp_path / "a.npy"
    assert resolve_inside(tmp_path, "sub/../b.npy", source="s.txt") == tmp_path / "b.npy"
    assert resolve_inside(tmp_path, "./sub/c.npy", source="s.txt") == tmp_path / "sub" / "c.npy"


@pytest.mark.parametrize("rel, needle", [("../x.npy", "outside the dataset folder"),
                                         ("sub/../../x.npy", "outside the dataset folder"),
                                         ("/etc/passwd", "absolute path"),
                                         ("C:/x.npy", "absolute path"),
                                         ("", "empty"),
                                         (".", "dataset folder itself")])
def test_resolve_inside_refuses_escaping_ids(tmp_path, rel, needle):
    with pytest.raises(DatasetError) as e:
        resolve_inside(tmp_path, rel, source=tmp_path / "train.txt", line=7)
    msg = str(e.value)
    assert needle in msg and "train.txt:7" in msg and repr(rel) in msg and "\n" not in msg


def test_symlinks_inside_and_root_link(tmp_path, monkeypatch):
    """A link to a file inside the root is fine; a link leading out is refused unless opted in; the
    root itself may be a link (containment is checked against its real location)."""
    monkeypatch.delenv(ALLOW_SYMLINKS_ENV, raising=False)
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir(), outside.mkdir()
    (root / "real.npy").write_bytes(b"x")
    (outside / "decoy.npy").write_bytes(b"x")
    (root / "inner.npy").symlink_to(root / "real.npy")
    (root / "out.npy").symlink_to(outside / "decoy.npy")
    (tmp_path / "root_link").symlink_to(root, target_is_directory=True)
    assert resolve_inside(root, "inner.npy", source="s") == root / "inner.npy"
    assert resolve_inside(tmp_path / "root_link", "real.npy", source="s") == tmp_path / "root_link" / "real.npy"
    with pytest.raises(DatasetError, match="symlink"):
        resolve_inside(root, "out.npy", source="s")
    with pytest.raises(DatasetError, match="symlink"):
        resolve_inside(tmp_path / "root_link", "out.npy", source="s")
    assert resolve_inside(root, "out.npy", source="s", allow_symlinks=True) == root / "out.npy"
    monkeypatch.setenv(ALLOW_SYMLINKS_ENV, "1")
    assert resolve_inside(root, "out.npy", source="s") == root / "out.npy"
    with pytest.raises(DatasetError, match="outside"):  # the opt-in never admits ../
        resolve_inside(root, "../outside/decoy.npy", source="s")


# -- one tiny dataset per loader ------------------------------------------------------------------------------
def _t2m(tmp: Path, attack: str, *, kit: bool = False) -> tuple[dict, str, str]:
    """HumanML3D (texts/) or KIT-ML (TMR annotations.json + splits/) layout with one good and one bad id."""
    dim = 251 if kit else 263
    root, out = tmp / "ds", tmp / "outside"
    for d in (root / "new_joint_vecs", root / "texts", out):
        d.mkdir(parents=True, exist_ok=True)
    motion = np.random.default_rng(0).normal(size=(60, dim)).astype(np.float32)
    np.save(root / "Mean.npy", np.zeros(dim, np.float32))
    np.save(root / "Std.npy", np.ones(dim, np.float32))
    np.save(root / "new_joint_vecs" / "000001.npy", motion)
    np.save(out / "decoy.npy", motion)
    (out / "decoy.txt").write_text(CAPTION)
    bad = {"dotdot": "../../outside/decoy", "absolute": str(out / "decoy"), "symlink": "linked"}[attack]
    if attack == "symlink":
        (root / "new_joint_vecs" / "linked.npy").symlink_to(out / "decoy.npy")
    ids = ["000001", bad]
    if kit:  # TMR layout: captions from annotations.json, split files under splits/
        (root / "texts").rmdir()
        ann = {i: {"path": i, "duration": 3.0, "annotations": [{"text": "a person walks", "start": 0.0,
                                                                "end": 3.0}]} for i in ids}
        (root / "annotations.json").write_text(json.dumps(ann))
        split = root / "splits" / "train.txt"
        split.parent.mkdir()
    else:
        (root / "texts" / "000001.txt").write_text(CAPTION)
        if attack == "symlink":
            (root / "texts" / "linked.txt").write_text(CAPTION)
        split = root / "train.txt"
    split.write_text("\n".join(ids) + "\n")
    cfg = {"name": "kit_ml" if kit else "humanml3d", "root": str(root)}
    return cfg, f"{split}:2", bad


def _coco(tmp: Path, attack: str) -> tuple[dict, str, str]:
    root, out = tmp / "ds", tmp / "outside"
    for d in (root / "annotations", root / "val2017", out):
        d.mkdir(parents=True, exist_ok=True)
    (root / "val2017" / "1.jpg").write_bytes(b"jpg")
    (out / "decoy.jpg").write_bytes(b"jpg")
    bad = {"dotdot": "../../outside/decoy.jpg", "absolute": str(out / "decoy.jpg"), "symlink": "2.jpg"}[attack]
    if attack == "symlink":
        (root / "val2017" / "2.jpg").symlink_to(out / "decoy.jpg")
    ann = {"images": [{"id": 1, "file_name": "1.jpg", "width": 640, "height": 480},
                      {"id": 2, "file_name": bad, "width": 640, "height": 480}],
           "annotations": [{"id": k, "image_id": k, "bbox": [10, 10, 50, 80], "area": 4000, "iscrowd": 0,
                            "num_keypoints": 17, "keypoints": [20, 20, 2] * 17, "category_id": 1} for k in (1, 2)]}
    path = root / "annotations" / "person_keypoints_val2017.json"
    path.write_text(json.dumps(ann))
    return {"name": "coco_kpt", "root": str(root)}, str(path), bad


def _mpii(tmp: Path, attack: str) -> tuple[dict, str, str]:
    root, out = tmp / "ds", tmp / "outside"
    for d in (root / "annotations", root / "images", out):
        d.mkdir(parents=True, exist_ok=True)
    (root / "images" / "1.jpg").write_bytes(b"jpg")
    (out / "decoy.jpg").write_bytes(b"jpg")
    bad = {"dotdot": "../../outside/decoy.jpg", "absolute": str(out / "decoy.jpg"), "symlink": "2.jpg"}[attack]
    if attack == "symlink":
        (root / "images" / "2.jpg").symlink_to(out / "decoy.jpg")
    entry = {"center": [100.0, 120.0], "scale": 1.5, "joints": [[50.0, 60.0]] * 16, "joints_vis": [1] * 16}
    path = root / "annotations" / "mpii_val.json"
    path.write_text(json.dumps([{"image": "1.jpg", **entry}, {"image": bad, **entry}]))
    return {"name": "mpii", "root": str(root)}, str(path), bad


def _ntu_text(frames: int = 3) -> str:
    joint = " ".join(["0.1"] * 11 + ["2"])
    body = " ".join(["72057594037931101"] + ["0"] * 8 + ["2"])
    lines = [str(frames)]
    for _ in range(frames):
        lines += ["1", body, "25"] + [joint] * 25
    return "\r\n".join(lines) + "\r\n"


def _ntu(tmp: Path, attack: str) -> tuple[dict, str, str]:
    root, out = tmp / "ds", tmp / "outside"
    root.mkdir(parents=True), out.mkdir()
    (root / "S001C001P001R001A001.skeleton").write_text(_ntu_text())
    (out / "S001C001P002R001A001.skeleton").write_text(_ntu_text())
    link = root / "S001C001P002R001A001.skeleton"
    link.symlink_to(out / "S001C001P002R001A001.skeleton")
    return ({"name": "ntu60_xsub", "root": str(root), "missing_list": "none", "cache": False},
            str(link), "S001C001P002R001A001.skeleton")


def _pku(tmp: Path, attack: str) -> tuple[dict, str, str]:
    root, out = tmp / "ds", tmp / "outside"
    for d in (root / "skeleton", root / "label", out):
        d.mkdir(parents=True, exist_ok=True)
    rows = "\n".join(" ".join(["0.5"] * 150) for _ in range(20)) + "\n"
    for v in ("0002-L", "0003-L"):
        (root / "label" / f"{v}.txt").write_text("1,0,10,1\n")
    (root / "skeleton" / "0002-L.txt").write_text(rows)
    (out / "0003-L.txt").write_text(rows)
    (root / "skeleton" / "0003-L.txt").symlink_to(out / "0003-L.txt")
    (root / "cross-subject.txt").write_text("Training videos:\n0002-L,\nValidation videos:\n0003-L,\n")
    return {"name": "pku1_xsub", "root": str(root)}, str(root / "skeleton"), "0003-L.txt"


def _touch_every_file(ds) -> None:
    """Make a lazy dataset read what it names (the old code read the decoy here, without an error)."""
    if hasattr(ds, "split_names") and hasattr(ds, "split"):  # text-to-motion
        for s in ds.split_names:
            ds.split(s)
    elif hasattr(ds, "splits") and isinstance(ds.splits, dict):  # pose2d
        for insts in ds.splits.values():
            for i in insts:
                assert Path(i["image_path"]).exists()
    else:  # skeleton
        for s in ("train", "test"):
            ds.split(s)


BUILDERS = {"humanml3d": _t2m, "kit_ml": lambda t, a: _t2m(t, a, kit=True), "coco": _coco, "mpii": _mpii,
            "ntu": _ntu, "pku": _pku}
CASES = [(b, a) for b in ("humanml3d", "kit_ml", "coco", "mpii") for a in ("dotdot", "absolute", "symlink")] \
    + [("ntu", "symlink"), ("pku", "symlink")]  # NTU/PKU names come from a folder listing: only links can lead out


@pytest.mark.parametrize("loader, attack", CASES, ids=[f"{b}-{a}" for b, a in CASES])
def test_loader_refuses_paths_leading_outside(tmp_path, monkeypatch, loader, attack):
    monkeypatch.delenv(ALLOW_SYMLINKS_ENV, raising=False)
    cfg, where, bad = BUILDERS[loader](tmp_path, attack)
    with pytest.raises(DatasetError) as e:
        _touch_every_file(load_dataset(cfg))
    msg = str(e.value)
    assert where in msg and bad in msg and "\n" not in msg, msg
    assert ("symlink" if attack == "symlink" else "absolute" if attack == "absolute" else "outside") in msg


def _sample_names(loader: str, ds) -> list[str]:
    if loader in ("humanml3d", "kit_ml"):
        return sorted(s.name for s in ds.split("train"))
    if loader in ("coco", "mpii"):
        return sorted(Path(i["image_path"]).name for i in ds.splits["val"])
    return sorted(n for s in ("train", "test") for n in ds.split(s).names)


@pytest.mark.parametrize("loader, linked", [("humanml3d", "linked"), ("kit_ml", "linked"), ("coco", "2.jpg"),
                                            ("mpii", "2.jpg"), ("ntu", "S001C001P002R001A001"),
                                            ("pku", "0003-L_0")])
def test_symlink_farm_loads_with_the_opt_in(tmp_path, monkeypatch, loader, linked):
    """``MOTIONREPRO_ALLOW_SYMLINKS=1`` admits links leading out (a root that is a symlink farm): the
    linked sample is loaded like the others."""
    monkeypatch.setenv(ALLOW_SYMLINKS_ENV, "1")
    cfg, _, _ = BUILDERS[loader](tmp_path, "symlink")
    assert linked in _sample_names(loader, load_dataset(cfg))


@pytest.mark.parametrize("loader, attack", [("humanml3d", "dotdot"), ("humanml3d", "absolute"),
                                            ("humanml3d", "symlink"), ("kit_ml", "dotdot"), ("ntu", "symlink")])
@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_inspect_cli_exits_2_with_one_line(tmp_path, loader, attack):
    """``python -m evaluators.datasets inspect ROOT`` names the file and the id, exit 2."""
    cfg, where, bad = BUILDERS[loader](tmp_path, attack)
    env = {k: v for k, v in os.environ.items() if k != ALLOW_SYMLINKS_ENV}
    env["PYTHONPATH"] = str(REPO)
    r = subprocess.run([sys.executable, "-m", "evaluators.datasets", "inspect", cfg["root"]], capture_output=True,
                       text=True, env=env, cwd=REPO, timeout=300)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, (r.returncode, r.stderr)
    assert lines[0].startswith("DatasetError: ") and bad in lines[0] and where in lines[0]
