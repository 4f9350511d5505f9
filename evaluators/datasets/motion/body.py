"""A procedural 22-joint body (SMPL/HumanML3D joint order) driven by composable motion primitives.

Used by ``synth_t2m`` (and, through it, ``synth_action``) to generate joint positions that the
real feature pipeline then converts. Every primitive returns per-frame *angle tracks* (limb
swing/abduction, knee/elbow flexion, spine lean), forward speed and yaw rate in the body frame;
a clip is a concatenation of primitives, smoothed at the seams, integrated into a root
trajectory and put on the ground (lowest foot at y = 0, plus a jump's flight height).
Body frame: Y up, facing +Z, the body's left is +X (SMPL convention).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from evaluators.datasets.motion.humanml3d_features import T2M_TARGET_BONE_LENGTHS
from evaluators.datasets.motion.kinematics import T2M

TRACKS = ("l_thigh", "r_thigh", "l_thigh_ab", "r_thigh_ab", "l_knee", "r_knee", "l_arm", "r_arm", "l_arm_ab",
          "r_arm_ab", "l_elbow", "r_elbow", "l_fore_ab", "r_fore_ab", "lean", "lift", "speed", "yaw_rate", "side")

# primitive name -> (caption phrases, kind). Phrases are third-person verb phrases.
PHRASES = {
    "walk": ["walks forward", "walks straight ahead", "takes a few steps forward"],
    "walk_back": ["walks backwards", "takes a few steps backward"],
    "run": ["runs forward", "jogs straight ahead", "runs ahead"],
    "jump": ["jumps up", "jumps in place", "does a jump"],
    "wave_right": ["waves with the right hand", "waves his right hand", "raises the right arm and waves"],
    "wave_left": ["waves with the left hand", "waves his left hand", "raises the left arm and waves"],
    "kick_right": ["kicks with the right leg", "kicks forward with the right foot"],
    "kick_left": ["kicks with the left leg", "kicks forward with the left foot"],
    "squat": ["squats down and stands back up", "does a squat", "bends the knees into a squat"],
    "sit": ["sits down", "crouches down and stays low"],
    "turn_left": ["turns to the left", "turns left"],
    "turn_right": ["turns to the right", "turns right"],
    "raise_arms": ["raises both arms", "lifts both hands above the head"],
    "stand": ["stands still", "stays in place"],
    "side_left": ["steps to the left", "walks sideways to the left"],
}
PRIMITIVES = tuple(PHRASES)
# extra primitives used only by synth_action (HumanAct12 classes without a caption template)
ACTION_ONLY = ("warm_up", "drink", "lift_dumbbell", "eat", "steering", "phone", "boxing", "throw")


def _bump(n: int) -> np.ndarray:
    """Smooth 0→1→0 over n frames."""
    return np.sin(np.linspace(0.0, np.pi, n)) ** 2


def primitive(name: str, n: int, rng: np.random.Generator, speed: float = 1.0) -> dict[str, np.ndarray]:
    """Angle/speed tracks [n] of one primitive at 20 fps; ``speed`` scales tempo and stride."""
    tr = {k: np.zeros(n) for k in TRACKS}
    t = np.arange(n) / 20.0
    tr["l_arm_ab"][:] = tr["r_arm_ab"][:] = 0.12
    tr["l_fore_ab"][:] = tr["r_fore_ab"][:] = 0.12
    tr["l_elbow"][:] = tr["r_elbow"][:] = 0.15
    phase = rng.uniform(0, 2 * np.pi)
    if name in ("walk", "walk_back", "run", "side_left"):
        run = name == "run"
        freq = (1.5 if run else 0.9) * speed
        amp = (0.65 if run else 0.42) * min(speed, 1.3)
        s = np.sin(2 * np.pi * freq * t + phase)
        if name == "side_left":
            tr["l_thigh_ab"][:] = 0.25 * np.maximum(s, 0)
            tr["r_thigh_ab"][:] = 0.25 * np.maximum(-s, 0)
            tr["side"][:] = 0.022 * speed
        else:
            tr["l_thigh"][:], tr["r_thigh"][:] = amp * s, -amp * s
            tr["l_arm"][:], tr["r_arm"][:] = -0.8 * amp * s, 0.8 * amp * s
            stride = 2 * 0.9 * np.sin(amp)  # two steps per cycle, leg length ~0.9 m
            tr["speed"][:] = stride * freq / 20.0 * (-0.6 if name == "walk_back" else 1.0)
        knee = (1.3 if run else 0.7) * np.maximum(0, np.sin(2 * np.pi * freq * t + phase + np.pi / 2))
        tr["l_knee"][:], tr["r_knee"][:] = knee, (1.3 if run else 0.7) * np.maximum(
            0, np.sin(2 * np.pi * freq * t + phase - np.pi / 2))
        if run:
            tr["l_elbow"][:] = tr["r_elbow"][:] = 1.4
            tr["lean"][:] = 0.2
    elif name == "jump":
        b = _bump(n)
        crouch = _bump(max(n // 2, 2))
        tr["l_knee"][: len(crouch)] = tr["r_knee"][: len(crouch)] = 1.2 * crouch
        tr["l_thigh"][: len(crouch)] = tr["r_thigh"][: len(crouch)] = 0.6 * crouch
        flight = _bump(n - len(crouch))
        tr["lift"][len(crouch):] = 0.35 * speed * flight
        tr["l_arm"][:] = tr["r_arm"][:] = 2.2 * b
    elif name in ("wave_right", "wave_left"):
        side = "r" if name == "wave_right" else "l"
        env = np.clip(np.minimum(t, t[::-1]) * 4.0, 0, 1)
        tr[f"{side}_arm_ab"][:] = 0.12 + 2.3 * env
        tr[f"{side}_elbow"][:] = 0.2 * env
        tr[f"{side}_fore_ab"][:] = 0.12 + env * (2.6 + 0.45 * np.sin(2 * np.pi * 2.2 * speed * t))
    elif name in ("kick_right", "kick_left"):
        side = "r" if name == "kick_right" else "l"
        b = _bump(n)
        tr[f"{side}_thigh"][:] = 1.3 * b
        tr[f"{side}_knee"][:] = 1.0 * _bump(n) * (1 - b) * 2
        tr["l_arm"][:] = tr["r_arm"][:] = -0.3 * b
    elif name in ("squat", "sit"):
        s = _bump(n) if name == "squat" else np.clip(np.linspace(-0.3, 1.6, n), 0, 1) ** 2 * (3 - 2 * np.clip(
            np.linspace(-0.3, 1.6, n), 0, 1))
        tr["l_thigh"][:] = tr["r_thigh"][:] = 1.5 * s
        tr["l_knee"][:] = tr["r_knee"][:] = 2.2 * s
        tr["lean"][:] = 0.45 * s
        tr["l_arm"][:] = tr["r_arm"][:] = (1.4 if name == "squat" else 0.5) * s
    elif name in ("turn_left", "turn_right"):
        total = rng.choice([np.pi / 2, np.pi]) * (1 if name == "turn_left" else -1)
        tr["yaw_rate"][:] = total * _bump(n) / _bump(n).sum()
        step = 0.25 * np.abs(np.sin(2 * np.pi * 1.2 * t))
        tr["l_thigh"][:], tr["l_knee"][:] = step, 1.5 * step
    elif name == "raise_arms":
        b = np.clip(np.minimum(t, t[::-1]) * 2.5, 0, 1)
        tr["l_arm_ab"][:] = tr["r_arm_ab"][:] = 0.12 + 2.7 * b
        tr["l_fore_ab"][:] = tr["r_fore_ab"][:] = 0.12 + 2.8 * b
    elif name in ACTION_ONLY:
        _action_tracks(name, tr, t, speed, rng)
    elif name == "stand":
        tr["lean"][:] = 0.03 * np.sin(2 * np.pi * 0.3 * t + phase)
    else:
        raise ValueError(f"unknown primitive {name!r}; known: {PRIMITIVES}")
    return tr


def _action_tracks(name: str, tr: dict, t: np.ndarray, speed: float, rng: np.random.Generator) -> None:
    """Arm-driven primitives of the HumanAct12 classes (hand to mouth/ear, punches, throws...)."""
    env = np.clip(np.minimum(t, t[::-1]) * 4.0, 0, 1)
    osc = np.sin(2 * np.pi * speed * t * rng.uniform(0.8, 1.2))
    if name == "warm_up":  # arm circles with a bounce
        tr["l_arm"][:] = tr["r_arm"][:] = 1.6 + 1.4 * osc * env
        tr["l_knee"][:] = tr["r_knee"][:] = 0.25 * (1 + osc) * env
        tr["l_thigh"][:] = tr["r_thigh"][:] = 0.12 * (1 + osc) * env
    elif name in ("drink", "eat"):  # right hand to the mouth (repeatedly for eat)
        lift = env if name == "drink" else env * (0.6 + 0.4 * np.abs(osc))
        tr["r_arm"][:] = 0.5 * lift
        tr["r_elbow"][:] = 0.15 + 2.4 * lift
        if name == "eat":
            tr["l_arm"][:], tr["l_elbow"][:] = 0.5, 1.4
    elif name == "phone":  # right hand held at the ear
        tr["r_arm_ab"][:] = 0.12 + 0.6 * env
        tr["r_fore_ab"][:] = 0.12 + 2.5 * env
        tr["r_arm"][:] = 0.2 * env
    elif name == "lift_dumbbell":  # biceps curls
        tr["l_elbow"][:] = tr["r_elbow"][:] = 0.15 + 1.1 * (1 - np.cos(2 * np.pi * 0.7 * speed * t)) * env
    elif name == "steering":  # arms forward, rotating a wheel
        tr["l_arm"][:] = tr["r_arm"][:] = 1.1 * env
        tr["l_elbow"][:] = tr["r_elbow"][:] = 0.5 * env
        tr["l_arm_ab"][:] = 0.12 + 0.35 * (1 + osc) * env
        tr["r_arm_ab"][:] = 0.12 + 0.35 * (1 - osc) * env
    elif name == "boxing":  # alternating punches, guard up
        p = np.maximum(0, np.sin(2 * np.pi * 1.3 * speed * t))
        q = np.maximum(0, -np.sin(2 * np.pi * 1.3 * speed * t))
        tr["l_arm"][:], tr["r_arm"][:] = (0.9 + 0.6 * p) * env, (0.9 + 0.6 * q) * env
        tr["l_elbow"][:], tr["r_elbow"][:] = (1.6 - 1.5 * p) * env, (1.6 - 1.5 * q) * env
        tr["l_knee"][:] = tr["r_knee"][:] = 0.3 * env
    elif name == "throw":  # wind up behind, throw forward-up
        u = np.clip(t / max(t[-1], 1e-6), 0, 1)
        wind = np.sin(np.pi * np.clip(u * 2, 0, 1))
        fling = np.sin(np.pi * np.clip(u * 2 - 1, 0, 1))
        tr["r_arm"][:] = -1.0 * wind + 2.4 * fling
        tr["r_elbow"][:] = 1.5 * wind
        tr["lean"][:] = -0.15 * wind + 0.3 * fling
        tr["l_thigh"][:] = 0.4 * fling


def _swing(f: np.ndarray, ab: np.ndarray, side: float) -> np.ndarray:
    """Unit direction of a limb hanging down, swung forward by ``f`` and abducted by ``ab`` [T, 3]."""
    x = side * np.sin(ab)
    y = -np.cos(ab) * np.cos(f)
    z = np.cos(ab) * np.sin(f)
    return np.stack([x, y, z], axis=-1)


def pose_clip(tracks: dict[str, np.ndarray], bone_scale: np.ndarray) -> np.ndarray:
    """Joint positions [T, 22, 3] in world space (Y up) from concatenated tracks."""
    n = len(tracks["speed"])
    lens = np.concatenate([[0.0], T2M_TARGET_BONE_LENGTHS]) * bone_scale
    par = T2M.parents
    d = np.zeros((n, 22, 3))
    d[:] = T2M.raw_offsets  # default bone directions
    lean = tracks["lean"]
    up = np.stack([np.zeros(n), np.cos(lean), np.sin(lean)], -1)
    for j in (3, 6, 9, 12, 15):
        d[:, j] = up
    d[:, 16], d[:, 17] = (1.0, 0.0, 0.0), (-1.0, 0.0, 0.0)  # collar -> shoulder points outwards
    # bone j = parent(j) -> j: thigh ends at the knee (4/5), shank at the ankle (7/8), foot at 10/11,
    # upper arm at the elbow (18/19), forearm at the wrist (20/21)
    for side, sgn, (thigh, shank, foot), (upper, fore) in (("l", 1.0, (4, 7, 10), (18, 20)),
                                                            ("r", -1.0, (5, 8, 11), (19, 21))):
        f = tracks[f"{side}_thigh"]
        d[:, thigh] = _swing(f, tracks[f"{side}_thigh_ab"], sgn)
        shank_f = f - tracks[f"{side}_knee"]
        d[:, shank] = _swing(shank_f, tracks[f"{side}_thigh_ab"], sgn)
        foot_dir = np.stack([np.zeros(n), -np.sin(shank_f) * 0.3, np.cos(shank_f)], -1)
        d[:, foot] = foot_dir / np.linalg.norm(foot_dir, axis=-1, keepdims=True)
        a = tracks[f"{side}_arm"]
        d[:, upper] = _swing(a, tracks[f"{side}_arm_ab"], sgn)
        d[:, fore] = _swing(a + tracks[f"{side}_elbow"], tracks[f"{side}_fore_ab"], sgn)
    body = np.zeros((n, 22, 3))
    for j in range(1, 22):  # parents precede children in SMPL order
        body[:, j] = body[:, par[j]] + d[:, j] * lens[j]
    # root trajectory
    yaw = np.cumsum(tracks["yaw_rate"])
    c, s = np.cos(yaw), np.sin(yaw)
    step_z, step_x = tracks["speed"], tracks["side"]
    root = np.zeros((n, 3))
    root[1:, 0] = np.cumsum((s * step_z + c * step_x)[:-1])
    root[1:, 2] = np.cumsum((c * step_z - s * step_x)[:-1])
    rot = np.zeros((n, 3, 3))
    rot[:, 0, 0], rot[:, 0, 2], rot[:, 1, 1], rot[:, 2, 0], rot[:, 2, 2] = c, s, 1.0, -s, c
    world = np.einsum("tij,tkj->tki", rot, body) + root[:, None]
    feet = world[:, [10, 11], 1].min(axis=1)
    world[..., 1] += (-feet + tracks["lift"])[:, None]
    return world


def compose(prims: list[tuple[str, int, float]], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Concatenate primitives ``(name, frames, speed)`` and smooth the seams (σ = 2 frames)."""
    parts = [primitive(name, n, rng, speed) for name, n, speed in prims]
    out = {k: np.concatenate([p[k] for p in parts]) for k in TRACKS}
    for k in TRACKS:
        if k not in ("yaw_rate", "speed", "side"):
            out[k] = gaussian_filter1d(out[k], 2.0, mode="nearest")
    return out
