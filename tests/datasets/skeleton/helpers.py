"""Helpers shared by the skeleton dataset tests (text writers, random bodies, cache switch)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

NTU_SAMPLES = {  # PROVENANCE.md: frames, bodies
    "S001C001P001R001A011": (82, 1),
    "S002C001P003R001A003": (100, 1),
    "S003C001P015R001A034": (71, 1),
    "S001C003P008R002A058": (70, 2),
}


class CacheEnv:
    """Point ``$MOTIONREPRO_CACHE`` at ``path`` for the duration of a ``with`` block."""

    def __init__(self, path: Path) -> None:
        self.path, self.old = path, None

    def __enter__(self):
        self.old = os.environ.get("MOTIONREPRO_CACHE")
        os.environ["MOTIONREPRO_CACHE"] = str(self.path)

    def __exit__(self, *exc):
        if self.old is None:
            os.environ.pop("MOTIONREPRO_CACHE", None)
        else:
            os.environ["MOTIONREPRO_CACHE"] = self.old


def skeleton_text(frames: list[list[tuple[str, np.ndarray]]], nl: str = "\r\n") -> str:
    """Write NTU ``.skeleton`` text: frames of (body id, joints [25, 3]) with plausible extra fields."""
    out = [f"{len(frames)}"]
    for bodies in frames:
        out.append(f"{len(bodies)}")
        for bid, J in bodies:
            out.append(f"{bid} 0 1 1 1 1 0 -0.1 0.1 2")
            out.append("25")
            for j in range(25):
                x, y, z = (float(v) for v in J[j])
                out.append(f"{x:.7g} {y:.7g} {z:.7g} 250 200 960 540 0.5 0.5 0.5 0.5 2")
    return nl.join(out) + nl


def person(rng: np.random.Generator, T: int, centre=(0.0, 0.0, 3.0), spread=(0.4, 1.6, 0.3)) -> np.ndarray:
    """A plausible tall-and-thin random body track [T, 25, 3] moving a little over time."""
    base = rng.uniform(-0.5, 0.5, (25, 3)) * np.array(spread) + np.array(centre)
    drift = np.cumsum(rng.normal(0, 0.01, (T, 25, 3)), axis=0)
    return (base + drift).astype(np.float32)
