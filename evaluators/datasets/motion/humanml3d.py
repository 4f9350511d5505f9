"""The HumanML3D motion representation both ways, and the ``humanml3d`` dataset entry.

Contract (DESIGN.md "Dataset functions"):

* ``extract_features(joints [T+1, 22, 3]) -> [T, 263]`` — HumanML3D ``process_file``
  (EricGuo5513/HumanML3D ``motion_representation.py``): retarget to the HumanML3D target skeleton
  (``uniform_skeleton``), put on the floor, move frame 0's root to the XZ origin, rotate so frame
  0 faces +Z, foot contacts (squared displacement < ``feet_thre``), rotation-invariant joint
  positions ("ric", root-relative in XZ and rotated by the smoothed facing rotation), local 6D
  joint rotations by IK, joint velocities in the facing frame, root yaw velocity / XZ linear
  velocity / height. With 21 joints the KIT-ML variant (251 dims) is produced.
  Layout of one frame: [rot_vel 1 | lin_vel_xz 2 | root_y 1 | ric (J-1)*3 | rot6d (J-1)*6 |
  local_vel J*3 | feet_l 2, feet_r 2].
* ``recover_from_ric(features [..., T, 263|251], joints_num) -> [..., T, J, 3]`` — positions
  from the root part + ric part (integrated yaw and root velocity). Works on numpy arrays and
  on (batched, differentiable) torch tensors.

What the published files are: ``new_joint_vecs/X.npy`` = process_file(P) with P the T+1 raw
positions; ``new_joints/X.npy`` = recover_from_ric(new_joint_vecs/X.npy), i.e. the processed P
(rotated by a constant yaw, the smoothed facing of frame 0) **without its last frame**. The last
frame is not lost: the local velocity of frame T-1 is P[T] − P[T-1] in the facing frame, so
:func:`recover_full_positions` rebuilds all T+1 frames, and
``extract_features(recover_full_positions(vecs))`` reproduces the vecs (tested on the real
sample ``012314``: continuous features to 2e-6 measured / 2e-5 asserted, foot contacts exactly;
this needs the frame-0 root rotation forced to identity in the IK, see ``motion_kinematics``).
From ``new_joints`` alone (T frames) the last ~80 frames differ slightly (the σ=20 facing
smoothing sees one frame fewer); frames before that match to 2e-5.
"""

from __future__ import annotations

import logging

import numpy as np

from evaluators.datasets.motion.kinematics import (
    KIT,
    T2M,
    SkeletonSpec,
    facing_across,
    forward_from_across,
    inverse_kinematics,
    qbetween,
    qinv,
    qmul,
    qrot,
    quat_to_cont6d,
    skeleton_for,
    uniform_skeleton,
)

log = logging.getLogger(__name__)

HUMANML3D_FPS = 20.0
KIT_FPS = 12.5

# Bone lengths (metres, joint i to its parent, i = 1..21) of the HumanML3D target skeleton
# (the official script takes them from raw sample 000021, frame 0). Measured on the published
# new_joints/012314.npy, where every frame has these lengths to ±1e-6 because every HumanML3D
# motion is retargeted to that skeleton.
T2M_TARGET_BONE_LENGTHS = np.array([
    0.1030739, 0.1098834, 0.1315682, 0.3936232, 0.3901881, 0.1431903, 0.4324330, 0.4256433, 0.0573647,
    0.1433817, 0.1494187, 0.2193600, 0.1374868, 0.1433828, 0.1030393, 0.1316140, 0.1229843, 0.2568399,
    0.2630919, 0.2660119, 0.2698763])


def t2m_target_offsets() -> np.ndarray:
    """[22, 3] rest offsets of the HumanML3D target skeleton (raw direction × bone length)."""
    return T2M.raw_offsets * np.concatenate([[0.0], T2M_TARGET_BONE_LENGTHS])[:, None]


def feature_slices(joints_num: int) -> dict[str, slice]:
    """Named slices of the feature vector (see module docstring)."""
    j = joints_num
    a = 4 + (j - 1) * 3
    b = a + (j - 1) * 6
    c = b + j * 3
    return {"rot_vel": slice(0, 1), "lin_vel": slice(1, 3), "root_y": slice(3, 4), "ric": slice(4, a),
            "rot6d": slice(a, b), "local_vel": slice(b, c), "feet": slice(c, c + 4)}


def extract_features(joints: np.ndarray, *, feet_thre: float | None = None,
                     target_offsets: np.ndarray | str | None = "default") -> np.ndarray:
    """HumanML3D features [T, 263] (KIT: [T, 251]) of raw joint positions [T+1, J, 3], Y up.

    ``target_offsets``: ``"default"`` retargets to the HumanML3D target skeleton (22 joints; for
    KIT no target skeleton is bundled, so ``"default"`` keeps the input bone lengths), an array
    [J, 3] retargets to it, ``None`` skips retargeting. ``feet_thre`` defaults to the official
    value of the skeleton (0.002 m² HumanML3D, 0.05 mm² KIT).
    """
    pos = np.asarray(joints, dtype=np.float64)
    if pos.ndim != 3 or pos.shape[-1] != 3 or pos.shape[1] not in (21, 22):
        raise ValueError(f"joints must be [T+1, 22 or 21, 3], got {pos.shape}")
    if len(pos) < 2:
        raise ValueError(f"need at least 2 frames to compute velocities, got {len(pos)}")
    if not np.isfinite(pos).all():
        raise ValueError("joints contain NaN or inf")
    spec = skeleton_for(pos.shape[1])
    thre = spec.feet_thre if feet_thre is None else feet_thre
    if isinstance(target_offsets, str):
        target_offsets = t2m_target_offsets() if spec is T2M else None
    if target_offsets is not None:
        pos = uniform_skeleton(spec, pos, np.asarray(target_offsets, dtype=np.float64))

    # put on floor; frame-0 root to the XZ origin
    pos = pos.copy()
    pos[..., 1] -= pos.min(axis=(0, 1))[1]
    pos = pos - pos[0, 0] * np.array([1.0, 0.0, 1.0])
    # all initially face Z+ (process_file's across ordering)
    fwd0 = forward_from_across(facing_across(spec, pos[0], ik_order=False))
    fwd0 = fwd0 / np.linalg.norm(fwd0)
    pos = qrot(np.broadcast_to(qbetween(fwd0, np.array([0.0, 0.0, 1.0])), pos.shape[:-1] + (4,)), pos)
    global_pos = pos

    # foot contacts: squared per-frame displacement below the threshold
    def contact(fid: tuple[int, int]) -> np.ndarray:
        d = ((pos[1:, list(fid)] - pos[:-1, list(fid)]) ** 2).sum(-1)
        return (d < thre).astype(np.float64)

    feet_l, feet_r = contact(spec.fid_l), contact(spec.fid_r)

    # IK with smoothed facing; root quaternion = facing rotation r_rot [T+1, 4]
    quats = inverse_kinematics(spec, pos, smooth_forward=True)
    cont6d = quat_to_cont6d(quats)
    r_rot = quats[:, 0]
    velocity = qrot(r_rot[1:], pos[1:, 0] - pos[:-1, 0])
    r_velocity = qmul(r_rot[1:], qinv(r_rot[:-1]))

    # rotation-invariant positions: root XZ removed, rotated into the facing frame
    local = pos.copy()
    local[..., 0] -= local[:, 0:1, 0]
    local[..., 2] -= local[:, 0:1, 2]
    local = qrot(np.broadcast_to(r_rot[:, None], local.shape[:-1] + (4,)), local)

    root_y = local[:, 0, 1:2]
    # arcsin of the quaternion's y component = half the yaw increment (as the official code)
    rot_vel = np.arcsin(np.clip(r_velocity[:, 2:3], -1.0, 1.0))
    lin_vel = velocity[:, [0, 2]]
    n = len(pos)
    ric = local[:, 1:].reshape(n, -1)
    rot = cont6d[:, 1:].reshape(n, -1)
    local_vel = qrot(np.broadcast_to(r_rot[:-1, None], (n - 1, spec.joints_num, 4)),
                     global_pos[1:] - global_pos[:-1]).reshape(n - 1, -1)
    data = np.concatenate([rot_vel, lin_vel, root_y[:-1], ric[:-1], rot[:-1], local_vel, feet_l, feet_r], axis=-1)
    assert data.shape[-1] == spec.feat_dim
    return data.astype(np.float32)


def _torch():
    import torch

    return torch


def _t_qrot(q, v):
    torch = _torch()
    u = q[..., 1:]
    uv = torch.cross(u, v, dim=-1)
    uuv = torch.cross(u, uv, dim=-1)
    return v + 2 * (q[..., :1] * uv + uuv)


def recover_root_rot_pos(data):
    """Root yaw quaternions [..., T, 4] and root positions [..., T, 3] from features (torch)."""
    torch = _torch()
    rot_vel = data[..., 0]
    ang = torch.zeros_like(rot_vel)
    ang[..., 1:] = rot_vel[..., :-1]
    ang = torch.cumsum(ang, dim=-1)
    quat = torch.zeros(data.shape[:-1] + (4,), dtype=data.dtype, device=data.device)
    quat[..., 0] = torch.cos(ang)
    quat[..., 2] = torch.sin(ang)
    r_pos = torch.zeros(data.shape[:-1] + (3,), dtype=data.dtype, device=data.device)
    r_pos[..., 1:, 0] = data[..., :-1, 1]
    r_pos[..., 1:, 2] = data[..., :-1, 2]
    inv = quat * torch.tensor([1.0, -1.0, -1.0, -1.0], dtype=data.dtype, device=data.device)
    r_pos = torch.cumsum(_t_qrot(inv, r_pos), dim=-2)
    r_pos[..., 1] = data[..., 3]
    return quat, r_pos


def _check_dim(shape, joints_num: int) -> None:
    expect = skeleton_for(joints_num).feat_dim
    if shape[-1] != expect:
        raise ValueError(f"features have {shape[-1]} dims; {joints_num} joints need {expect}")


def recover_from_ric(features, joints_num: int = 22):
    """Joint positions [..., T, J, 3] from features [..., T, 263 (J=22) or 251 (J=21)].

    numpy in → numpy float32 out; torch in → torch out (same dtype/device, differentiable).
    """
    _check_dim(np.shape(features), joints_num)
    torch = _torch()
    is_np = not isinstance(features, torch.Tensor)
    data = torch.from_numpy(np.asarray(features, dtype=np.float64)) if is_np else features
    quat, r_pos = recover_root_rot_pos(data)
    pos = data[..., 4:(joints_num - 1) * 3 + 4]
    pos = pos.reshape(pos.shape[:-1] + (joints_num - 1, 3))
    inv = quat * torch.tensor([1.0, -1.0, -1.0, -1.0], dtype=data.dtype, device=data.device)
    pos = _t_qrot(inv[..., None, :].expand(pos.shape[:-1] + (4,)), pos)
    offset = torch.stack([r_pos[..., 0], torch.zeros_like(r_pos[..., 0]), r_pos[..., 2]], dim=-1)
    pos = pos + offset[..., None, :]
    out = torch.cat([r_pos[..., None, :], pos], dim=-2)
    return out.numpy().astype(np.float32) if is_np else out


def recover_full_positions(features: np.ndarray, joints_num: int = 22) -> np.ndarray:
    """All T+1 processed positions [T+1, J, 3] behind features [T, D] (float64).

    Frames 0..T-1 are :func:`recover_from_ric`; frame T adds the last frame's local joint
    velocity, rotated back out of the facing frame. ``extract_features`` of the result
    reproduces ``features``.
    """
    _check_dim(np.shape(features), joints_num)
    torch = _torch()
    data = torch.from_numpy(np.asarray(features, dtype=np.float64))
    quat, _ = recover_root_rot_pos(data)
    pos = recover_from_ric(data, joints_num).numpy()
    sl = feature_slices(joints_num)["local_vel"]
    vel = np.asarray(features, dtype=np.float64)[-1, sl].reshape(joints_num, 3)
    last = pos[-1] + qrot(np.broadcast_to(qinv(quat[-1].numpy()), (joints_num, 4)), vel)
    return np.concatenate([pos, last[None]], axis=0)


def features_spec(feat_dim: int) -> SkeletonSpec:
    """Skeleton of a feature width: 263 → HumanML3D (22 joints), 251 → KIT (21 joints)."""
    for spec in (T2M, KIT):
        if spec.feat_dim == feat_dim:
            return spec
    raise ValueError(f"feature width {feat_dim} is neither 263 (HumanML3D) nor 251 (KIT-ML)")


# -- dataset entry and inspectors -------------------------------------------------------------

from evaluators.core.paths import resolve_inside  # noqa: E402
from evaluators.datasets.base import DatasetError, register_dataset, register_inspector, resolve_root  # noqa: E402


def t2m_root(root):
    """Accept either the folder holding ``new_joint_vecs/`` or its parent (``.../HumanML3D``)."""
    from pathlib import Path

    root = Path(root)
    for cand in (root, root / "HumanML3D", root / "KIT-ML"):
        if (cand / "new_joint_vecs").is_dir():
            return cand
    return root


def load_motion_text(cfg: dict, *, joints_num: int, fps: float, min_len: int):
    from evaluators.datasets.motion.t2m_dataset import MotionTextDataset

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
    from evaluators.datasets.motion.t2m_dataset import load_features
    from evaluators.datasets.motion.t2m_text import read_caption_file

    if path.is_file() and path.suffix == ".npy" and path.parent.name in ("new_joint_vecs", "new_joints"):
        if path.parent.name == "new_joint_vecs":
            arr = load_features(path)
            spec = features_spec(arr.shape[1])
            return {"format": "humanml3d new_joint_vecs", "frames": int(arr.shape[0]), "feat_dim": int(arr.shape[1]),
                    "joints": spec.joints_num, "dataset": "KIT-ML" if spec is KIT else "HumanML3D",
                    "duration_s_at_fps": round(arr.shape[0] / (KIT_FPS if spec is KIT else HUMANML3D_FPS), 3),
                    "foot_contact_fraction": float(arr[:, -4:].mean())}
        from evaluators.datasets.checks import load_npy, numeric_array

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
    from evaluators.datasets.motion.t2m_dataset import load_stat, read_split_lines

    root = t2m_root(path) if path.is_dir() else None
    if root is None or not (root / "new_joint_vecs").is_dir():
        return None
    files = sorted((root / "new_joint_vecs").glob("*.npy"))
    dim = None
    if files:
        dim = int(np.load(files[0], mmap_mode="r").shape[1])
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
