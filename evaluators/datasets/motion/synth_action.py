"""``synth_action``: a seeded HumanAct12-format pickle of action clips (12 classes).

Each clip is one HumanAct12 class rendered by the procedural body of ``motion_body.py``
(walk/run/jump/sit from the shared primitives; warm-up, drink, dumbbell curls, eat, steering,
phone, boxing, throw from arm-driven ones), with random tempo, body size, heading, start
position, length (``min_frames``..``max_frames`` at 20 fps) and a little joint noise. The
24 SMPL joints are our 22 plus two hand joints extending the forearms. ``poses`` [T, 72] holds
the local joint rotations of the 22-joint IK as axis-angle (hands zero) — the right shape and
kind, not SMPL-consistent (no SMPL model is available; the xyz loaders do not read it).

Written to ``cache_root()/synth_action/<cache_key>/humanact12poses.pkl`` (a staging folder renamed
into place, with a size/checksum manifest checked on open) and read
back by the real ``read_humanact12``. Splits: ``train`` (all clips, as HumanAct12) plus a
held-out ``test`` list (``test_names.txt``) so classifiers can be checked on unseen clips.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from evaluators.core.io import atomic_open, atomic_write_text
from evaluators.datasets.base import DatasetError, register_dataset
from evaluators.datasets.cache import build_staged, cache_key, cache_root, valid_or_discard
from evaluators.datasets.motion.action import HUMANACT12_CLASSES, SMPL24_CHAIN, ActionDataset, read_humanact12
from evaluators.datasets.motion.body import compose, pose_clip
from evaluators.datasets.motion.kinematics import T2M, inverse_kinematics

VERSION = 1
DEFAULTS = {"seed": 0, "clips_per_class": 30, "test_fraction": 0.25, "min_frames": 40, "max_frames": 90,
            "noise_m": 0.005}
CLASS_PRIMITIVE = {"warm_up": "warm_up", "walk": "walk", "run": "run", "jump": "jump", "drink": "drink",
                   "lift_dumbbell": "lift_dumbbell", "sit": "sit", "eat": "eat", "turn steering wheel": "steering",
                   "phone": "phone", "boxing": "boxing", "throw": "throw"}


def _params(cfg: dict) -> dict:
    return {k: type(v)(cfg.get(k, v)) for k, v in DEFAULTS.items()}


def _quat_to_rotvec(q: np.ndarray) -> np.ndarray:
    q = q * np.where(q[..., :1] < 0, -1.0, 1.0)
    s = np.linalg.norm(q[..., 1:], axis=-1, keepdims=True)
    angle = 2 * np.arctan2(s, q[..., :1])
    return np.where(s > 1e-12, q[..., 1:] / np.maximum(s, 1e-12) * angle, 2 * q[..., 1:])


def _clip(label: int, rng: np.random.Generator, p: dict) -> tuple[np.ndarray, np.ndarray]:
    n = int(rng.integers(p["min_frames"], p["max_frames"] + 1))
    prim = CLASS_PRIMITIVE[HUMANACT12_CLASSES[label]]
    tracks = compose([(prim, n, float(rng.uniform(0.7, 1.35)))], rng)
    joints = pose_clip(tracks, rng.uniform(0.85, 1.15) * rng.uniform(0.96, 1.04, size=22))
    yaw = rng.uniform(-np.pi, np.pi)
    c, s = np.cos(yaw), np.sin(yaw)
    joints = joints @ np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]).T + np.array([rng.uniform(-1, 1), 0, rng.uniform(-1, 1)])
    hands = joints[:, [20, 21]] + 0.4 * (joints[:, [20, 21]] - joints[:, [18, 19]])
    joints = np.concatenate([joints, hands], axis=1)
    joints = joints + rng.normal(0, p["noise_m"], size=joints.shape)
    quats = inverse_kinematics(T2M, joints[:, :22])
    poses = np.zeros((n, 24, 3))
    poses[:, :22] = _quat_to_rotvec(quats)
    return joints.astype(np.float32), poses.reshape(n, 72).astype(np.float32)


def generate(path: str | Path, cfg: dict | None = None) -> Path:
    """Write ``humanact12poses.pkl`` (and ``test_names.txt``) for these options."""
    p = _params(cfg or {})
    rng = np.random.default_rng(p["seed"])
    data = {"poses": [], "joints3D": [], "y": []}
    for label in range(len(HUMANACT12_CLASSES)):
        for _ in range(p["clips_per_class"]):
            joints, poses = _clip(label, rng, p)
            data["poses"].append(poses)
            data["joints3D"].append(joints)
            data["y"].append(label)
    order = rng.permutation(len(data["y"]))
    data = {k: [v[i] for i in order] for k, v in data.items()}
    path = Path(path)
    with atomic_open(path, "wb") as fh:
        pickle.dump(data, fh, protocol=4)
    n_test = int(round(len(order) * p["test_fraction"]))
    test = sorted(rng.choice(len(order), size=n_test, replace=False).tolist())
    atomic_write_text(path.parent / "test_names.txt", "".join(f"{i:04d}\n" for i in test))
    return path


def ensure(cfg: dict | None = None) -> Path:
    p = _params(cfg or {})
    folder = cache_root() / "synth_action" / cache_key("synth_action", VERSION, p)
    if valid_or_discard(folder, "synth_action"):  # sizes + checksums (a damaged copy is rebuilt, one warning)
        return folder / "humanact12poses.pkl"
    build_staged(folder, lambda stage: generate(stage / "humanact12poses.pkl", p))
    return folder / "humanact12poses.pkl"


@register_dataset("synth_action", task="action2motion", source="synthetic")
def load(cfg: dict) -> ActionDataset:
    """Generate (or reuse) the pickle, read it with the real HumanAct12 reader, split train/test."""
    path = ensure(cfg)
    samples = read_humanact12(path)
    names_path = path.parent / "test_names.txt"
    test_names = set(names_path.read_text().split())
    known = {s.name for s in samples}
    if not test_names <= known:
        raise DatasetError(f"names unknown clips, e.g. {sorted(test_names - known)[:3]}", path=names_path)
    splits = {"train": [s for s in samples if s.name not in test_names],
              "test": [s for s in samples if s.name in test_names], "all": samples}
    # the procedural body stands on y = 0 with y up (body.py), unlike the real set's camera frames
    return ActionDataset(cfg.get("name", "synth_action"), splits, HUMANACT12_CLASSES, source="synthetic",
                         fps=cfg.get("fps", 20), kinematic_chain=SMPL24_CHAIN, up="+y")
