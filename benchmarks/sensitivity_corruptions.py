"""Controlled defects applied to ground-truth text-to-motion test motions (HumanML3D layout).

Each corruption maps a test split (:class:`~evaluators.networks.t2m_data.T2MSplit`, raw
features ``[T_i, 263 | 251]`` and captions) and a strength ``s`` in [0, 1] to a corrupted
split with the same motions in the same order. ``s = 0`` returns the split itself (no
round trip through joint positions), so every metric at strength 0 is the clean value
exactly. The amount at ``s = 1`` (:data:`CORRUPTIONS`) is ours: chosen so that the largest
level is a clearly visible defect on HumanML3D-scale motion (metres, 20 fps).

Where each corruption acts, and why:

- **joint positions** (``joint_noise``, ``jitter``, ``foot_sliding``, ``temporal_warp``): these
  defects are defined on the body (a joint displaced, a body that shakes, a planted foot that
  moves, a motion played at a varying speed). The features of a motion are redundant (joint
  positions *and* their velocities *and* IK rotations *and* foot contacts); perturbing one block
  of them leaves the others describing the clean motion, a state no generator outputs. So the
  motion goes to positions with the suite's ``recover_full_positions`` (all T+1 processed
  frames behind the T feature frames, :mod:`evaluators.datasets.motion.humanml3d`), is
  corrupted there and comes back through ``extract_features``, which recomputes every block
  consistently (foot contacts included). Retargeting is skipped (``target_offsets=None``):
  retargeting to the template skeleton would project joint noise onto fixed bone lengths and
  hide part of the defect being measured.
- **features directly** (``truncation``): the features are per frame and invariant to the
  global XZ position and yaw, so the first L frames of the features are the features of the
  motion's first L frames (the floor height stays the full motion's, as for a cut generation).
- **captions** (``caption_shuffle``): the motions are untouched; the pairing of motion and
  text is what degrades.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from evaluators.datasets.motion.humanml3d import extract_features, feature_slices, recover_full_positions
from evaluators.networks.t2m_data import T2MSplit

__all__ = ["CORRUPTIONS", "Corruption", "corrupt_split", "round_trip"]


@dataclass(frozen=True)
class Corruption:
    """One defect: ``amount = strength * max_amount`` in ``unit``, acting in ``representation``."""

    name: str
    representation: str   # joints | features | captions
    parameter: str        # what ``amount`` is
    unit: str
    max_amount: float     # amount at strength 1 (ours, see CORRUPTIONS)
    description: str


CORRUPTIONS: dict[str, Corruption] = {c.name: c for c in (
    # ours: 5 cm per coordinate, about the MPJPE of a good 3D pose estimator
    Corruption("joint_noise", "joints", "sigma", "m", 0.05,
               "i.i.d. Gaussian displacement of every joint in every frame (skeleton not kept rigid)"),
    # ours: 2 cm rigid shake; white noise differenced once, so its power rises to the Nyquist frequency
    Corruption("jitter", "joints", "amplitude", "m", 0.02,
               "high-frequency rigid shake of the whole body: first difference of white noise, per frame"),
    # ours: 2 m/s; the skating threshold of GMD's skating ratio is 0.5 m/s
    Corruption("foot_sliding", "joints", "drift_speed", "m/s", 2.0,
               "the root (whole body) drifts horizontally while a foot is planted (the features' contact labels)"),
    # ours: local playback speed between 1 - 0.9 and 1 + 0.9 times the original at strength 1
    Corruption("temporal_warp", "joints", "speed_modulation", "fraction", 0.9,
               "monotone time warp t -> t + a sin(2 pi t / T + phase) T / (2 pi), same length"),
    # ours: at strength 1 a quarter of each motion remains
    Corruption("truncation", "features", "fraction_removed", "fraction", 0.75,
               "only the first (1 - amount) of each motion's frames are kept (at least 8)"),
    Corruption("caption_shuffle", "captions", "fraction_shuffled", "fraction", 1.0,
               "a fraction of the motions get the captions of another motion"),
)}

MIN_FRAMES = 8  # ours: two evaluator units (unit_length 4) and >= 4 frames for the jerk


def corrupt_split(split: T2MSplit, name: str, strength: float, rng: np.random.Generator, *,
                  joints_num: int = 22, fps: float = 20.0, unit_scale: float = 1.0) -> T2MSplit:
    """The split with corruption ``name`` at ``strength`` in [0, 1] (``0``: the split itself).

    ``unit_scale``: dataset length units per metre (1 for HumanML3D, 1000 for KIT-ML's mm);
    ``fps``: frame rate of the motions (the drift speed of ``foot_sliding`` is per second).
    """
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; one of {sorted(CORRUPTIONS)}")
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must lie in [0, 1], got {strength}")
    if strength == 0.0:
        return split
    c = CORRUPTIONS[name]
    amount = strength * c.max_amount
    if name == "caption_shuffle":
        return _shuffle_captions(split, amount, rng)
    if name == "truncation":
        return _replace_motions(split, [m[:max(MIN_FRAMES, int(round(len(m) * (1.0 - amount))))]
                                        for m in split.motions])
    fn = _JOINT_FNS[name]
    out = []
    for m in split.motions:
        pos = recover_full_positions(m, joints_num)                       # [T+1, J, 3]
        contact = m[:, feature_slices(joints_num)["feet"]] > 0.5          # [T, 4]
        new = fn(pos, amount, rng, fps=fps, unit_scale=unit_scale, contact=contact.any(axis=1))
        out.append(extract_features(new, target_offsets=None))
    return _replace_motions(split, out)


def round_trip(features: np.ndarray, joints_num: int = 22) -> np.ndarray:
    """features -> positions -> features, the path of the joint-space corruptions with no defect."""
    return extract_features(recover_full_positions(features, joints_num), target_offsets=None)


def _replace_motions(split: T2MSplit, motions: list[np.ndarray]) -> T2MSplit:
    return T2MSplit([np.asarray(m, np.float32) for m in motions], split.captions, split.tokens, split.names)


def _joint_noise(pos, sigma, rng, *, unit_scale, **_):
    return pos + rng.normal(0.0, sigma * unit_scale, size=pos.shape)


def _jitter(pos, amp, rng, *, unit_scale, **_):
    # white noise w_t, differenced: (w_t - w_{t-1}) / sqrt(2) keeps the per-frame std at amp and
    # has power spectrum 2 sin^2(pi f / fps): zero at rest, largest at the Nyquist frequency.
    w = rng.normal(0.0, amp * unit_scale, size=(len(pos) + 1, 1, 3))
    return pos + (w[1:] - w[:-1]) / np.sqrt(2.0)


def _foot_sliding(pos, speed, rng, *, fps, unit_scale, contact, **_):
    # contact[t] (foot-contact labels of feature frame t) covers the step from frame t to t+1
    angle = rng.uniform(0.0, 2.0 * np.pi)
    step = speed * unit_scale / fps * np.array([np.cos(angle), 0.0, np.sin(angle)])
    offset = np.concatenate([[0.0], np.cumsum(contact.astype(np.float64))])[:, None] * step   # [T+1, 3]
    return pos + offset[:, None, :]


def _temporal_warp(pos, a, rng, **_):
    n = len(pos)
    u = np.linspace(0.0, 1.0, n)
    phase = rng.uniform(0.0, 2.0 * np.pi)
    # w(0) = 0, w(1) = 1, w'(u) = 1 + a cos(2 pi u + phase) > 0 for a < 1: monotone, same length
    w = u + a / (2.0 * np.pi) * (np.sin(2.0 * np.pi * u + phase) - np.sin(phase))
    src = np.clip(w, 0.0, 1.0) * (n - 1)
    lo = np.floor(src).astype(int).clip(0, n - 2)
    frac = (src - lo)[:, None, None]
    return pos[lo] * (1.0 - frac) + pos[lo + 1] * frac


def _shuffle_captions(split: T2MSplit, fraction: float, rng: np.random.Generator) -> T2MSplit:
    """``round(fraction * N)`` motions, chosen at random, pass their captions (and tokens) one
    step along a random cycle, so none of them keeps its own."""
    n = len(split)
    k = int(round(fraction * n))
    captions, tokens = list(split.captions), list(split.tokens)
    if k >= 2:
        chosen = rng.permutation(n)[:k]
        for src, dst in zip(chosen, np.roll(chosen, 1)):
            captions[dst] = split.captions[src]
            if len(split.tokens) == n:
                tokens[dst] = split.tokens[src]
    return T2MSplit(split.motions, captions, tokens, split.names)


_JOINT_FNS: dict[str, Callable] = {"joint_noise": _joint_noise, "jitter": _jitter,
                                   "foot_sliding": _foot_sliding, "temporal_warp": _temporal_warp}
