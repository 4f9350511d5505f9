"""Articulated 25-joint NTU body and the actions of ``synth_ntu`` (forward kinematics in numpy).

Joint order is Kinect v2 / NTU RGB+D (0-based): 0 spine base, 1 spine middle, 2 neck, 3 head,
4-7 left shoulder/elbow/wrist/hand, 8-11 right shoulder/elbow/wrist/hand, 12-15 left
hip/knee/ankle/foot, 16-19 right hip/knee/ankle/foot, 20 spine at shoulders, 21 left hand
tip, 22 left thumb, 23 right hand tip, 24 right thumb.

Body frame: x = the person's left, y = up, z = forward (right-handed). A pose is a dict of
per-frame angle arrays ``[T]`` (radians); :func:`forward_kinematics` turns it into
``[T, 25, 3]`` metres with the spine base at the origin. Actions are functions of the
normalised time ``u`` in [0, 1], a per-sample random generator and a subject style, so
the same action varies in speed, amplitude, timing and posture across samples/subjects.
"""

from __future__ import annotations

import numpy as np

ANGLES = ("pitch", "twist", "roll", "nod", "l_flex", "l_abd", "l_elb", "r_flex", "r_abd", "r_elb",
          "l_hip", "l_hab", "l_knee", "r_hip", "r_hab", "r_knee")


def subject_bones(rng: np.random.Generator) -> dict[str, float]:
    """Bone lengths (m) of one subject: overall height and per-segment proportions vary."""
    s = rng.uniform(0.86, 1.12)
    arm, leg, tor = rng.uniform(0.92, 1.08, 3)
    return {"spine1": 0.22 * s * tor, "spine2": 0.25 * s * tor, "neck": 0.07 * s, "head": 0.13 * s,
            "shoulder": 0.18 * s * rng.uniform(0.9, 1.1), "upper": 0.29 * s * arm, "fore": 0.26 * s * arm,
            "hand": 0.08 * s, "tip": 0.07 * s, "thumb": 0.05 * s, "hip": 0.09 * s * rng.uniform(0.9, 1.1),
            "thigh": 0.42 * s * leg, "shin": 0.41 * s * leg, "foot": 0.12 * s}


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True).clip(1e-9)


def _limb(flex, abd, side):
    """Direction [T, 3] of a limb hanging down, flexed forward by ``flex`` and abducted by ``abd``."""
    return _unit(np.stack([side * np.sin(abd), -np.cos(flex) * np.cos(abd), np.sin(flex) * np.cos(abd)], -1))


def _bend(d, ang, w):
    """Bend direction ``d`` [T, 3] by ``ang`` toward ``w`` (made perpendicular to d)."""
    n = w - (w * d).sum(-1, keepdims=True) * d
    n = _unit(n + 1e-6)
    return _unit(np.cos(ang)[:, None] * d + np.sin(ang)[:, None] * n)


def _rot_y(a):
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, z, s], -1), np.stack([z, o, z], -1), np.stack([-s, z, c], -1)], -2)


def _rot_x(a):
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, s], -1), np.stack([z, -s, c], -1)], -2)


def _rot_z(a):
    c, s = np.cos(a), np.sin(a)
    z, o = np.zeros_like(a), np.ones_like(a)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


def forward_kinematics(pose: dict[str, np.ndarray], b: dict[str, float]) -> np.ndarray:
    """Pose angles ``[T]`` each -> joints ``[T, 25, 3]`` in the body frame (spine base at origin)."""
    T = len(pose["pitch"])
    J = np.zeros((T, 25, 3))
    # torso rotation: twist about y, forward pitch about x, sideways roll about z
    R = _rot_y(pose["twist"]) @ _rot_x(pose["pitch"]) @ _rot_z(pose["roll"])
    up = R[..., :, 1]
    left = R[..., :, 0]
    J[:, 1] = b["spine1"] * up
    J[:, 20] = J[:, 1] + b["spine2"] * up
    head_dir = np.einsum("tij,tj->ti", R, _unit(np.stack([np.zeros(T), np.cos(pose["nod"]),
                                                          np.sin(pose["nod"])], -1)))
    J[:, 2] = J[:, 20] + b["neck"] * head_dir
    J[:, 3] = J[:, 2] + b["head"] * head_dir
    for side, (sh, el, wr, ha, tip, th), pre in ((1.0, (4, 5, 6, 7, 21, 22), "l_"), (-1.0, (8, 9, 10, 11, 23, 24), "r_")):
        J[:, sh] = J[:, 20] + side * b["shoulder"] * left - 0.03 * up
        d_up = np.einsum("tij,tj->ti", R, _limb(pose[pre + "flex"], pose[pre + "abd"], side))
        J[:, el] = J[:, sh] + b["upper"] * d_up
        w = np.einsum("tij,j->ti", R, np.array([0.0, 1.0, 0.6]))
        d_fo = _bend(d_up, pose[pre + "elb"], w)
        J[:, wr] = J[:, el] + b["fore"] * d_fo
        J[:, ha] = J[:, wr] + b["hand"] * d_fo
        J[:, tip] = J[:, ha] + b["tip"] * d_fo
        J[:, th] = J[:, wr] + b["thumb"] * _unit(d_fo - side * 0.8 * left + 0.3 * up)
    fwd = np.stack([np.zeros(T), np.zeros(T), np.ones(T)], -1)
    for side, (hp, kn, an, ft), pre in ((1.0, (12, 13, 14, 15), "l_"), (-1.0, (16, 17, 18, 19), "r_")):
        J[:, hp] = np.array([side * b["hip"], -0.05, 0.0])
        d_th = _limb(pose[pre + "hip"], pose[pre + "hab"], side)
        J[:, kn] = J[:, hp] + b["thigh"] * d_th
        d_sh = _bend(d_th, pose[pre + "knee"], np.array([0.0, -1.0, -1.0]))
        J[:, an] = J[:, kn] + b["shin"] * d_sh
        J[:, ft] = J[:, an] + b["foot"] * _unit(fwd - 0.35 * d_sh)
    return J


def rest_pose(T: int, rng: np.random.Generator, style: dict[str, float]) -> dict[str, np.ndarray]:
    """Standing idle with breathing sway; the subject's resting arm posture varies."""
    t = np.arange(T) / 30.0
    ph = rng.uniform(0, 2 * np.pi)
    sway = 0.02 * np.sin(2 * np.pi * 0.3 * t + ph)
    p = {k: np.zeros(T) for k in ANGLES}
    p["pitch"] += style["lean"] + sway
    p["l_abd"] += style["arm_rest"] + 0.5 * sway
    p["r_abd"] += style["arm_rest"] - 0.5 * sway
    p["l_elb"] += style["elbow_rest"]
    p["r_elb"] += style["elbow_rest"]
    return p


def subject_style(rng: np.random.Generator) -> dict[str, float]:
    return {"lean": rng.uniform(-0.05, 0.12), "arm_rest": rng.uniform(0.05, 0.25),
            "elbow_rest": rng.uniform(0.05, 0.4), "speed": rng.uniform(0.8, 1.25),
            "amp": rng.uniform(0.8, 1.15)}


def _smooth(x):
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def envelope(u: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """0 -> 1 -> 0 window: the action occupies a random part of the clip, idle around it."""
    t0, t1 = rng.uniform(0.0, 0.2), rng.uniform(0.8, 1.0)
    return _smooth((u - t0) / 0.12) * _smooth((t1 - u) / 0.12)


def _osc(t, hz, rng):
    return np.sin(2 * np.pi * hz * t + rng.uniform(0, 2 * np.pi))


def act_wave(p, t, u, e, rng, a, f):
    p["r_abd"] += e * (1.25 * a - p["r_abd"])
    p["r_flex"] += e * 0.3
    p["r_elb"] += e * (1.15 + 0.4 * a * _osc(t, 2.0 * f, rng) - p["r_elb"])


def act_clap(p, t, u, e, rng, a, f):
    osc = 0.5 * (1 + _osc(t, 2.3 * f, rng))
    for s in "lr":
        p[s + "_flex"] += e * 1.15
        p[s + "_abd"] += e * (-0.12 + 0.45 * a * osc - p[s + "_abd"])
        p[s + "_elb"] += e * (0.9 - p[s + "_elb"])


def act_raise_hands(p, t, u, e, rng, a, f):
    lift = 0.5 * (1 - np.cos(2 * np.pi * (0.45 * f) * t + rng.uniform(-0.5, 0.5)))
    for s in "lr":
        p[s + "_flex"] += e * lift * 2.7 * a
        p[s + "_abd"] += e * lift * 0.25


def act_kick(p, t, u, e, rng, a, f):
    pulse = np.maximum(0.0, _osc(t, 1.1 * f, rng)) ** 3
    p["r_hip"] += e * pulse * 1.25 * a
    p["r_knee"] += e * (1 - pulse) * 0.5 * (pulse > 0.05)
    p["pitch"] -= e * pulse * 0.15


def act_walk(p, t, u, e, rng, a, f, root):
    ph = 2 * np.pi * 0.9 * f * t + rng.uniform(0, 2 * np.pi)
    p["l_hip"] += e * 0.4 * a * np.sin(ph)
    p["r_hip"] -= e * 0.4 * a * np.sin(ph)
    p["l_knee"] += e * 0.6 * np.maximum(0, np.cos(ph))
    p["r_knee"] += e * 0.6 * np.maximum(0, -np.cos(ph))
    p["l_flex"] -= e * 0.35 * np.sin(ph)
    p["r_flex"] += e * 0.35 * np.sin(ph)
    root[:, 2] += np.cumsum(e) / 30.0 * 1.0 * f


def act_jump(p, t, u, e, rng, a, f, root):
    ph = 2 * np.pi * 1.1 * f * t + rng.uniform(0, 2 * np.pi)
    air = np.maximum(0.0, np.sin(ph))
    crouch = np.maximum(0.0, -np.sin(ph))
    for s in "lr":
        p[s + "_hip"] += e * crouch * 0.7
        p[s + "_knee"] += e * crouch * 1.1
        p[s + "_flex"] += e * (air * 1.6 * a - crouch * 0.3)
    p["pitch"] += e * crouch * 0.35
    root[:, 1] += e * air * 0.22 * a


def _sit(p, s):
    for side in "lr":
        p[side + "_hip"] += s * 1.5
        p[side + "_knee"] += s * 1.55
        p[side + "_flex"] += s * 0.5
        p[side + "_elb"] += s * 0.6
    p["pitch"] += 0.45 * np.sin(np.pi * s) + 0.1 * s


def act_sit_down(p, t, u, e, rng, a, f, root):
    t0 = rng.uniform(0.1, 0.45)
    s = _smooth((u - t0) / rng.uniform(0.25, 0.45))
    _sit(p, s)
    root[:, 2] -= 0.15 * s


def act_stand_up(p, t, u, e, rng, a, f, root):
    t0 = rng.uniform(0.1, 0.45)
    s = 1 - _smooth((u - t0) / rng.uniform(0.25, 0.45))
    _sit(p, s)
    root[:, 2] -= 0.15 * s


def act_bow(p, t, u, e, rng, a, f):
    lift = 0.5 * (1 - np.cos(2 * np.pi * 0.5 * f * t + rng.uniform(-0.4, 0.4)))
    p["pitch"] += e * lift * 0.85 * a
    p["nod"] += e * lift * 0.3
    for s in "lr":
        p[s + "_flex"] -= e * lift * 0.6


def act_punch(p, t, u, e, rng, a, f):
    ph = 2 * np.pi * 0.8 * f * t + rng.uniform(0, 2 * np.pi)
    for s, sgn in (("l", 1.0), ("r", -1.0)):
        hit = np.maximum(0.0, sgn * np.sin(ph)) ** 2
        p[s + "_flex"] += e * (1.1 + 0.35 * hit * a)
        p[s + "_elb"] += e * (1.9 * (1 - hit) + 0.1 - p[s + "_elb"])
        p[s + "_abd"] -= e * 0.15
    p["twist"] += e * 0.2 * np.sin(ph)


def act_drink(p, t, u, e, rng, a, f):
    p["r_flex"] += e * 0.75
    p["r_abd"] -= e * 0.1
    p["r_elb"] += e * (2.35 - p["r_elb"])
    p["nod"] -= e * 0.3 * (0.5 + 0.5 * _osc(t, 0.4 * f, rng))


def act_side_step(p, t, u, e, rng, a, f, root):
    ph = 2 * np.pi * 0.8 * f * t + rng.uniform(0, 2 * np.pi)
    p["l_hab"] += e * 0.25 * a * np.maximum(0, np.sin(ph))
    p["r_hab"] += e * 0.25 * a * np.maximum(0, -np.sin(ph))
    root[:, 0] += np.cumsum(e) / 30.0 * 0.5 * f


def act_handshake(p, t, u, e, rng, a, f, who):
    p["r_flex"] += e * (0.95 + 0.12 * _osc(t, 2.5 * f, rng))
    p["r_abd"] -= e * 0.15
    p["r_elb"] += e * (0.45 - p["r_elb"])


def act_push(p, t, u, e, rng, a, f, who, root):
    hit = _smooth((u - 0.45) / 0.15)
    if who == 0:  # the pusher: arms forward, elbows extend at the push
        for s in "lr":
            p[s + "_flex"] += e * 1.35
            p[s + "_elb"] += e * (1.6 * (1 - hit) + 0.1 - p[s + "_elb"])
        p["pitch"] += e * 0.2 * hit
    else:  # pushed back: lean back and step away
        p["pitch"] -= 0.25 * hit * np.exp(-4 * np.maximum(0, u - 0.6))
        root[:, 2] -= 0.35 * a * hit
        for s in "lr":
            p[s + "_flex"] += 0.6 * hit


def act_approach(p, t, u, e, rng, a, f, who, root):
    act_walk(p, t, u, e * (u < 0.7), rng, a, f, root)
    p["r_flex"] += e * (u > 0.6) * 0.8


#: (name, function, persons, takes root offsets) in class order (A001, A002, ...)
ACTIONS = (
    ("wave_right_hand", act_wave, 1, False), ("clap", act_clap, 1, False),
    ("raise_both_hands", act_raise_hands, 1, False), ("kick", act_kick, 1, False),
    ("walk", act_walk, 1, True), ("jump", act_jump, 1, True), ("sit_down", act_sit_down, 1, True),
    ("stand_up", act_stand_up, 1, True), ("bow", act_bow, 1, False), ("punch", act_punch, 1, False),
    ("handshake", act_handshake, 2, False), ("push", act_push, 2, True),
    ("drink", act_drink, 1, False), ("side_step", act_side_step, 1, True),
    ("approach_each_other", act_approach, 2, True),
)
