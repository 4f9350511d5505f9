"""Physical plausibility of a text-to-motion or action-to-motion row: foot skating, ground
penetration / floating and jerk, on the joint positions the suite's own ``recover_from_ric`` gives
for the raw text-to-motion features, or on the action datasets' joint positions as they are.

The learned T2M evaluator barely sees jitter or foot sliding (GMD, OmniControl and MotionLCM-v2
added the skating ratio for that reason), so every text-to-motion record carries these next to
FID and R-precision, for the generated rows and for the ground-truth row as the reference. The
definitions and their sources are in :mod:`evaluators.metrics.physical`.

Per repetition the values are means over the evaluated sequences (all batches have the same size,
so the mean of batch means is the mean over sequences), gathered across ranks.

Action-to-motion clips (HumanAct12 / UESTC layouts, :func:`action_physical`) are root-centred on
their first frame, so the floor is estimated per sequence at the lowest foot joint, and the
dataset states which way is up (``ActionDataset.up``); see :mod:`evaluators.metrics.physical`.
"""

from __future__ import annotations

import numpy as np
import torch

from evaluators.core.distributed import gather_concat, shard_indices
from evaluators.datasets.motion.humanml3d_features import recover_from_ric
from evaluators.metrics.physical import GROUND_FEET_MIN, physical_metrics
from evaluators.networks.t2m_data import pad_batch
from evaluators.protocols._timing import span

# feature width -> (skeleton of evaluators.metrics.physical, joints of recover_from_ric)
SKELETON_OF_DIM = {263: ("humanml3d", 22), 251: ("kit", 21)}
# joints of an action dataset's positions -> skeleton: HumanAct12's SMPL 24, UESTC's 18 action2motion joints
SKELETON_OF_ACTION_JOINTS = {24: "smpl24", 18: "a2m18"}


class PhysicalRow:
    """Accumulates the physical metrics of one row over the batches this rank evaluates."""

    def __init__(self, dim: int) -> None:
        if dim not in SKELETON_OF_DIM:
            raise ValueError(f"physical metrics need HumanML3D (263-d) or KIT-ML (251-d) features, got {dim}-d")
        self.skeleton, self.joints_num = SKELETON_OF_DIM[dim]
        self.keys: list[str] = []
        self.units: dict[str, str] = {}
        self.rows: list[list[float]] = []

    def add(self, motions, lengths: list[int]) -> None:
        """One batch of raw features ``[B, T, D]`` (tensor or array) and their valid lengths."""
        with span("metric_physical"):
            x = motions.detach().cpu().double() if isinstance(motions, torch.Tensor) else \
                torch.from_numpy(np.asarray(motions, dtype=np.float64))
            joints = recover_from_ric(x, self.joints_num).numpy()
            m = physical_metrics(joints, np.asarray(lengths), skeleton=self.skeleton)
            if not self.keys:
                self.keys = list(m)
                self.units = {k: v["unit"] for k, v in m.items()}
            self.rows.append([float(m[k]["value"]) for k in self.keys])

    def wrap(self, motion_fn, lengths_of):
        """``motion_fn`` that also measures what it returns (``lengths_of(idx)`` gives the lengths)."""
        def fn(idx):
            out = motion_fn(idx)
            self.add(out, lengths_of(idx))
            return out
        return fn

    def means(self) -> dict[str, float]:
        """Mean over every rank's batches, per metric."""
        local = np.asarray(self.rows, np.float64).reshape(-1, len(self.keys)) if self.keys else np.zeros((0, 0))
        rows = gather_concat(local)
        return {k: float(rows[:, i].mean()) for i, k in enumerate(self.keys)} if len(rows) else {}


def gt_physical(draw, batch_size: int, max_len: int, dim: int) -> PhysicalRow:
    """The ground-truth crops of one repetition's pass, batch by batch as the evaluator sees them."""
    row = PhysicalRow(dim)
    for b in shard_indices(len(draw.order) // batch_size):
        idx = range(int(b) * batch_size, (int(b) + 1) * batch_size)
        row.add(pad_batch([draw.crops[i] for i in idx], max_len), [draw.lengths[i] for i in idx])
    return row


def action_skeleton(data, motions: list) -> str | None:
    """The physical skeleton of an action dataset's ``[T, J, 3]`` motions, or None (metrics left
    out) when the dataset does not state which way is up, the joints are not 24 / 18 positions,
    or a motion is shorter than the 4 frames the jerk needs."""
    shape = np.shape(motions[0]) if motions else ()
    if getattr(data, "up", None) is None or len(shape) != 3 or shape[-1] != 3:
        return None
    if min(len(m) for m in motions) < 4:
        return None
    return SKELETON_OF_ACTION_JOINTS.get(int(shape[1]))


def action_physical(motions, lengths, *, skeleton: str, up: str, fps: float) -> dict[str, float]:
    """Physical metrics of padded action motions ``[B, T, J, 3]`` (metres) with valid ``lengths``;
    the floor of each sequence at its lowest foot joint (the clips are root-centred)."""
    with span("metric_physical"):
        x = motions.detach().cpu().double().numpy() if isinstance(motions, torch.Tensor) else motions
        m = physical_metrics(x, np.asarray(lengths), skeleton=skeleton, fps=fps, up=up, ground=GROUND_FEET_MIN)
    return {k: float(v["value"]) for k, v in m.items()}
