"""``synth_ntu``: a seeded synthetic NTU RGB+D that writes real ``.skeleton`` files.

The generator (< 30 s at the default size, byte-identical for the same seed) renders an
articulated 25-joint body (:mod:`skeleton_synth_body`) performing one of up to 15 actions
(periodic limb motions, locomotion, sit down / stand up, and two-person interactions),
with subject-specific bone lengths and style, seen by 3 cameras at different yaw (the same
performance from each camera, as in NTU), several setups (camera distance/height), Kinect-
like sensor noise with inferred/untracked joints, dropped frames, tracking-id switches and
occasional spurious extra bodies (short blips and flat "furniture" bodies that the official
denoising removes), plus a few all-empty samples listed in a missing-skeleton list.

Files are named ``SsssCcccPpppRrrrAaaa.skeleton`` (CRLF, the NTU text layout), so the real
NTU loader, denoising, centring, padding and split rules (xsub by default) run unchanged.
Output: ``cache_root()/synth_ntu-<cache_key>/`` written into a staging directory and
renamed into place in one step (a killed run never leaves a partial dataset).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from evaluators.datasets.base import register_dataset
from evaluators.datasets.cache import build_staged, cache_key, cache_root, valid_or_discard
from evaluators.datasets.skeleton.build import load_ntu_like
from evaluators.datasets.skeleton.synth_body import (
    ACTIONS,
    envelope,
    forward_kinematics,
    rest_pose,
    subject_bones,
    subject_style,
)

log = logging.getLogger(__name__)
GENERATOR_VERSION = 3
DEFAULTS = {
    "seed": 0, "num_actions": 12, "subjects": [1, 2, 4, 5, 8, 3, 6, 7, 10, 11], "cameras": [1, 2, 3],
    "setups": [1, 2, 3], "replications": [1], "frames": [40, 80], "sensor_noise": 0.012,
    "style_noise": 1.0, "p_inferred": 0.03, "p_drop_frame": 0.02, "p_id_switch": 0.05,
    "p_spurious": 0.12, "missing_samples": 2, "p_distractor": 0.5, "p_left_handed": 0.3,
    "heading_std": 0.4,
}
# single-person, in-place actions that may be blended in faintly as a distractor motion
DISTRACTORS = ("wave_right_hand", "clap", "raise_both_hands", "kick", "bow", "punch", "drink")
CAM_YAW = {1: 0.0, 2: np.pi / 4, 3: -np.pi / 4}  # NTU: three cameras at -45, 0, +45 degrees
# children for joint orientations (bone parent -> child); leaves get (0, 0, 0, 0) as in NTU files
CHILD = {0: 1, 1: 20, 20: 2, 2: 3, 4: 5, 5: 6, 6: 7, 7: 21, 8: 9, 9: 10, 10: 11, 11: 23,
         12: 13, 13: 14, 14: 15, 16: 17, 17: 18, 18: 19}
FOOT_JOINTS = [14, 15, 18, 19]


def _opts(cfg: dict) -> dict:
    o = {k: cfg.get(k, v) for k, v in DEFAULTS.items()}
    if not 1 <= int(o["num_actions"]) <= len(ACTIONS):
        raise ValueError(f"synth_ntu num_actions must be in 1..{len(ACTIONS)}, got {o['num_actions']}")
    return o


def mirror(pose: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Swap left and right limbs (a left-handed subject waves, kicks, drinks with the other side)."""
    out = {}
    for k, v in pose.items():
        out[("r_" + k[2:]) if k.startswith("l_") else ("l_" + k[2:]) if k.startswith("r_") else k] = v
    out["twist"], out["roll"] = -pose["twist"], -pose["roll"]
    return out


def _rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def perform(action: int, performer: int, rep: int, setup: int, o: dict) -> list[np.ndarray]:
    """World joints ``[T, 25, 3]`` (y up, ground at 0) of each person in one performance."""
    seed = int(o["seed"])
    rng = np.random.default_rng([seed, setup, performer, rep, action])
    srng = np.random.default_rng([seed, 1000 + performer])  # the subject: same in every sample
    bones, style = subject_bones(srng), subject_style(srng)
    lo, hi = o["frames"]
    T = int(rng.integers(lo, hi + 1))
    name, fn, persons, takes_root = ACTIONS[action - 1]
    left_handed = srng.random() < o["p_left_handed"]
    heading = np.pi + (0.45 if rep % 2 else -0.45) + rng.normal(0, o["heading_std"])
    out = []
    for who in range(persons):
        b, st = (bones, style) if who == 0 else (subject_bones(rng), subject_style(rng))
        t, u = np.arange(T) / 30.0, np.linspace(0, 1, T)
        pose = rest_pose(T, rng, st)
        k = float(o["style_noise"])
        a = st["amp"] ** k * rng.uniform(1 - 0.15 * k, 1 + 0.15 * k)
        f = st["speed"] ** k * rng.uniform(1 - 0.15 * k, 1 + 0.2 * k)
        e = envelope(u, rng)
        root = np.zeros((T, 3))
        args = (pose, t, u, e, rng, a, f) + ((who,) if persons == 2 else ()) + ((root,) if takes_root else ())
        fn(*args)
        if rng.random() < o["p_distractor"]:  # a faint, partial second motion (people fidget)
            dname = DISTRACTORS[int(rng.integers(len(DISTRACTORS)))]
            dfn = next(x[1] for x in ACTIONS if x[0] == dname)
            dfn(pose, t, u, envelope(u, rng) * rng.uniform(0.25, 0.6), rng, a, f)
        if left_handed and who == 0:
            pose = mirror(pose)
        J = forward_kinematics(pose, b)
        J[..., 1] -= J[:, FOOT_JOINTS, 1].min(axis=1, keepdims=True) - 0.05  # feet on the ground
        if persons == 1:
            psi, pos = heading, rng.normal(0, 0.25, 2)
        else:
            gap = 2.8 if name == "approach_each_other" else rng.uniform(0.95, 1.15)
            side = -1 if who == 0 else 1
            psi = heading + np.pi / 2 + (np.pi if who else 0.0)  # the two face each other
            axis = _rot_y(heading + np.pi / 2) @ np.array([0, 0, 1.0])
            pos = side * gap / 2 * axis[[0, 2]] + rng.normal(0, 0.05, 2)
        R = _rot_y(psi)
        W = (J + root[:, None, :]) @ R.T
        W[..., 0] += pos[0]
        W[..., 2] += pos[1]
        out.append(W)
    return out


def to_camera(W: np.ndarray, camera: int, setup: int, seed: int) -> np.ndarray:
    """World -> Kinect camera space (x to the sensor's left, y up, z depth) for a camera/setup."""
    srng = np.random.default_rng([seed, 5000 + setup])
    dist, height, yaw0 = srng.uniform(2.6, 3.6), srng.uniform(0.55, 1.1), srng.normal(0, 0.12)
    phi = CAM_YAW[camera] + yaw0
    C = np.array([dist * np.sin(phi), height, -dist * np.cos(phi)])
    z = np.array([-np.sin(phi), 0.0, np.cos(phi)])
    y = np.array([0.0, 1.0, 0.0])
    x = np.cross(y, z)
    return (W - C) @ np.stack([x, y, z], 1)


def _quat(J: np.ndarray) -> np.ndarray:
    """Joint orientations ``[T, 25, 4]`` (w, x, y, z): rotation of +y onto the bone to the child."""
    q = np.zeros(J.shape[:2] + (4,))
    par, ch = np.array(list(CHILD)), np.array(list(CHILD.values()))
    d = J[:, ch] - J[:, par]
    d /= np.linalg.norm(d, axis=-1, keepdims=True).clip(1e-9)
    w = 1.0 + d[..., 1]
    v = np.stack([d[..., 2], np.zeros_like(w), -d[..., 0]], -1)  # (0,1,0) x d
    qq = np.concatenate([w[..., None], v], -1)
    q[:, par] = qq / np.linalg.norm(qq, axis=-1, keepdims=True).clip(1e-9)
    return q


_JOINT_FMT = ("%.7g " * 11 + "%d\r\n") * 25


def _body_block(bid: str, Jf: np.ndarray, qf: np.ndarray, state: np.ndarray, hands, lean) -> str:
    """One body in one frame: the info line, "25", and 25 joint lines (Kinect v2 projections)."""
    z = np.maximum(Jf[:, 2], 0.3)
    depth = np.stack([256 - 365.0 * Jf[:, 0] / z, 212 - 365.0 * Jf[:, 1] / z], -1)
    color = np.stack([960 - 1081.0 * Jf[:, 0] / z, 540 - 1081.0 * Jf[:, 1] / z], -1)
    rows = np.concatenate([Jf, depth, color, qf, state[:, None]], -1)
    info = f"{bid} 0 1 {hands[0]} 1 {hands[1]} 0 {lean[0]:.7g} {lean[1]:.7g} 2\r\n25\r\n"
    return info + _JOINT_FMT % tuple(rows.ravel().tolist())


def render_file(bodies: list[np.ndarray], camera: int, setup: int, key: list[int], o: dict,
                empty: bool = False) -> str:
    """The ``.skeleton`` text of one performance seen by one camera (sensor effects included)."""
    rng = np.random.default_rng(key + [camera, 77])
    T = len(bodies[0])
    if empty:
        return f"{T}\r\n" + "0\r\n" * T
    base = 72057594037927936 + int(rng.integers(1000, 20000))
    tracks = []  # (id per frame [T] or None, joints [T, 25, 3], present [T])
    for i, W in enumerate(bodies):
        J = to_camera(W, camera, setup, int(o["seed"]))
        ids = np.full(T, str(base + 7 * i), dtype=object)
        if i == 0 and rng.random() < o["p_id_switch"] and T > 40:
            ids[int(rng.integers(15, T - 15)):] = str(base + 7 * i + 3)
        present = rng.random(T) >= (o["p_drop_frame"] if len(bodies) > 1 else 0.0)
        tracks.append((ids, J, present))
    if rng.random() < o["p_spurious"]:
        n = int(rng.integers(3, 12)) if rng.random() < 0.5 else int(rng.integers(15, 41))
        s = int(rng.integers(0, max(1, T - n)))
        J = np.zeros((T, 25, 3))
        c = np.array([rng.uniform(-1.5, 1.5), rng.uniform(-0.9, -0.3), rng.uniform(2.0, 4.0)])
        spread = np.array([1.2, 0.15, 0.3]) if n > 11 else np.array([0.4, 1.2, 0.3])  # flat vs blip
        J[:] = c + rng.uniform(-0.5, 0.5, (1, 25, 3)) * spread
        pres = np.zeros(T, bool)
        pres[s:s + n] = True
        tracks.append((np.full(T, str(base + 50), dtype=object), J + rng.normal(0, 0.01, J.shape), pres))
    dropped = rng.random(T) < o["p_drop_frame"]
    dropped[0] = False
    sigma = float(o["sensor_noise"])
    blocks = []  # per track: the text block of each frame, sensor effects applied to the whole track at once
    for ids, J, _ in tracks:
        Jn = J + rng.normal(0, sigma, J.shape)
        inferred = rng.random((T, 25)) < o["p_inferred"]
        Jn[inferred] += rng.normal(0, 3 * sigma, (int(inferred.sum()), 3))
        state = np.where(inferred, 1, 2)
        q = _quat(Jn)
        hands = rng.integers(0, 4, (T, 2))
        lean = np.clip(rng.normal(0, 0.1, (T, 2)), -1, 1)
        blocks.append([_body_block(ids[f], Jn[f], q[f], state[f], hands[f], lean[f]) for f in range(T)])
    parts = [f"{T}\r\n"]
    for f in range(T):
        alive = [] if dropped[f] else [k for k, tr in enumerate(tracks) if tr[2][f]]
        parts.append(f"{len(alive)}\r\n")
        parts.extend(blocks[k][f] for k in alive)
    return "".join(parts)


def generate(cfg: dict) -> Path:
    """Write the synthetic dataset (if not cached) and return its root folder."""
    o = _opts(cfg)
    root = cache_root() / f"synth_ntu-{cache_key('synth_ntu', GENERATOR_VERSION, o)}"
    if valid_or_discard(root, "synth_ntu"):  # sizes + checksums (a damaged copy is rebuilt, one warning)
        return root
    def write(stage: Path) -> None:
        _write_all(stage, o)
        (stage / "DONE").write_text("ok\n")

    return build_staged(root, write)


def _write_all(stage: Path, o: dict) -> None:
    out = stage / "nturgb+d_skeletons"
    out.mkdir()
    perfs = [(s_idx, p, r, a) for s_idx, p in enumerate(o["subjects"]) for r in o["replications"]
             for a in range(1, int(o["num_actions"]) + 1)]
    pick = np.random.default_rng([int(o["seed"]), 99]).permutation(len(perfs))[: int(o["missing_samples"])]
    missing = []
    for i, (s_idx, p, r, a) in enumerate(perfs):
        setup = o["setups"][s_idx % len(o["setups"])]
        bodies = perform(a, p, r, setup, o)
        for c in o["cameras"]:
            name = f"S{setup:03d}C{c:03d}P{p:03d}R{r:03d}A{a:03d}"
            empty = i in pick and c == o["cameras"][0]
            if empty:
                missing.append(name)
            text = render_file(bodies, c, setup, [int(o["seed"]), setup, p, r, a], o, empty=empty)
            with open(out / f"{name}.skeleton", "w", encoding="ascii", newline="") as fh:
                fh.write(text)  # staging dir: the whole folder is renamed into place at the end
    (stage / "NTU_RGBD_samples_with_missing_skeletons.txt").write_text(
        "Synthetic samples with missing skeleton data (same layout as the official list).\n\n"
        + "".join(n + "\n" for n in sorted(missing)))


@register_dataset("synth_ntu", task="skeleton_ssl", source="synthetic")
def load_synth_ntu(cfg: dict):
    """Generate (or reuse) the synthetic set, then load it through the real NTU pipeline."""
    o = _opts(cfg)
    root = generate(cfg)
    info = {"actions": [a[0] for a in ACTIONS[: int(o["num_actions"])]], "generator": o}
    return load_ntu_like({**cfg, "root": str(root)}, rule=cfg.get("split_rule", "ntu60_xsub"),
                         num_classes=int(o["num_actions"]), ntu60_only=False, single_actor="zeros",
                         source="synthetic", root=root, info=info)
