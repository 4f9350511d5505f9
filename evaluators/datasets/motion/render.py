"""Stick-figure animations of joint sequences (matplotlib 3D + the pillow GIF writer).

``render_motion(joints [T, J, 3], path.gif, title, kinematic_chain)`` draws every chain as a
poly-line on a ground grid, the view following the root, as the HumanML3D ``plot_3d_motion``
script does (Y up). Written atomically (temporary file + rename).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from evaluators.core.io import atomic_path
from evaluators.datasets.motion.kinematics import skeleton_for

COLORS = ("#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")


def render_motion(joints: np.ndarray, path: str | os.PathLike, title: str = "",
                  kinematic_chain: list[list[int]] | None = None, fps: float = 20.0,
                  stride: int = 1, size: float = 3.2, bare: bool = False) -> Path:
    """Write an animated GIF of ``joints`` [T, J, 3] (Y up) and return its path.

    ``bare`` hides the axes, ticks and panes (the figure keeps the skeleton and the root's
    ground track): a third of the bytes, for the small GIFs a web page shows side by side."""
    import matplotlib  # lazy: only rendering needs matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: after matplotlib.use("Agg"), which must precede it
    from matplotlib.animation import FuncAnimation, PillowWriter  # lazy: as above


    joints = np.asarray(joints, dtype=np.float64)
    if joints.ndim != 3 or joints.shape[-1] != 3 or len(joints) == 0:
        raise ValueError(f"joints must be [T>0, J, 3], got {joints.shape}")
    if kinematic_chain is None:
        kinematic_chain = [list(c) for c in skeleton_for(joints.shape[1]).kinematic_chain]
    path = Path(path)
    frames = joints[::max(1, int(stride))]
    radius = max(1.0, float(np.ptp(joints[..., 1])) * 0.75)
    fig = plt.figure(figsize=(size, size))
    ax = fig.add_subplot(111, projection="3d")
    lines = [ax.plot([], [], [], lw=2.5, color=COLORS[i % len(COLORS)])[0] for i in range(len(kinematic_chain))]
    traj, = ax.plot([], [], [], lw=1, color="gray")
    ax.set_title(title[:60] + ("..." if len(title) > 60 else ""), fontsize=7)
    ax.view_init(elev=20, azim=-60)
    if bare:  # no axes to leave room for: the cube fills the figure
        ax.set_axis_off()
        fig.subplots_adjust(0, 0, 1, 0.92)
        ax.set_box_aspect((1, 1, 1), zoom=1.5)

    def draw(k: int):
        pose = frames[k]
        cx, cz = pose[0, 0], pose[0, 2]
        ax.set_xlim(cx - radius, cx + radius)
        ax.set_ylim(cz - radius, cz + radius)  # matplotlib y axis shows the motion's Z
        ax.set_zlim(0, 2 * radius)
        for line, chain in zip(lines, kinematic_chain):
            line.set_data(pose[chain, 0], pose[chain, 2])
            line.set_3d_properties(pose[chain, 1])
        traj.set_data(frames[: k + 1, 0, 0], frames[: k + 1, 0, 2])
        traj.set_3d_properties(np.zeros(k + 1))
        return [*lines, traj]

    anim = FuncAnimation(fig, draw, frames=len(frames), blit=False)
    try:  # a temporary name unique to this call: two processes may render the same sample name
        with atomic_path(path, ".tmp.gif") as tmp:
            anim.save(str(tmp), writer=PillowWriter(fps=max(1.0, fps / max(1, int(stride)))))
    finally:
        plt.close(fig)
    return path
