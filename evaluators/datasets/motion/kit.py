"""KIT-ML (Plappert et al. 2016) in the text-to-motion layout, and TMR's ``annotations.json``.

The motion representation is the HumanML3D one on the 21-joint KIT skeleton (251 dims,
millimetres, 12.5 fps): :func:`extract_features_kit` / :func:`recover_from_ric_kit` are the
21-joint calls of ``humanml3d.extract_features`` / ``recover_from_ric``. The folder layout is
that of HumanML3D (``new_joint_vecs/``, ``texts/``, ``Mean.npy``/``Std.npy``, split files; see
``t2m_dataset.py``); captions may instead come from TMR's ``annotations.json``. The minimum
length is 24 frames (text-to-motion ``data/dataset.py``).
"""

from __future__ import annotations

import numpy as np

from evaluators.datasets.base import register_dataset, register_inspector
from evaluators.datasets.motion.humanml3d import KIT_FPS, extract_features, load_motion_text, recover_from_ric
from evaluators.datasets.motion.kinematics import KIT
from evaluators.datasets.motion.t2m_dataset import read_split_file
from evaluators.datasets.motion.t2m_text import read_tmr_annotations

KIT_JOINTS = KIT.joints_num  # 21
KIT_FEAT_DIM = KIT.feat_dim  # 251
KIT_KINEMATIC_CHAIN = [list(c) for c in KIT.kinematic_chain]


def extract_features_kit(joints: np.ndarray, target_offsets: np.ndarray | None = None) -> np.ndarray:
    """[T+1, 21, 3] KIT joints (mm) -> [T, 251]; retarget to ``target_offsets`` [21, 3] if given
    (the official target skeleton, KIT sample 03950_gt, is not bundled)."""
    return extract_features(joints, target_offsets=target_offsets)


def recover_from_ric_kit(features):
    """[..., T, 251] -> [..., T, 21, 3]."""
    return recover_from_ric(features, KIT_JOINTS)


@register_dataset("kit_ml", task="text2motion", source="real")
def load(cfg: dict):
    """KIT-ML in the text-to-motion layout (root: the ``KIT-ML/`` folder or its parent)."""
    return load_motion_text(cfg, joints_num=KIT_JOINTS, fps=KIT_FPS, min_len=24)


@register_inspector
def inspect_annotations(path):
    """TMR ``annotations.json`` (or a folder holding it and ``splits/``): motions, captions, durations."""
    splits = {}
    if path.is_dir() and (path / "annotations.json").is_file() and not (path / "new_joint_vecs").is_dir():
        splits = {p.stem: len(read_split_file(p)) for p in sorted((path / "splits").glob("*.txt"))}
        path = path / "annotations.json"
    if not (path.is_file() and path.name == "annotations.json"):
        return None
    ann = read_tmr_annotations(path)
    n_caps = [len(v["captions"]) for v in ann.values()]
    durs = np.array([v["duration"] for v in ann.values()])
    return {"format": "TMR annotations.json (KIT-ML/HumanML3D captions)", "motions": len(ann),
            "captions": int(sum(n_caps)), "motions_without_caption": int(sum(n == 0 for n in n_caps)),
            "duration_s": {"min": float(durs.min()), "mean": round(float(durs.mean()), 3), "max": float(durs.max())},
            **({"splits": splits} if splits else {})}
