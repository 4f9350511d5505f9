"""Quaternion maths and the skeleton IK/FK the HumanML3D motion representation is built on.

Everything here is plain numpy in float64 (the official scripts round every quaternion op
through float32 torch; we keep float64 for accuracy — the difference is ~1e-6 on features).
Quaternions are ``(w, x, y, z)``, scalar first, shape ``[..., 4]``; vectors ``[..., 3]``.

Skeleton constants follow HumanML3D / text-to-motion ``paramUtil.py`` and
``motion_representation.py`` (EricGuo5513/HumanML3D): the *raw offsets* are the unit
directions of every bone in the rest pose, the *kinematic chains* list joints root→tip,
``face_joint_indx`` = (r_hip, l_hip, r_shoulder, l_shoulder), ``fid_r/fid_l`` the feet,
``l_idx1/l_idx2`` the lower-leg bones used for the leg-length scale of ``uniform_skeleton``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

# ---------------------------------------------------------------------------------------------
# quaternions
# ---------------------------------------------------------------------------------------------


def qinv(q: np.ndarray) -> np.ndarray:
    """Conjugate (= inverse for unit quaternions)."""
    out = np.array(q, dtype=np.float64, copy=True)
    out[..., 1:] *= -1.0
    return out


def qmul(q: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Hamilton product ``q * r`` (broadcasting)."""
    q = np.asarray(q, dtype=np.float64)
    r = np.asarray(r, dtype=np.float64)
    w1, x1, y1, z1 = np.moveaxis(q, -1, 0)
    w2, x2, y2, z2 = np.moveaxis(r, -1, 0)
    return np.stack([
        w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
        w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
        w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
        w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
    ], axis=-1)


def qrot(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors ``v`` by unit quaternions ``q``: v + 2 w (u×v) + 2 u×(u×v)."""
    q = np.asarray(q, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    u = q[..., 1:]
    uv = np.cross(u, v)
    uuv = np.cross(u, uv)
    return v + 2.0 * (q[..., :1] * uv + uuv)


def qbetween(v0: np.ndarray, v1: np.ndarray) -> np.ndarray:
    """Shortest-arc unit quaternion rotating ``v0`` onto ``v1`` (half-way vector construction)."""
    v0 = np.asarray(v0, dtype=np.float64)
    v1 = np.asarray(v1, dtype=np.float64)
    xyz = np.cross(v0, v1)
    w = np.sqrt((v0 ** 2).sum(-1, keepdims=True) * (v1 ** 2).sum(-1, keepdims=True)) + (v0 * v1).sum(-1, keepdims=True)
    q = np.concatenate([w, xyz], axis=-1)
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
    bad = norm[..., 0] < 1e-12
    if bad.any():  # anti-parallel: any 180° turn about an axis ⟂ v0 (the official code gives NaN here)
        a = np.broadcast_to(v0, q.shape[:-1] + (3,))[bad]
        axis = np.cross(a, np.where(np.abs(a[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]]))
        q[bad] = np.concatenate([np.zeros((len(axis), 1)), axis], axis=-1)
        norm = np.linalg.norm(q, axis=-1, keepdims=True)
    return q / norm


def qfix(q: np.ndarray) -> np.ndarray:
    """Flip signs along time (axis 0) so consecutive quaternions have a non-negative dot product."""
    out = np.array(q, dtype=np.float64, copy=True)
    dots = np.sum(q[1:] * q[:-1], axis=-1)
    flip = (np.cumsum(dots < 0, axis=0) % 2).astype(bool)
    out[1:][flip] *= -1.0
    return out


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices ``[..., 3, 3]`` of (not necessarily unit) quaternions."""
    q = np.asarray(q, dtype=np.float64)
    w, x, y, z = np.moveaxis(q, -1, 0)
    s = 2.0 / (q * q).sum(-1)
    m = np.stack([
        1 - s * (y * y + z * z), s * (x * y - z * w), s * (x * z + y * w),
        s * (x * y + z * w), 1 - s * (x * x + z * z), s * (y * z - x * w),
        s * (x * z - y * w), s * (y * z + x * w), 1 - s * (x * x + y * y),
    ], axis=-1)
    return m.reshape(q.shape[:-1] + (3, 3))


def quat_to_cont6d(q: np.ndarray) -> np.ndarray:
    """Continuous 6D rotation (Zhou et al. 2019): the first two *columns* of the matrix, [..., 6].

    Column order as in HumanML3D ``quaternion_to_cont6d_np``: ``[R[:, 0], R[:, 1]]``.
    """
    m = quat_to_matrix(q)
    return np.concatenate([m[..., 0], m[..., 1]], axis=-1)


def cont6d_to_matrix(d6: np.ndarray) -> np.ndarray:
    """Inverse of :func:`quat_to_cont6d` by Gram–Schmidt: columns (x, y, z) with z = x × y."""
    d6 = np.asarray(d6, dtype=np.float64)
    x = d6[..., :3] / np.linalg.norm(d6[..., :3], axis=-1, keepdims=True)
    z = np.cross(x, d6[..., 3:])
    z = z / np.linalg.norm(z, axis=-1, keepdims=True)
    y = np.cross(z, x)
    return np.stack([x, y, z], axis=-1)


def yaw_quat(angle: np.ndarray) -> np.ndarray:
    """Quaternion of a rotation by ``angle`` radians about +Y."""
    a = np.asarray(angle, dtype=np.float64)
    zero = np.zeros_like(a)
    return np.stack([np.cos(a / 2), zero, np.sin(a / 2), zero], axis=-1)


# ---------------------------------------------------------------------------------------------
# skeletons
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SkeletonSpec:
    """Everything the feature pipeline needs to know about one skeleton."""

    name: str
    raw_offsets: np.ndarray          # [J, 3] unit bone directions in the rest pose
    kinematic_chain: tuple[tuple[int, ...], ...]
    face_joint_indx: tuple[int, int, int, int]   # r_hip, l_hip, r_shoulder, l_shoulder
    fid_r: tuple[int, int]
    fid_l: tuple[int, int]
    l_idx1: int
    l_idx2: int
    feet_thre: float                 # squared per-frame displacement below which a foot is in contact
    left_right: tuple[tuple[int, ...], tuple[int, ...]] = ((), ())  # mirrored joint pairs

    @property
    def joints_num(self) -> int:
        return len(self.raw_offsets)

    @property
    def feat_dim(self) -> int:
        j = self.joints_num
        return 4 + (j - 1) * 3 + (j - 1) * 6 + j * 3 + 4

    @property
    def parents(self) -> list[int]:
        par = [0] * self.joints_num
        par[0] = -1
        for chain in self.kinematic_chain:
            for a, b in zip(chain[:-1], chain[1:]):
                par[b] = a
        return par


# HumanML3D paramUtil.t2m_raw_offsets / t2m_kinematic_chain (SMPL joints 0..21).
T2M = SkeletonSpec(
    name="t2m",
    raw_offsets=np.array([[0, 0, 0], [1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, -1, 0], [0, 1, 0],
                          [0, -1, 0], [0, -1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1], [0, 1, 0], [1, 0, 0],
                          [-1, 0, 0], [0, 0, 1], [0, -1, 0], [0, -1, 0], [0, -1, 0], [0, -1, 0],
                          [0, -1, 0], [0, -1, 0]], dtype=np.float64),
    kinematic_chain=((0, 2, 5, 8, 11), (0, 1, 4, 7, 10), (0, 3, 6, 9, 12, 15), (9, 14, 17, 19, 21),
                     (9, 13, 16, 18, 20)),
    face_joint_indx=(2, 1, 17, 16), fid_r=(8, 11), fid_l=(7, 10), l_idx1=5, l_idx2=8,
    feet_thre=0.002,  # motion_representation: process_file(source_data, 0.002)
    # raw_pose_processing swap_left_right: right chain [2,5,8,11,14,17,19,21] <-> left [1,4,7,10,13,16,18,20]
    left_right=((2, 5, 8, 11, 14, 17, 19, 21), (1, 4, 7, 10, 13, 16, 18, 20)),
)

# text-to-motion paramUtil.kit_raw_offsets / kit_kinematic_chain and scripts/motion_process.py (KIT branch).
KIT = SkeletonSpec(
    name="kit",
    raw_offsets=np.array([[0, 0, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0], [0, 1, 0], [1, 0, 0], [0, -1, 0],
                          [0, -1, 0], [-1, 0, 0], [0, -1, 0], [0, -1, 0], [1, 0, 0], [0, -1, 0], [0, -1, 0],
                          [0, 0, 1], [0, 0, 1], [-1, 0, 0], [0, -1, 0], [0, -1, 0], [0, 0, 1], [0, 0, 1]],
                         dtype=np.float64),
    kinematic_chain=((0, 11, 12, 13, 14, 15), (0, 16, 17, 18, 19, 20), (0, 1, 2, 3, 4), (3, 5, 6, 7),
                     (3, 8, 9, 10)),
    face_joint_indx=(11, 16, 5, 8), fid_r=(14, 15), fid_l=(19, 20), l_idx1=17, l_idx2=18,
    feet_thre=0.05,  # motion_process.py KIT branch: process_file(source_data, 0.05) (millimetres)
    left_right=((11, 12, 13, 14, 15, 5, 6, 7), (16, 17, 18, 19, 20, 8, 9, 10)),
)


def skeleton_for(joints_num: int) -> SkeletonSpec:
    if joints_num == 22:
        return T2M
    if joints_num == 21:
        return KIT
    raise ValueError(f"joints_num must be 22 (HumanML3D) or 21 (KIT-ML), got {joints_num}")


def bone_offsets(spec: SkeletonSpec, pose: np.ndarray) -> np.ndarray:
    """Rest-pose offsets of ``pose`` [J, 3]: raw direction × bone length (``get_offsets_joints``)."""
    par = spec.parents
    lengths = np.zeros(spec.joints_num)
    for i in range(1, spec.joints_num):
        lengths[i] = np.linalg.norm(pose[i] - pose[par[i]])
    return spec.raw_offsets * lengths[:, None]


def facing_across(spec: SkeletonSpec, joints: np.ndarray, *, ik_order: bool) -> np.ndarray:
    """The left→right 'across' vector used to define the facing direction, [..., 3].

    HumanML3D computes it two ways and both are reproduced: ``process_file`` (initial facing)
    uses (r_hip − l_hip) + (r_sdr − l_sdr); ``Skeleton.inverse_kinematics_np`` unpacks the same
    index tuple as ``l_hip, r_hip, sdr_r, sdr_l`` and so uses (l_hip − r_hip) + (r_sdr − l_sdr)
    (``ik_order=True``). The shoulders dominate, so both point to the body's right.
    """
    a, b, c, d = spec.face_joint_indx
    if ik_order:
        across = (joints[..., b, :] - joints[..., a, :]) + (joints[..., c, :] - joints[..., d, :])
    else:
        across = (joints[..., a, :] - joints[..., b, :]) + (joints[..., c, :] - joints[..., d, :])
    return across / np.linalg.norm(across, axis=-1, keepdims=True)


def forward_from_across(across: np.ndarray) -> np.ndarray:
    """Horizontal forward direction = up × across (unnormalised)."""
    up = np.broadcast_to(np.array([0.0, 1.0, 0.0]), across.shape)
    return np.cross(up, across)


def inverse_kinematics(spec: SkeletonSpec, joints: np.ndarray, *, smooth_forward: bool = False,
                       first_frame_identity: bool = True) -> np.ndarray:
    """Local joint quaternions [T, J, 4] that map the raw offsets onto ``joints`` [T, J, 3].

    Root quaternion rotates the (optionally Gaussian-smoothed, σ=20 frames, 'nearest' edges)
    forward direction onto +Z; each bone's local rotation is R_parent⁻¹ · qbetween(raw_dir, bone_dir).
    ``first_frame_identity``: the root quaternion of frame 0 is set to identity. The current
    HumanML3D ``skeleton.py`` has that line commented out, but the published features were made
    with it active: on ``new_joint_vecs/012314.npy`` only frame 0 disagrees without it
    (rot_vel off by 0.10 rad) and every value matches to 1e-6 with it.
    """
    joints = np.asarray(joints, dtype=np.float64)
    forward = forward_from_across(facing_across(spec, joints, ik_order=True))
    if smooth_forward:
        forward = gaussian_filter1d(forward, 20, axis=0, mode="nearest")
    forward = forward / np.linalg.norm(forward, axis=-1, keepdims=True)
    target = np.broadcast_to(np.array([0.0, 0.0, 1.0]), forward.shape)
    root_quat = qbetween(forward, target)
    if first_frame_identity:
        root_quat[0] = (1.0, 0.0, 0.0, 0.0)
    quats = np.zeros(joints.shape[:-1] + (4,))
    quats[:, 0] = root_quat
    for chain in spec.kinematic_chain:
        rot = root_quat
        for j in range(len(chain) - 1):
            u = np.broadcast_to(spec.raw_offsets[chain[j + 1]], (len(joints), 3))
            v = joints[:, chain[j + 1]] - joints[:, chain[j]]
            v = v / np.linalg.norm(v, axis=-1, keepdims=True)
            local = qmul(qinv(rot), qbetween(u, v))
            quats[:, chain[j + 1]] = local
            rot = qmul(rot, local)
    return quats


def forward_kinematics(spec: SkeletonSpec, quats: np.ndarray, root_pos: np.ndarray,
                       offsets: np.ndarray) -> np.ndarray:
    """Joint positions [T, J, 3] from local quaternions [T, J, 4], root positions [T, 3], offsets [J, 3]."""
    joints = np.zeros(quats.shape[:-1] + (3,))
    joints[:, 0] = root_pos
    for chain in spec.kinematic_chain:
        rot = quats[:, 0]
        for i in range(1, len(chain)):
            rot = qmul(rot, quats[:, chain[i]])
            joints[:, chain[i]] = qrot(rot, np.broadcast_to(offsets[chain[i]], (len(quats), 3))) + joints[:, chain[i - 1]]
    return joints


def uniform_skeleton(spec: SkeletonSpec, positions: np.ndarray, target_offsets: np.ndarray) -> np.ndarray:
    """Retarget ``positions`` [T, J, 3] to the bone lengths of ``target_offsets`` [J, 3].

    As HumanML3D ``uniform_skeleton``: scale the root trajectory by the ratio of lower-leg
    lengths (largest abs component of the ``l_idx1``/``l_idx2`` offsets), IK on the source,
    FK with the target offsets.
    """
    src = bone_offsets(spec, positions[0])
    src_leg = np.abs(src[spec.l_idx1]).max() + np.abs(src[spec.l_idx2]).max()
    tgt_leg = np.abs(target_offsets[spec.l_idx1]).max() + np.abs(target_offsets[spec.l_idx2]).max()
    quats = inverse_kinematics(spec, positions)
    return forward_kinematics(spec, quats, positions[:, 0] * (tgt_leg / src_leg), target_offsets)


def mirror_joints(spec: SkeletonSpec, joints: np.ndarray) -> np.ndarray:
    """Left/right mirror of raw joint positions [..., J, 3]: negate X and swap paired joints.

    This is how HumanML3D makes its ``M``-prefixed samples (``raw_pose_processing`` swap_left_right).
    """
    out = np.array(joints, copy=True)
    out[..., 0] *= -1
    right, left = spec.left_right
    tmp = out[..., list(right), :].copy()
    out[..., list(right), :] = out[..., list(left), :]
    out[..., list(left), :] = tmp
    return out
