"""Physical metrics against closed forms built by hand (sliding feet, sinusoids, translated bodies)."""

from __future__ import annotations

import numpy as np
import pytest

from evaluators.datasets.motion.action import SMPL24_CHAIN
from evaluators.datasets.motion.kinematics import KIT, T2M
from evaluators.metrics import physical as P

FPS = 20.0


def _pose(n_joints: int = 22, feet=(7, 8, 10, 11)) -> np.ndarray:
    """A standing pose [J, 3]: feet joints on the floor (y = 0), the others at 0.1 m and above."""
    pose = np.zeros((n_joints, 3))
    pose[:, 1] = 0.1 + 0.05 * np.arange(n_joints)
    pose[list(feet), 1] = 0.0
    pose[:, 0] = 0.01 * np.arange(n_joints)
    return pose


def _static(t: int, n_joints: int = 22, feet=(7, 8, 10, 11)) -> np.ndarray:
    return np.repeat(_pose(n_joints, feet)[None], t, axis=0)


def _sliding(t: int, speed: float, foot_height: float = 0.0) -> np.ndarray:
    """The whole body translates along x at ``speed`` m/s; the feet at ``foot_height``."""
    seq = _static(t)
    seq[:, [7, 8, 10, 11], 1] = foot_height
    seq[:, :, 0] += speed * np.arange(t)[:, None] / FPS
    return seq


@pytest.mark.parametrize("speed, expected", [
    (1.0, 1.0),   # every transition: contact, 1 m/s, window mean >= 0.6 m/s (3 of 5 at the edges)
    (0.4, 0.0),   # below 0.5 m/s everywhere
])
def test_sliding_foot_on_floor(speed, expected):
    joints = _sliding(30, speed)[None]
    assert P.skating_ratio(joints) == pytest.approx(expected)


def test_window_mean_at_sequence_edges():
    # 0.7 m/s: the 5-frame mean of the first/last transition is 3/5 * 0.7 = 0.42 < 0.5 (zeros
    # beyond the sequence), of the second/penultimate 4/5 * 0.7 = 0.56 > 0.5, so exactly the two
    # end transitions do not skate: ratio (T - 3) / (T - 1).
    t = 30
    joints = _sliding(t, 0.7)[None]
    assert P.skating_ratio(joints) == pytest.approx((t - 3) / (t - 1))


def test_lifted_foot_does_not_skate():
    joints = _sliding(30, 1.0, foot_height=0.06)[None]
    assert P.skating_ratio(joints) == 0.0
    assert P.skating_ratio_authors(joints) == 0.0


def test_one_foot_in_contact_is_enough():
    seq = _sliding(30, 1.0)
    seq[:, 11, 1] = 0.3                     # right foot lifted, left foot 10 still slides
    assert P.skating_ratio(seq[None]) == pytest.approx(1.0)
    seq[:, 10, 1] = 0.3                     # both feet of GMD (10, 11) lifted: ankles 7/8 do not count
    assert P.skating_ratio(seq[None]) == 0.0


def test_static_pose_all_zeros():
    out = P.physical_metrics(_static(40)[None], [40])
    for key, entry in out.items():
        assert entry["value"] == pytest.approx(0.0, abs=1e-12), key
    assert out["jerk_body"]["unit"] == "m/s^3" and out["penetrate_mm"]["unit"] == "mm"


def test_padded_batch_authors_vs_valid_length():
    """Two sequences padded to 40 frames; the short one (21 frames) then repeats its last frame."""
    t_pad, short = 40, 21
    long_seq = _sliding(t_pad, 1.0)
    short_seq = _sliding(t_pad, 1.0)
    short_seq[short:] = short_seq[short - 1]
    joints, lengths = np.stack([long_seq, short_seq]), [t_pad, short]
    # by hand: long 39 skating transitions / 39; short 20 / 20 (valid) or 20 / 39 (authors)
    assert P.skating_ratio(joints, lengths) == pytest.approx(1.0)
    assert P.skating_ratio_authors(joints, lengths) == pytest.approx((39 / 39 + 20 / 39) / 2)
    # the static tail adds no skating transition, so ignoring the lengths gives the same value
    assert P.skating_ratio_authors(joints) == pytest.approx((39 / 39 + 20 / 39) / 2)
    out = P.physical_metrics(joints, lengths)
    assert out["skating_ratio"]["value"] == pytest.approx(1.0)
    assert out["skating_ratio_authors"]["value"] == pytest.approx(59 / 78)


def test_constant_velocity_has_zero_jerk():
    seq = _static(25)
    seq += np.array([0.3, 0.05, -0.2]) * np.arange(25)[:, None, None] / FPS
    assert P.jerk(seq[None], fps=FPS) == pytest.approx(0.0, abs=1e-9)


def test_sinusoid_jerk():
    amp, w, t = 0.2, np.pi, 200                 # 0.5 Hz, 10 s at 20 fps: 5 full periods
    h = 1.0 / FPS
    k = np.arange(t)
    seq = _static(t)
    seq[:, :, 0] += amp * np.sin(w * k * h)[:, None]
    value = P.physical_metrics(seq[None], skeleton="humanml3d")["jerk_body"]["value"]
    # exact: the third forward difference of sin(w t) is -(2 sin(w h / 2))^3 cos(w t + 3 w h / 2)
    exact = amp * (2 * np.sin(w * h / 2)) ** 3 / h ** 3 * np.abs(np.cos(w * k[:-3] * h + 1.5 * w * h)).mean()
    assert value == pytest.approx(exact, rel=1e-9)
    # continuum limit: mean |A w^3 cos| = (2 / pi) A w^3 over whole periods
    assert value == pytest.approx(2 / np.pi * amp * w ** 3, rel=0.02)


def test_jerk_groups_see_only_their_joints():
    t, h = 60, 1.0 / FPS
    seq = _static(t)
    seq[:, [20, 21], 2] += np.sin(2.0 * np.arange(t) * h)[:, None]   # only the wrists move
    out = P.physical_metrics(seq[None])
    assert out["jerk_root"]["value"] == pytest.approx(0.0, abs=1e-9)
    assert out["jerk_feet"]["value"] == pytest.approx(0.0, abs=1e-9)
    assert out["jerk_hands"]["value"] == pytest.approx(out["jerk_body"]["value"] * 22 / 2)


@pytest.mark.parametrize("shift, pen, flo", [
    (-0.03, 30.0, 0.0),     # 3 cm below the floor
    (0.10, 0.0, 100.0),     # 10 cm above: floats
    (0.004, 0.0, 0.0),      # within the 5 mm tolerance
    (-0.004, 0.0, 0.0),
])
def test_penetration_and_floating_of_a_translated_body(shift, pen, flo):
    seq = _static(20) + np.array([0.0, shift, 0.0])
    out = P.physical_metrics(seq[None])
    assert out["penetrate_mm"]["value"] == pytest.approx(pen)
    assert out["float_mm"]["value"] == pytest.approx(flo)


def test_ground_values_are_frame_means_then_sequence_means():
    a = _static(20)
    a[10:] += np.array([0.0, -0.02, 0.0])            # half the frames 2 cm under: 10 mm
    b = _static(20) + np.array([0.0, 0.05, 0.0])      # floats 50 mm, padded to 20 from 8 valid
    b[8:] -= np.array([0.0, 1.0, 0.0])                # the padding is far below and must not count
    pen, flo = P.ground_contact_mm(np.stack([a, b]), [20, 8])
    assert pen == pytest.approx((10.0 + 0.0) / 2)
    assert flo == pytest.approx((0.0 + 50.0) / 2)


def test_ground_parameter_moves_the_floor():
    seq = _static(10) + np.array([0.0, 0.5, 0.0])
    pen, flo = P.ground_contact_mm(seq[None], ground=0.5)
    assert pen == 0.0 and flo == 0.0


def test_kit_millimetres_equal_metres():
    feet = (14, 15, 19, 20)
    t = 30
    seq = _static(t, 21, feet)
    seq[:, :, 0] += 1.0 * np.arange(t)[:, None] / 12.5           # 1 m/s at 12.5 fps
    seq[:, :, 1] += 0.02 * np.sin(np.arange(t))[:, None]
    in_m = P.physical_metrics(seq[None], skeleton="kit", units="m")
    in_mm = P.physical_metrics(seq[None] * 1000.0, skeleton="kit")   # KIT default: millimetres
    for key in in_m:
        assert in_mm[key]["value"] == pytest.approx(in_m[key]["value"], rel=1e-9, abs=1e-12), key
    assert in_m["skating_ratio"]["value"] > 0


def test_groups_follow_the_dataset_kinematic_chains():
    for name, spec in (("humanml3d", T2M), ("kit", KIT)):
        groups = P.JOINT_GROUPS[name]
        assert P.SKELETONS[name]["joints"] == spec.joints_num == len(groups["body"])
        assert set(groups["feet"]) == set(spec.fid_l) | set(spec.fid_r)
        assert set(P.SKELETONS[name]["skate_feet"]) == {spec.fid_l[1], spec.fid_r[1]}
        arm_ends = {chain[-1] for chain in spec.kinematic_chain[3:]}
        assert set(groups["hands"]) == arm_ends


@pytest.mark.parametrize("joints, lengths, match", [
    (np.zeros((2, 10, 22)), None, r"\[B, T, J, 3\]"),
    (np.zeros((2, 10, 21, 3)), None, "skeleton needs 22"),
    (np.zeros((2, 10, 22, 3)), [10, 11], r"lengths must lie in \[4, 10\]"),
    (np.zeros((2, 10, 22, 3)), [10, 3], r"lengths must lie in \[4, 10\]"),
    (np.zeros((2, 10, 22, 3)), [10], "one entry per sequence"),
])
def test_bad_input_is_rejected_before_work(joints, lengths, match):
    with pytest.raises(ValueError, match=match):
        P.physical_metrics(joints, lengths)


def test_bad_names_are_rejected():
    with pytest.raises(ValueError, match="skeleton must be one of"):
        P.physical_metrics(np.zeros((1, 10, 22, 3)), skeleton="smpl")
    with pytest.raises(ValueError, match="units must be one of"):
        P.physical_metrics(np.zeros((1, 10, 22, 3)), units="inch")


# -- action-to-motion skeletons: camera frames (y down) and a floor estimated per sequence --------

def _action_static(t: int, skeleton: str) -> np.ndarray:
    """A standing pose of ``skeleton`` repeated ``t`` frames: its foot joints on y = 0, y up."""
    return _static(t, P.SKELETONS[skeleton]["joints"], P.JOINT_GROUPS[skeleton]["feet"])


@pytest.mark.parametrize("skeleton", ["smpl24", "a2m18"])
def test_a_root_centred_clip_gets_its_floor_back(skeleton):
    """Root-centred clips have their floor at an unknown height: with ``ground="feet_min"`` a body
    lifted 0.1 m off its lowest foot for a quarter of the frames floats 100 mm * 1/4 = 25 mm, a
    hand 3 cm below the feet for half the frames penetrates 30 mm * 1/2 = 15 mm, whatever the
    offset of the whole clip (0.9 m below, as a pelvis moved to the origin puts the floor)."""
    t = 40
    seq = _action_static(t, skeleton)
    seq[30:] += np.array([0.0, 0.1, 0.0])                  # a jump: 10 of 40 frames 0.1 m up
    hand = P.JOINT_GROUPS[skeleton]["hands"][0]
    dip = seq.copy()
    dip[:20, hand, 1] = -0.03                              # 20 of 40 frames: a hand 3 cm under the feet
    for offset in (0.0, -0.9, 2.0):
        shift = np.array([0.0, offset, 0.0])
        out = P.physical_metrics((seq + shift)[None], skeleton=skeleton, ground=P.GROUND_FEET_MIN)
        assert out["float_mm"]["value"] == pytest.approx(100.0 * 10 / 40)
        assert out["penetrate_mm"]["value"] == 0.0
        out = P.physical_metrics((dip + shift)[None], skeleton=skeleton, ground=P.GROUND_FEET_MIN)
        assert out["penetrate_mm"]["value"] == pytest.approx(30.0 * 20 / 40)
    # a fixed ground at 0 sees the 0.9 m offset as penetration (900 mm standing, 800 mm in the
    # jump): the estimate is what removes it
    fixed = P.physical_metrics((seq - np.array([0.0, 0.9, 0.0]))[None], skeleton=skeleton)
    assert fixed["penetrate_mm"]["value"] == pytest.approx((900.0 * 30 + 800.0 * 10) / 40)


def test_the_floor_is_estimated_per_sequence_over_valid_frames():
    a = _action_static(20, "smpl24") + np.array([0.0, 0.5, 0.0])       # floor 0.5 m up
    b = _action_static(20, "smpl24") + np.array([0.0, -0.3, 0.0])      # floor 0.3 m down ...
    b[12:] += np.array([0.0, 0.05, 0.0])                               # ... 5 cm up from frame 12
    b[16:] -= np.array([0.0, 1.0, 0.0])                                # padding far below: not read
    out = P.physical_metrics(np.stack([a, b]), [20, 16], skeleton="smpl24", ground=P.GROUND_FEET_MIN)
    assert out["float_mm"]["value"] == pytest.approx((0.0 + 50.0 * 4 / 16) / 2)
    assert out["penetrate_mm"]["value"] == 0.0
    np.testing.assert_allclose(P.feet_floor(np.stack([a, b]), np.array([20, 16]), (7, 8, 10, 11)), [0.5, -0.3])


@pytest.mark.parametrize("skeleton", ["smpl24", "a2m18"])
def test_y_down_camera_frames_equal_the_y_up_motion(skeleton):
    """``up="-y"``: the camera-frame clip (y negated) gives every value of the y-up clip."""
    t = 30
    seq = _action_static(t, skeleton)
    seq[:, :, 0] += 1.0 * np.arange(t)[:, None] / FPS                  # sliding at 1 m/s
    seq[15:] += np.array([0.0, 0.08, 0.0])                             # then lifted 8 cm
    seq[:, :, 2] += 0.01 * np.sin(np.arange(t))[:, None]
    y_up = P.physical_metrics(seq[None], skeleton=skeleton, ground=P.GROUND_FEET_MIN)
    camera = seq * np.array([1.0, -1.0, 1.0]) - np.array([0.0, 0.9, 0.0])
    y_down = P.physical_metrics(camera[None], skeleton=skeleton, ground=P.GROUND_FEET_MIN, up="-y")
    for key in y_up:
        assert y_down[key]["value"] == pytest.approx(y_up[key]["value"], rel=1e-12, abs=1e-12), key
    assert y_up["skating_ratio"]["value"] > 0 and y_up["float_mm"]["value"] > 0
    # read the wrong way up, the floor lands at the top of the feet and the body sinks through it
    wrong = P.physical_metrics(camera[None], skeleton=skeleton, ground=P.GROUND_FEET_MIN)
    assert wrong["penetrate_mm"]["value"] > 100.0


@pytest.mark.parametrize("skeleton, feet", [("smpl24", (10, 11)), ("a2m18", (15, 16))])
def test_action_skating_feet(skeleton, feet):
    """Only the skating feet count: SMPL's foot joints 10/11; UESTC's heels 15/16 (no foot joints)."""
    t = 30
    seq = _action_static(t, skeleton)
    seq[:, :, 1] += 0.2                                                 # every joint lifted ...
    seq[:, list(feet), 1] = 0.0                                         # ... but the skating feet
    seq[:, list(feet), 0] += 1.0 * np.arange(t)[:, None] / FPS          # which slide at 1 m/s
    assert P.skating_ratio(seq[None], skeleton=skeleton) == pytest.approx(1.0)
    seq[:, list(feet), 1] = 0.2
    assert P.skating_ratio(seq[None], skeleton=skeleton) == 0.0


def test_action_groups_follow_the_published_chains():
    # HumanAct12: the SMPL chains of the loader; UESTC: ACTOR's vibe_kinematic_chain
    # (src/visualize/anim.py), over the 18 action2motion joints
    vibe_chain = [[0, 12, 13, 14, 15], [0, 9, 10, 11, 16], [0, 1, 8, 17], [1, 5, 6, 7], [1, 2, 3, 4]]
    for name, chains, legs, arms in (("smpl24", SMPL24_CHAIN, (0, 1), (3, 4)), ("a2m18", vibe_chain, (0, 1), (3, 4))):
        groups = P.JOINT_GROUPS[name]
        assert P.SKELETONS[name]["joints"] == len(groups["body"]) == 1 + max(max(c) for c in chains)
        assert set(groups["feet"]) == {j for i in legs for j in chains[i][-2:]}
        assert set(groups["hands"]) == {chains[i][-1] for i in arms}
        assert set(P.SKELETONS[name]["skate_feet"]) == {chains[i][-1] for i in legs}


def test_bad_up_and_ground_are_rejected():
    with pytest.raises(ValueError, match="up must be one of"):
        P.physical_metrics(np.zeros((1, 10, 24, 3)), skeleton="smpl24", up="z")
    with pytest.raises(ValueError, match="ground must be a height in metres or 'feet_min'"):
        P.physical_metrics(np.zeros((1, 10, 24, 3)), skeleton="smpl24", ground="lowest")
