"""The ``humanml3d`` dataset entry and the HumanML3D/KIT-ML file inspectors.

The motion representation itself (``extract_features`` / ``recover_from_ric``, DESIGN.md
"Dataset functions") is :mod:`evaluators.datasets.motion.humanml3d_features`, re-exported here
so the published names stay where they were.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evaluators.core.paths import resolve_inside
from evaluators.datasets.base import DatasetError, register_dataset, register_inspector, resolve_root
from evaluators.datasets.checks import check_npy_size, load_npy, numeric_array
from evaluators.datasets.motion.humanml3d_features import (
    HUMANML3D_FPS,
    KIT_FPS,
    T2M_TARGET_BONE_LENGTHS,
    extract_features,
    feature_slices,
    features_spec,
    recover_from_ric,
    recover_full_positions,
    recover_root_rot_pos,
    t2m_target_offsets,
)
from evaluators.datasets.motion.kinematics import KIT
from evaluators.datasets.motion.t2m_dataset import (
    MotionTextDataset,
    load_features,
    load_stat,
    read_split_lines,
)
from evaluators.datasets.motion.t2m_text import read_caption_file

__all__ = [
    "HUMANML3D_FPS", "KIT_FPS", "T2M_TARGET_BONE_LENGTHS", "extract_features", "feature_slices", "features_spec",
    "recover_from_ric", "recover_full_positions", "recover_root_rot_pos", "t2m_target_offsets",
    "t2m_root", "load_motion_text", "load", "inspect_t2m_file", "inspect_t2m_folder",
]



def t2m_root(root):
    """Accept either the folder holding ``new_joint_vecs/`` or its parent (``.../HumanML3D``)."""
    root = Path(root)
    for cand in (root, root / "HumanML3D", root / "KIT-ML"):
        if (cand / "new_joint_vecs").is_dir():
            return cand
    return root


def load_motion_text(cfg: dict, *, joints_num: int, fps: float, min_len: int):
    return MotionTextDataset(t2m_root(resolve_root(cfg)), name=cfg["name"], source=cfg.get("source", "real"),
                             fps=cfg.get("fps", fps), joints_num=joints_num,
                             min_motion_length=cfg.get("min_motion_length", min_len),
                             max_motion_length=cfg.get("max_motion_length", 196),
                             unit_length=cfg.get("unit_length", 4), seed=cfg.get("seed", 0),
                             missing=cfg.get("missing", "error"))


@register_dataset("humanml3d", task="text2motion", source="real")
def load(cfg: dict):
    """HumanML3D in its published layout (root: the ``HumanML3D/`` folder or its parent)."""
    return load_motion_text(cfg, joints_num=22, fps=HUMANML3D_FPS, min_len=40)


@register_inspector
def inspect_t2m_file(path):
    """``new_joint_vecs`` [T, 263|251], ``new_joints`` [T, 22|21, 3] npy, or a ``texts/*.txt``."""
    if path.is_file() and path.suffix == ".npy" and path.parent.name in ("new_joint_vecs", "new_joints"):
        if path.parent.name == "new_joint_vecs":
            arr = load_features(path)
            spec = features_spec(arr.shape[1])
            return {"format": "humanml3d new_joint_vecs", "frames": int(arr.shape[0]), "feat_dim": int(arr.shape[1]),
                    "joints": spec.joints_num, "dataset": "KIT-ML" if spec is KIT else "HumanML3D",
                    "duration_s_at_fps": round(arr.shape[0] / (KIT_FPS if spec is KIT else HUMANML3D_FPS), 3),
                    "foot_contact_fraction": float(arr[:, -4:].mean())}
        arr = numeric_array(load_npy(path, "joints file"), path, "joints")
        if arr.ndim != 3 or arr.shape[1:] not in ((22, 3), (21, 3)):
            raise DatasetError(f"wrong joint count: expected [T, 22|21, 3], got {arr.shape}", path=path)
        if len(arr) == 0:
            raise DatasetError("empty sequence (0 frames)", path=path)
        if not np.isfinite(arr).all():
            raise DatasetError("contains NaN or inf", path=path)
        return {"format": "humanml3d new_joints", "frames": int(arr.shape[0]), "joints": int(arr.shape[1]),
                "height_range": [float(arr[..., 1].min()), float(arr[..., 1].max())]}
    if path.is_file() and path.suffix == ".txt" and path.parent.name == "texts":
        caps = read_caption_file(path)
        return {"format": "humanml3d caption file", "captions": len(caps),
                "sub_clip_captions": sum(not c.whole_motion for c in caps),
                "first": caps[0].caption, "tokens_first": caps[0].tokens}
    return None


@register_inspector
def inspect_t2m_folder(path):
    """A HumanML3D/KIT-ML layout folder: splits, sample counts, feature width."""
    root = t2m_root(path) if path.is_dir() else None
    if root is None or not (root / "new_joint_vecs").is_dir():
        return None
    files = sorted((root / "new_joint_vecs").glob("*.npy"))
    dim = None
    if files:
        shape = check_npy_size(files[0], "motion file")  # the header only, checked against the file size
        if len(shape) != 2:
            raise DatasetError(f"expected features [T, D], got shape {shape}", path=files[0])
        dim = int(shape[1])
    mean = load_stat(root / "Mean.npy", dim) if (root / "Mean.npy").exists() else None
    dim = dim or (int(mean.shape[0]) if mean is not None else None)
    splits = {}
    for name in ("train", "val", "test", "train_val", "all"):
        for p in (root / f"{name}.txt", root / "splits" / f"{name}.txt"):
            if p.is_file():
                numbered = read_split_lines(p)
                ids = [i for _, i in numbered]
                vecs = [resolve_inside(root / "new_joint_vecs", f"{i}.npy", source=p, line=n) for n, i in numbered]
                splits[name] = {"ids": len(ids), "mirrored_M": sum(i.startswith("M") for i in ids),
                                "with_motion_file": sum(v.is_file() for v in vecs)}
                break
    return {"format": "humanml3d-layout dataset folder", "root": str(root), "motion_files": len(files),
            "caption_files": len(list((root / "texts").glob("*.txt"))) if (root / "texts").is_dir() else 0,
            "feat_dim": dim, "joints": features_spec(dim).joints_num if dim in (263, 251) else None,
            "has_mean_std": mean is not None and (root / "Std.npy").exists(), "splits": splits}
