"""``python -m evaluators.datasets inspect`` for NTU RGB+D files: ``.skeleton``, folders, npz, lists."""

from __future__ import annotations

import zipfile
from collections import Counter
from pathlib import Path

import numpy as np

from evaluators.core.paths import resolve_inside
from evaluators.datasets.base import DatasetError
from evaluators.datasets.skeleton.ntu_preprocess import read_npz
from evaluators.datasets.skeleton.ntu_reader import NAME_RE, parse_name, read_missing_list, read_skeleton
from evaluators.datasets.skeleton.ntu_splits import RULES

PARSE_ALL_LIMIT = 500  # a folder with at most this many files gets every file parsed


def _split_of(name: str) -> dict[str, str]:
    f = parse_name(name)
    out = {}
    for rule, (field, train, test) in RULES.items():
        out[rule] = "train" if f[field] in train else "test" if f[field] in test else "outside"
    return out


def skeleton_summary(path: Path) -> dict:
    rec = read_skeleton(path)
    stem = path.name[: -len(".skeleton")]
    out = {
        "format": "ntu_skeleton",
        "path": str(path),
        "frames": rec.num_frames,
        "bodies": rec.num_bodies,
        "body_ids": rec.body_ids,
        "joints": int(rec.joints.shape[2]),
        "frames_per_body": rec.present.sum(axis=0).astype(int).tolist(),
        "frames_without_body": int((rec.bodies_per_frame == 0).sum()),
        "max_bodies_in_a_frame": int(rec.bodies_per_frame.max()),
        "fields_per_joint": ["x", "y", "z", "depth_x", "depth_y", "color_x", "color_y",
                             "orient_w", "orient_x", "orient_y", "orient_z", "tracking_state"],
        "xyz_min": rec.joints[rec.present].reshape(-1, 3).min(0).round(4).tolist() if rec.present.any() else None,
        "xyz_max": rec.joints[rec.present].reshape(-1, 3).max(0).round(4).tolist() if rec.present.any() else None,
    }
    if NAME_RE.fullmatch(stem):
        out["sample"] = {"name": stem, **parse_name(stem)}
        out["splits"] = _split_of(stem)
    return out


def folder_summary(path: Path) -> dict | None:
    # rglob does not enter linked folders; a linked file must not lead outside the folder
    files = sorted(resolve_inside(path, p.relative_to(path), source=p) if p.is_symlink() else p
                   for p in path.rglob("*.skeleton") if NAME_RE.fullmatch(p.name[:-9]))
    if not files:
        return None
    names = [p.name[:-9] for p in files]
    fields = [parse_name(n) for n in names]
    out = {
        "format": "ntu_skeleton_folder",
        "path": str(path),
        "samples": len(files),
        "actions": len({f["action"] for f in fields}),
        "performers": len({f["performer"] for f in fields}),
        "cameras": sorted({f["camera"] for f in fields}),
        "setups": sorted({f["setup"] for f in fields}),
    }
    counts: dict[str, Counter] = {}
    for n in names:
        for rule, s in _split_of(n).items():
            counts.setdefault(rule, Counter())[s] += 1
    out["splits"] = {r: dict(c) for r, c in counts.items()}
    if len(files) <= PARSE_ALL_LIMIT:
        frames, bodies = [], []
        for p in files:
            rec = read_skeleton(p)  # raises DatasetError naming the broken file
            frames.append(rec.num_frames)
            bodies.append(rec.num_bodies)
        out["frames"] = {"min": min(frames), "max": max(frames), "mean": float(np.mean(frames))}
        out["bodies"] = dict(Counter(bodies))
    else:
        out["parsed"] = f"names only (more than {PARSE_ALL_LIMIT} files)"
    return out


def npz_summary(path: Path) -> dict | None:
    try:
        with zipfile.ZipFile(path) as zf:
            keys = {n[:-4] for n in zf.namelist()}
    except zipfile.BadZipFile:
        return None
    if not {"x_train", "y_train", "x_test", "y_test"} <= keys:
        return None

    arrays = read_npz(path)
    out: dict = {"format": "ntu_npz", "path": str(path)}
    for s, (x, y) in arrays.items():
        valid = (np.asarray(x).reshape(len(x), x.shape[1], -1) != 0).any(axis=2).sum(axis=1) if len(x) else np.zeros(0)
        out[s] = {"samples": int(len(x)), "frames": int(x.shape[1]), "values_per_frame": int(x.shape[2]),
                  "classes_present": int(len(np.unique(y))),
                  "mean_valid_frames": float(valid.mean()) if len(valid) else 0.0}
    return out


def inspect_ntu(path: Path) -> dict | None:
    if path.is_dir():
        return folder_summary(path)
    if path.suffix == ".skeleton":
        return skeleton_summary(path)
    if path.suffix == ".npz":
        return npz_summary(path)
    if path.suffix == ".txt" and "missing_skeletons" in path.name:
        names = read_missing_list(path)
        return {"format": "ntu_missing_skeleton_list", "path": str(path), "samples": len(names),
                "first": names[0], "last": names[-1]}
    return None


__all__ = ["inspect_ntu", "skeleton_summary", "folder_summary", "npz_summary", "DatasetError"]
