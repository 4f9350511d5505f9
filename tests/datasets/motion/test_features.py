"""HumanML3D motion representation both ways, on the real sample and on synthetic bodies."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluators.datasets.motion.body import compose, pose_clip
from evaluators.datasets.motion.humanml3d import (
    extract_features,
    feature_slices,
    recover_from_ric,
    recover_full_positions,
    t2m_target_offsets,
)
from evaluators.datasets.motion.kinematics import KIT, T2M, forward_kinematics, mirror_joints, qbetween, qrot
from tests.conftest import need_shared

REAL = ("humanml3d", "HumanML3D")


def _real(sample="012314"):
    vecs = np.load(need_shared(*REAL, "new_joint_vecs", f"{sample}.npy"))
    joints = np.load(need_shared(*REAL, "new_joints", f"{sample}.npy"))
    return vecs, joints


def test_recover_from_ric_reproduces_published_new_joints():
    # new_joints/012314.npy was written by the official script as recover_from_ric(new_joint_vecs)
    vecs, joints = _real()
    rec = recover_from_ric(vecs, 22)
    assert rec.shape == joints.shape == (170, 22, 3)
    np.testing.assert_allclose(rec, joints, atol=1e-5, rtol=0)


def test_extract_features_reproduces_published_vecs():
    """extract_features(all T+1 processed positions) == new_joint_vecs (float tolerance).

    The T+1 positions are new_joints (frames 0..T-1) plus the last frame rebuilt from the last
    local velocity (recover_full_positions); continuous features to 2e-5, contacts exactly.
    """
    vecs, joints = _real()
    full = recover_full_positions(vecs, 22)
    assert full.shape == (171, 22, 3)
    np.testing.assert_allclose(full[:-1], joints, atol=1e-5, rtol=0)
    for positions in (full, np.concatenate([joints, full[-1:]], axis=0)):
        feats = extract_features(positions)
        assert feats.shape == vecs.shape == (170, 263)
        np.testing.assert_allclose(feats[:, :-4], vecs[:, :-4], atol=2e-5, rtol=0)
        np.testing.assert_array_equal(feats[:, -4:], vecs[:, -4:])


def test_extract_features_from_new_joints_alone_is_close_but_not_exact():
    # without the last frame the sigma-20 smoothing of the facing direction differs near the end
    vecs, joints = _real()
    feats = extract_features(joints)
    assert feats.shape == (169, 263)
    err = np.abs(feats[:, :-4] - vecs[:-1, :-4])
    assert err.max() < 0.05
    # the Gaussian (sigma 20, truncated at 4 sigma = 80 frames) only sees the missing frame near the end
    assert err[: len(err) - 81].max() < 2e-5


def test_momask_example_round_trip_first_100_frames():
    """MoMask's example clip (float64 copy of a HumanML3D motion): agrees to 1e-3 over frames 0..99.

    Unlike 012314 it is not reproduced to float precision: from frame 106 on the re-extracted
    features diverge (finding recorded in the datasets report; cause not identified).
    """
    vecs = np.load(need_shared("humanml3d", "momask_example_data", "000612.npy")).astype(np.float32)
    feats = extract_features(recover_full_positions(vecs, 22))
    assert feats.shape == vecs.shape == (199, 263)
    np.testing.assert_allclose(feats[:100, :-4], vecs[:100, :-4], atol=1e-3, rtol=0)


def _body(seed=0, prims=(("walk", 40, 1.0), ("turn_left", 30, 1.0), ("wave_right", 30, 1.0))):
    rng = np.random.default_rng(seed)
    return pose_clip(compose(list(prims), rng), rng.uniform(0.9, 1.1, size=22))


def _yaw(a):
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


def test_features_invariant_to_global_yaw_translation_and_body_scale():
    raw = _body()
    base = extract_features(raw)
    moved = raw @ _yaw(1.234).T + np.array([3.0, 0.4, -2.0])
    np.testing.assert_allclose(extract_features(moved), base, atol=1e-5)


def test_synthetic_round_trip_and_processed_body():
    raw = _body(seed=1)
    feats = extract_features(raw)
    rec = recover_from_ric(feats, 22)
    # retargeted: every bone has the HumanML3D target length in every frame
    lengths = np.linalg.norm(rec[:, 1:] - rec[:, T2M.parents[1:]], axis=-1)
    np.testing.assert_allclose(lengths, np.broadcast_to(np.linalg.norm(t2m_target_offsets()[1:], axis=-1),
                                                        lengths.shape), atol=1e-5)
    assert rec[..., 1].min() >= -1e-6 and abs(rec[0, 0, 0]) < 1e-6 and abs(rec[0, 0, 2]) < 1e-6
    again = extract_features(recover_full_positions(feats, 22))
    np.testing.assert_allclose(again, feats, atol=1e-5)


def test_mirror_flips_sideways_and_yaw_terms():
    raw = _body(seed=2)
    np.testing.assert_allclose(mirror_joints(T2M, mirror_joints(T2M, raw)), raw)
    # no retargeting here: the HumanML3D target skeleton is slightly left/right asymmetric
    f = extract_features(raw, target_offsets=None)
    m = extract_features(mirror_joints(T2M, raw), target_offsets=None)
    sl = feature_slices(22)
    np.testing.assert_allclose(m[:, sl["rot_vel"]], -f[:, sl["rot_vel"]], atol=1e-5)
    np.testing.assert_allclose(m[:, 1], -f[:, 1], atol=1e-5)   # sideways velocity flips
    np.testing.assert_allclose(m[:, 2], f[:, 2], atol=1e-5)    # forward velocity kept
    np.testing.assert_allclose(m[:, sl["root_y"]], f[:, sl["root_y"]], atol=1e-5)


def test_kit_variant_251_round_trip():
    rng = np.random.default_rng(0)
    t = 50
    quats = np.zeros((t + 1, 21, 4))
    quats[..., 0] = 1.0
    ang = 0.3 * np.sin(np.linspace(0, 4, t + 1))[:, None] * rng.uniform(-1, 1, size=21)
    quats[..., 0], quats[..., 1] = np.cos(ang / 2), np.sin(ang / 2)  # small rotations about X
    offsets = KIT.raw_offsets * rng.uniform(80, 400, size=(21, 1))   # millimetres, like KIT-ML
    root = np.stack([np.linspace(0, 800, t + 1), np.full(t + 1, 950.0), np.zeros(t + 1)], -1)
    joints = forward_kinematics(KIT, quats, root, offsets)
    feats = extract_features(joints, target_offsets=None)
    assert feats.shape == (t, 251)
    rec = recover_full_positions(feats, 21)
    np.testing.assert_allclose(extract_features(rec, target_offsets=None), feats, atol=1e-3)
    assert recover_from_ric(feats, 21).shape == (t, 21, 3)


def test_recover_from_ric_torch_batched_and_differentiable():
    vecs = extract_features(_body(seed=4))
    x = torch.from_numpy(np.stack([vecs, vecs * 0.5])).requires_grad_(True)
    out = recover_from_ric(x, 22)
    assert out.shape == (2, len(vecs), 22, 3)
    np.testing.assert_allclose(out[0].detach().numpy(), recover_from_ric(vecs, 22), atol=1e-5)
    out.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_feature_slices_cover_the_vector():
    for j, dim in ((22, 263), (21, 251)):
        sl = feature_slices(j)
        covered = np.concatenate([np.arange(dim)[s] for s in sl.values()])
        np.testing.assert_array_equal(np.sort(covered), np.arange(dim))


def test_qbetween_rotates_v0_onto_v1_including_antiparallel():
    rng = np.random.default_rng(0)
    v0, v1 = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    v0[0], v1[0] = (0, -1, 0), (0, 2, 0)
    q = qbetween(v0, v1)
    got = qrot(q, v0 / np.linalg.norm(v0, axis=-1, keepdims=True))
    np.testing.assert_allclose(got, v1 / np.linalg.norm(v1, axis=-1, keepdims=True), atol=1e-9)


@pytest.mark.parametrize("bad", [np.zeros((1, 22, 3)), np.zeros((5, 20, 3)), np.full((5, 22, 3), np.nan)])
def test_extract_features_rejects_bad_joints(bad):
    with pytest.raises(ValueError):
        extract_features(bad)
