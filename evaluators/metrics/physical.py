"""Physical plausibility of generated motion from joint positions alone (no learned evaluator).

Input everywhere: joint positions ``joints [B, T, J, 3]`` (y up; metres for HumanML3D, the
millimetres of KIT-ML converted through ``units``) and the valid length of each sequence
``lengths [B]`` (``None``: every sequence is ``T`` frames long). Frames at or after a
sequence's length are padding and never enter a per-sequence value. Batch values are the mean
over sequences of the per-sequence values (GMD ``eval/eval_humanml.py``: ``skate_ratio_sum /
all_size``). The one entry point the protocols call on GT and on generated motions is
:func:`physical_metrics`; it returns ``{key: {"value": float, "unit": str}}``.

**Foot skating ratio** (Karunratanakul et al. 2023, GMD; the definition OmniControl and
MotionLCM-v2 reuse). Source: ``korrawe/guided-motion-diffusion``
``data_loaders/humanml/utils/metrics.py`` lines 204-233, ``calculate_skating_ratio`` (commit
2f6264a). Feet = HumanML3D joints 10 (left foot) and 11 (right foot) only, not the ankles 7/8;
horizontal plane XZ, height y, absolute (the authors do not subtract a floor; ``ground`` is
0 as in HumanML3D's processing, which puts the lowest joint of the sequence on y = 0);
``fps`` = 20; horizontal foot speed ``|p[t+1] - p[t]|_xz * fps`` on the T-1 transitions;
contact when the height is < 5 cm at both ends of the transition; a transition skates when a
contact foot's speed is > 0.5 m/s *and* its 5-frame running mean (``uniform_filter1d(size=5,
mode='constant', origin=0)``: centred, zeros beyond the sequence, always divided by 5) is >
0.5 m/s; either foot; ratio = skating transitions / (T - 1). OmniControl uses the same
function (``neu-vi/OmniControl`` ``data_loaders/humanml/utils/metrics.py`` L206-233, commit
76336a6) and adds a KIT-ML variant (L249-276: feet 15 and 20, the toes; ``eval/eval_humanml.py``
L100-110 converts KIT's ``recover_from_ric`` millimetres to metres first, as ``units="mm"``
does here). Their KIT variant keeps ``fps = 20.0``; our KIT default is KIT's 12.5 fps (pass
``fps=20`` to reproduce theirs); the 5-frame window stays 5 frames.

- :func:`skating_ratio` (default): per sequence, the authors' function on the sequence cut to
  its valid length, i.e. count / (L - 1).
- :func:`skating_ratio_authors`: the authors' convention: their function is called on the
  padded batch, so every sequence is divided by ``T_pad - 1`` (a short sequence is diluted).
  With ``lengths`` given, only transitions inside the valid length are counted (the padding is
  the caller's, not the model's); this equals the authors' function on the padded array
  whenever the padded tail adds no skating transition (e.g. a tail repeating the last frame).
  GMD's generator fills all 196 frames with motion and the authors count that tail too: pass
  ``lengths=None`` to reproduce that exactly.

**Ground penetration / floating** (Yuan et al. 2023, PhysDiff, metrics paragraph: "for ground
penetration (Penetrate), we compute the distance between the ground and the lowest body mesh
vertex below the ground", "for floating (Float) ... the lowest body mesh vertex above the
ground", in mm, averaged over frames. PhysDiff released no evaluation code and its text was
not readable here: these quotes come from a public re-implementation that cites them;
re-check before quoting numbers against PhysDiff). The UHC evaluation PhysDiff builds on
(``ZhengyiLuo/UniversalHumanoidControl`` ``uhc/smpllib/smpl_eval.py`` L125-135 at d2bec17,
read here) differs: it averages the depth of *all* vertices below the floor (z = 0), has no
tolerance and no floating metric. Per frame, with ``h`` the height of the lowest *joint*
above ``ground`` (ours: joints instead of SMPL mesh vertices, since the suite's motions are
joint positions; the SMPL foot joints sit a few cm above the sole, so these values are not
comparable to PhysDiff's mesh numbers): penetrate = ``-h`` if ``h < -tol`` else 0; float =
``h`` if ``h > tol`` else 0 (a frame whose lowest joint is within the tolerance, or below the
ground, does not float). ``tol`` = 5 mm is ours (the re-implementation's value; no source fixes
it). Per sequence: mean over its valid frames, zeros included (UHC: mean over frames).

**Jerk** (jitter): mean magnitude of the third time derivative of the joint positions, by the
third finite difference ``(x[t+3] - 3 x[t+2] + 3 x[t+1] - x[t]) * fps**3``, its
Euclidean norm, averaged over the joints of a group and the ``L - 3`` valid frames (the
``compute_jitter`` of ``zju3dv/GVHMR`` ``hmr4d/utils/eval/eval_utils.py`` L313-326 at 44fbc19, after WHAM; they
report it divided by 10, we report m/s^3). Groups per skeleton: :data:`JOINT_GROUPS`.
For a sinusoid ``A sin(w t)`` the jerk magnitude tends to ``A w^3 |cos(w t)|``.

**Action-to-motion skeletons** (HumanAct12, UESTC; the clips the action2motion protocol
evaluates). ``smpl24``: HumanAct12's 24 SMPL joints (ACTOR ``humanact12poses.pkl`` ``joints3D``;
the first 22 are HumanML3D's, so the feet are 10/11 as in GMD). ``a2m18``: UESTC's 18
"action2motion" joints, ACTOR ``action2motion_joints = [8, 1, ..., 21, 24, 38]`` of VIBE's 49
(``src/datasets/ntu13.py`` L14, names from ``JOINT_NAMES`` in ``src/models/smpl.py``): 0 MidHip,
1 Neck, 2-4 right arm, 5-7 left arm, 8 Nose, 9-11 right leg (hip, knee, ankle), 12-14 left leg,
15 LHeel, 16 RHeel, 17 HeadTop. It has no foot joints, so the skating feet are the heels
15/16 (ours: the heels are SMPL mesh vertices on the sole, the closest to GMD's foot joints).
Both are metres, and both are **y down**: the published files are camera frames (ACTOR
``src/preprocess/humanact12_process.py`` builds ``joints3D`` with the Kinect ``c2`` extrinsic;
UESTC holds VIBE's camera-frame joints), which is why ACTOR's renderer turns every mesh 180 degrees
about x (``src/render/renderer.py`` L107-108) and MDM's ``plot_3d_motion`` negates their axes
(``data_loaders/humanml/utils/plot_script.py`` L69-70: "reverse axes"). ``up="-y"`` flips y (a
reflection changes no speed, height or jerk magnitude). ours: the camera's y axis is taken as
the vertical; a tilted camera mixes some depth into the height.

**Floor of root-centred clips** (``ground="feet_min"``). The action protocols move the first
frame's root to the origin (ACTOR ``torch_dataset``), which erases the height of the floor, and
neither dataset states one. ours: per sequence, the floor is the lowest height any foot joint
(:data:`JOINT_GROUPS` ``feet``) reaches over the valid frames (HumanML3D's processing puts the
lowest joint of the whole sequence on y = 0, ``motion_representation.ipynb`` ``process_file``
"Put on Floor"; the feet alone
are used here so that a hand or knee below the feet still counts as penetration). Consequences:
the lowest foot of every sequence touches the floor once, so a body that floats the whole time is
not seen, and ``penetrate_mm`` measures non-foot joints below the lowest foot.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter1d

__all__ = [
    "SKELETONS", "JOINT_GROUPS", "skating_ratio", "skating_ratio_authors", "skating_per_sequence",
    "ground_contact_mm", "jerk", "physical_metrics", "GROUND_FEET_MIN", "feet_floor", "to_y_up",
]

# GMD metrics.py L205-208: thresh_height 0.05 m, thresh_vel 0.50 m/s, avg_window 5 frames.
SKATE_HEIGHT_M = 0.05
SKATE_SPEED_M_S = 0.5
SKATE_WINDOW = 5
# ours: 5 mm tolerance around the ground plane for Penetrate/Float (PhysDiff states none; UHC's
# compute_penetration has none; a public PhysDiff re-implementation uses 5 mm).
GROUND_TOLERANCE_M = 0.005

# Joint counts, frame rates and native units: HumanML3D (SMPL 22 joints, 20 fps, metres);
# KIT-ML (21 joints, 12.5 fps, millimetres; text-to-motion / HumanML3D data processing).
SKELETONS = {
    "humanml3d": {"joints": 22, "fps": 20.0, "units": "m",
                  # GMD metrics.py L211-213: "10 left, 11 right foot"
                  "skate_feet": (10, 11)},
    "kit": {"joints": 21, "fps": 12.5, "units": "mm",
            # OmniControl metrics.py L258 (calculate_skating_ratio_kit): "[15, 20]", the toes
            # ending KIT's leg chains (0,11..15) and (0,16..20).
            "skate_feet": (15, 20)},
    # HumanAct12 (and the synthetic set in its format): SMPL 24 joints, metres; 20 fps as MDM
    # samples and renders it (sample/generate.py L33: 20 for every dataset but KIT) and as
    # HumanML3D uses its clips (raw_pose_processing: HumanAct12 is not resampled to its 20 fps).
    "smpl24": {"joints": 24, "fps": 20.0, "units": "m", "skate_feet": (10, 11)},
    # UESTC: ACTOR's 18 action2motion joints of VIBE (module doc); fps 20 as the dataset config
    # assumes (no source states UESTC's rate for ACTOR's clips). ours: heels as skating feet.
    "a2m18": {"joints": 18, "fps": 20.0, "units": "m", "skate_feet": (15, 16)},
}

# ground="feet_min": per-sequence floor at the lowest foot joint (module doc, action protocols)
GROUND_FEET_MIN = "feet_min"
_UP = ("+y", "-y")

# Joint groups for the jerk (kinematic chains: HumanML3D paramUtil.t2m_kinematic_chain,
# text-to-motion paramUtil.kit_kinematic_chain; see evaluators/datasets/motion/kinematics.py).
# ours: the grouping itself (root = pelvis; feet = ankles + feet/toes; hands = wrists, the
# last joint of each arm chain, as neither skeleton has finger joints).
JOINT_GROUPS = {
    "humanml3d": {"body": tuple(range(22)), "root": (0,), "feet": (7, 8, 10, 11), "hands": (20, 21)},
    "kit": {"body": tuple(range(21)), "root": (0,), "feet": (14, 15, 19, 20), "hands": (7, 10)},
    # SMPL24_CHAIN (evaluators/datasets/motion/action.py): ankles 7/8, feet 10/11, hands 22/23 end the arms
    "smpl24": {"body": tuple(range(24)), "root": (0,), "feet": (7, 8, 10, 11), "hands": (22, 23)},
    # ACTOR vibe_kinematic_chain (src/visualize/anim.py): ankles 11/14, heels 15/16, wrists 4/7 end the arms
    "a2m18": {"body": tuple(range(18)), "root": (0,), "feet": (11, 14, 15, 16), "hands": (4, 7)},
}

_UNIT_TO_M = {"m": 1.0, "mm": 1e-3, "cm": 1e-2}


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, possibly on a GPU
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _prepare(joints, lengths, *, units: str, min_frames: int, n_joints: int | None = None):
    """Validate once, before any work; return (joints in metres [B,T,J,3], lengths int [B])."""
    a = _to_numpy(joints)
    if a.ndim != 4 or a.shape[-1] != 3:
        raise ValueError(f"joints must be [B, T, J, 3], got shape {a.shape}")
    if n_joints is not None and a.shape[2] != n_joints:
        raise ValueError(f"joints has {a.shape[2]} joints; the skeleton needs {n_joints}")
    if units not in _UNIT_TO_M:
        raise ValueError(f"units must be one of {sorted(_UNIT_TO_M)}, got {units!r}")
    b, t = a.shape[:2]
    if lengths is None:
        lens = np.full(b, t, dtype=np.int64)
    else:
        lens = np.asarray(_to_numpy(lengths)).astype(np.int64).reshape(-1)
        if lens.shape != (b,):
            raise ValueError(f"lengths must have one entry per sequence ({b}), got shape {lens.shape}")
    if lens.min(initial=t) < min_frames or lens.max(initial=0) > t:
        raise ValueError(f"lengths must lie in [{min_frames}, {t}] (T of joints), got "
                         f"min {lens.min()} max {lens.max()}")
    valid = np.arange(t)[None, :] < lens[:, None]
    if not np.isfinite(a[valid]).all():
        raise ValueError("joints contains NaN or inf inside the valid lengths")
    return a * _UNIT_TO_M[units], lens


def to_y_up(joints: np.ndarray, up: str) -> np.ndarray:
    """``joints`` with y pointing up: ``up="-y"`` (camera frames, module doc) negates y."""
    if up not in _UP:
        raise ValueError(f"up must be one of {list(_UP)}, got {up!r}")
    if up == "+y":
        return joints
    out = np.array(joints, dtype=np.float64, copy=True)
    out[..., 1] = -out[..., 1]
    return out


def feet_floor(joints: np.ndarray, lengths: np.ndarray, feet) -> np.ndarray:
    """Per sequence [B]: the lowest height (y, y up) of the ``feet`` joints over its valid frames."""
    return np.array([joints[i, :n][:, list(feet), 1].min() for i, n in enumerate(lengths)])


def _skating_transitions(feet: np.ndarray, fps: float, ground: float) -> np.ndarray:
    """feet [T, F, 3] in metres -> bool [T-1]: transitions where any foot skates (GMD L214-230)."""
    speed = np.linalg.norm(np.diff(feet[:, :, [0, 2]], axis=0), axis=-1) * fps      # [T-1, F]
    speed_avg = uniform_filter1d(speed, size=SKATE_WINDOW, axis=0, mode="constant", origin=0)
    height = feet[:, :, 1] - ground
    contact = (height[:-1] < SKATE_HEIGHT_M) & (height[1:] < SKATE_HEIGHT_M)
    skating = contact & (speed > SKATE_SPEED_M_S) & (speed_avg > SKATE_SPEED_M_S)
    return skating.any(axis=1)


def skating_per_sequence(joints, lengths=None, *, skeleton: str = "humanml3d", fps: float | None = None,
                         units: str | None = None, ground: float = 0.0):
    """Per sequence: (number of skating transitions inside the valid length [B], lengths [B])."""
    spec = _skeleton(skeleton)
    a, lens = _prepare(joints, lengths, units=units or spec["units"], min_frames=2, n_joints=spec["joints"])
    fps = spec["fps"] if fps is None else float(fps)
    feet = list(spec["skate_feet"])
    counts = np.array([_skating_transitions(a[i, :n][:, feet], fps, ground).sum() for i, n in enumerate(lens)])
    return counts, lens


def skating_ratio(joints, lengths=None, *, skeleton: str = "humanml3d", fps: float | None = None,
                  units: str | None = None, ground: float = 0.0) -> float:
    """Mean over sequences of (skating transitions) / (L - 1), each sequence cut to its length."""
    counts, lens = skating_per_sequence(joints, lengths, skeleton=skeleton, fps=fps, units=units, ground=ground)
    return float(np.mean(counts / (lens - 1)))


def skating_ratio_authors(joints, lengths=None, *, skeleton: str = "humanml3d", fps: float | None = None,
                          units: str | None = None, ground: float = 0.0) -> float:
    """The authors' convention (GMD metrics.py L231: ``np.sum(skating, axis=1) / skating.shape[1]``):
    every sequence is divided by the padded length ``T - 1`` of the batch. See the module doc."""
    counts, _ = skating_per_sequence(joints, lengths, skeleton=skeleton, fps=fps, units=units, ground=ground)
    t = np.shape(joints)[1]
    return float(np.mean(counts / (t - 1)))


def ground_contact_mm(joints, lengths=None, *, units: str = "m", ground: float = 0.0,
                      tolerance: float = GROUND_TOLERANCE_M) -> tuple[float, float]:
    """(penetrate_mm, float_mm): PhysDiff's Penetrate and Float on the lowest joint (module doc).

    ``ground`` and ``tolerance`` are in metres (``ground`` after the ``units`` conversion).
    """
    a, lens = _prepare(joints, lengths, units=units, min_frames=1)
    pen, flo = [], []
    for i, n in enumerate(lens):
        h = a[i, :n, :, 1].min(axis=1) - ground                                   # [L]
        pen.append(np.where(h < -tolerance, -h, 0.0).mean())
        # ours: a frame whose lowest joint is below the ground does not float. The lowest mesh
        # vertex *above* the ground is ~0 on a mesh crossing the floor; on 22 sparse joints it
        # would be e.g. a knee and count a penetrating frame as floating.
        flo.append(np.where(h > tolerance, h, 0.0).mean())
    # ours: sequences weigh equally (mean of per-sequence means), as the skating ratio in GMD.
    return float(np.mean(pen) * 1000.0), float(np.mean(flo) * 1000.0)


def jerk(joints, lengths=None, *, fps: float, units: str = "m", joint_ids=None) -> float:
    """Mean jerk magnitude (m/s^3) over ``joint_ids`` (default all) and valid frames, mean over sequences."""
    a, lens = _prepare(joints, lengths, units=units, min_frames=4)
    ids = list(range(a.shape[2])) if joint_ids is None else list(joint_ids)
    per_seq = []
    for i, n in enumerate(lens):
        x = a[i, :n][:, ids]
        d3 = x[3:] - 3.0 * x[2:-1] + 3.0 * x[1:-2] - x[:-3]
        per_seq.append(np.linalg.norm(d3, axis=-1).mean() * float(fps) ** 3)
    return float(np.mean(per_seq))


def _skeleton(name: str) -> dict:
    if name not in SKELETONS:
        raise ValueError(f"skeleton must be one of {sorted(SKELETONS)}, got {name!r}")
    return SKELETONS[name]


def physical_metrics(joints, lengths=None, *, skeleton: str = "humanml3d", fps: float | None = None,
                     units: str | None = None, ground: float | str = 0.0, up: str = "+y") -> dict[str, dict]:
    """All physical metrics of one set of motions, for GT and generated alike.

    joints: [B, T, J, 3] in ``units`` (default: the skeleton's native unit, metres for
    ``humanml3d``, millimetres for ``kit``, as ``recover_from_ric`` returns them; metres for the
    action skeletons ``smpl24`` / ``a2m18``), y pointing ``up`` ("+y", or "-y" for the camera
    frames of HumanAct12 / UESTC); lengths: [B] valid lengths (>= 4 frames, the jerk needs 4);
    fps: default the skeleton's (20; KIT 12.5); ground: floor height in metres, or
    :data:`GROUND_FEET_MIN` for a per-sequence floor at the lowest foot joint (module doc).
    Returns ``{key: {"value": float, "unit": str}}`` with keys ``skating_ratio``,
    ``skating_ratio_authors``, ``penetrate_mm``, ``float_mm`` (lower is better) and
    ``jerk_<group>`` for the groups of :data:`JOINT_GROUPS` (compare with GT).
    """
    spec = _skeleton(skeleton)
    units = units or spec["units"]
    fps = spec["fps"] if fps is None else float(fps)
    if isinstance(ground, str) and ground != GROUND_FEET_MIN:
        raise ValueError(f"ground must be a height in metres or {GROUND_FEET_MIN!r}, got {ground!r}")
    if up not in _UP:
        raise ValueError(f"up must be one of {list(_UP)}, got {up!r}")
    a, lens = _prepare(joints, lengths, units=units, min_frames=4, n_joints=spec["joints"])
    a = to_y_up(a, up)
    if ground == GROUND_FEET_MIN:
        # every sequence moved so that its floor is y = 0 (padding moves too and is never read)
        floor = feet_floor(a, lens, JOINT_GROUPS[skeleton]["feet"])
        a = a.copy()
        a[..., 1] -= floor[:, None, None]
        ground = 0.0
    common = {"lengths": lens, "units": "m"}
    out = {
        "skating_ratio": {"value": skating_ratio(a, skeleton=skeleton, fps=fps, ground=ground, **common),
                          "unit": "ratio"},
        "skating_ratio_authors": {"value": skating_ratio_authors(a, skeleton=skeleton, fps=fps, ground=ground,
                                                                 **common), "unit": "ratio"},
    }
    pen, flo = ground_contact_mm(a, ground=ground, **common)
    out["penetrate_mm"] = {"value": pen, "unit": "mm"}
    out["float_mm"] = {"value": flo, "unit": "mm"}
    for group, ids in JOINT_GROUPS[skeleton].items():
        out[f"jerk_{group}"] = {"value": jerk(a, fps=fps, joint_ids=ids, **common), "unit": "m/s^3"}
    return out
