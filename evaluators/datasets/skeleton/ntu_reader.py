"""NTU RGB+D raw ``.skeleton`` files: the reader, sample-name parsing, missing-sample lists.

Raw reader (a DESIGN.md contract): ``read_skeleton(path) -> SkeletonFile`` with
``joints`` float32 ``[frames, bodies, 25, 3]`` (zeros where a body is absent in a frame),
``body_ids`` (tracking ids as strings, in first-appearance order), every per-joint field
(``depth_xy`` / ``color_xy`` ``[F, B, 25, 2]``, ``orientation`` ``[F, B, 25, 4]`` (w, x, y, z),
``joint_tracking`` int8 ``[F, B, 25]``), every per-body field
(``clipped_edges``, ``hand_left_conf``, ``hand_left_state``, ``hand_right_conf``,
``hand_right_state``, ``restricted``, ``body_tracking`` int8 ``[F, B]``; ``lean_xy`` float32
``[F, B, 2]``), ``present`` bool ``[F, B]`` and ``bodies_per_frame`` int ``[F]``. It also
behaves like a read-only dict (``rec["joints"]``).
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from evaluators.datasets.base import DatasetError

__all__ = ["SkeletonFile", "read_skeleton", "parse_skeleton_text", "parse_name", "read_missing_list", "NAME_RE"]

log = logging.getLogger(__name__)

NUM_JOINTS = 25
#: per-body line: bodyID clippedEdges handLeftConfidence handLeftState handRightConfidence
#: handRightState isRestricted leanX leanY trackingState (shahroudy/NTURGB-D read_skeleton_file.m)
BODY_FIELDS = 10
#: per-joint line: x y z depthX depthY colorX colorY orientationW X Y Z trackingState
JOINT_FIELDS = 12
#: ours: a Kinect v2 tracks bodies 0.5-4.5 m away (the NTU samples reach 4.1 m); 100 m is no body
MAX_CAMERA_METRES = 100.0
NAME_RE = re.compile(r"S(\d{3})C(\d{3})P(\d{3})R(\d{3})A(\d{3})")


@dataclass(frozen=True)
class SkeletonFile(Mapping):
    """Everything one ``.skeleton`` file holds, as dense arrays (F frames, B distinct bodies).

    Body ``b`` is the ``b``-th distinct tracking id in order of first appearance; arrays
    are zero where that body is absent from a frame (``present[f, b]`` is False).
    """

    path: str
    joints: np.ndarray  # float32 [F, B, 25, 3] camera-space metres
    body_ids: list[str]
    depth_xy: np.ndarray  # float32 [F, B, 25, 2] depth-image pixel coords
    color_xy: np.ndarray  # float32 [F, B, 25, 2] colour-image pixel coords
    orientation: np.ndarray  # float32 [F, B, 25, 4] joint orientation quaternion (w, x, y, z)
    joint_tracking: np.ndarray  # int8 [F, B, 25] 0 not tracked, 1 inferred, 2 tracked
    clipped_edges: np.ndarray  # int32 [F, B]
    hand_left_conf: np.ndarray  # int8 [F, B]
    hand_left_state: np.ndarray  # int8 [F, B]
    hand_right_conf: np.ndarray  # int8 [F, B]
    hand_right_state: np.ndarray  # int8 [F, B]
    restricted: np.ndarray  # int8 [F, B]
    lean_xy: np.ndarray  # float32 [F, B, 2]
    body_tracking: np.ndarray  # int8 [F, B]
    present: np.ndarray  # bool [F, B]
    bodies_per_frame: np.ndarray  # int32 [F] (the count written in the file)
    _keys: tuple = field(default=(), repr=False, compare=False)

    @property
    def num_frames(self) -> int:
        return int(self.joints.shape[0])

    @property
    def num_bodies(self) -> int:
        return int(self.joints.shape[1])

    # read-only dict behaviour (``rec["joints"]``) for code written against a dict
    def __getitem__(self, key: str):
        if key.startswith("_") or key not in self._names():
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    @classmethod
    def _names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls) if not f.name.startswith("_"))


def _ints(tok: list[str], path: str, lineno: int, what: str) -> list[int]:
    try:
        return [int(t) for t in tok]
    except ValueError:
        raise DatasetError(f"line {lineno}: malformed {what} {' '.join(tok)!r} (expected integers)",
                           path) from None


def parse_skeleton_text(text: str, path: str | os.PathLike = "<text>") -> SkeletonFile:
    """Parse the text of a ``.skeleton`` file (LF or CRLF). Raises :class:`DatasetError`.

    Layout (shahroudy/NTURGB-D ``read_skeleton_file.m``): frame count; per frame a body
    count; per body a 10-field info line, a joint count (25) and one 12-field line per joint.
    """
    path = str(path)
    lines = text.splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    n_lines = len(lines)
    pos = 0

    def take(what: str) -> list[str]:
        nonlocal pos
        if pos >= n_lines:
            raise DatasetError(f"truncated file: expected {what} at line {pos + 1}, file has {n_lines} lines",
                               path)
        tok = lines[pos].split()
        pos += 1
        return tok

    tok = take("frame count")
    if len(tok) != 1:
        raise DatasetError(f"line 1: expected a single frame count, got {lines[0][:60]!r}", path)
    (num_frames,) = _ints(tok, path, 1, "frame count")
    if num_frames <= 0:
        raise DatasetError(f"empty sequence: frame count is {num_frames}", path)
    if num_frames > n_lines - 1:  # every frame has at least its body-count line: checked before allocating
        raise DatasetError(f"frame count {num_frames} in line 1 exceeds what the file holds ({n_lines} lines)", path)

    ids: dict[str, int] = {}
    counts = np.zeros(num_frames, np.int32)
    where: list[tuple[int, int, int]] = []  # (frame, body index, first joint line) per body block
    infos: list[list[str]] = []
    tokens: list[str] = []  # every joint value of the file, converted to float once at the end
    for f in range(num_frames):
        tok = take(f"body count of frame {f + 1}")
        if len(tok) != 1:
            raise DatasetError(f"line {pos}: expected the body count of frame {f + 1}, got {lines[pos - 1][:60]!r}",
                               path)
        (nb,) = _ints(tok, path, pos, "body count")
        if nb < 0:
            raise DatasetError(f"line {pos}: negative body count {nb}", path)
        counts[f] = nb
        seen: set[int] = set()
        for _ in range(nb):
            info = take("a body info line")
            if len(info) != BODY_FIELDS:
                raise DatasetError(f"line {pos}: body info line has {len(info)} fields, expected {BODY_FIELDS}",
                                   path)
            tok = take("a joint count")
            (nj,) = _ints(tok[:1], path, pos, "joint count") if len(tok) == 1 else (None,)
            if nj != NUM_JOINTS:
                raise DatasetError(f"line {pos}: joint count {' '.join(tok)!r}, expected {NUM_JOINTS}", path)
            if pos + NUM_JOINTS > n_lines:
                raise DatasetError(f"truncated file: frame {f + 1} needs {NUM_JOINTS} joint lines from line "
                                   f"{pos + 1}, file has {n_lines} lines", path)
            for k in range(pos, pos + NUM_JOINTS):
                row = lines[k].split()
                if len(row) != JOINT_FIELDS:
                    raise DatasetError(f"line {k + 1}: joint line has {len(row)} fields, expected {JOINT_FIELDS}",
                                       path)
                tokens += row
            bid = info[0]
            b = ids.setdefault(bid, len(ids))
            if b in seen:
                raise DatasetError(f"frame {f + 1}: body id {bid} appears twice", path)
            seen.add(b)
            where.append((f, b, pos))
            infos.append(info)
            pos += NUM_JOINTS
    if pos != n_lines:
        raise DatasetError(f"line {pos + 1}: unexpected trailing content after {num_frames} frames "
                           f"({n_lines - pos} extra lines)", path)
    vals = _floats(tokens, path, [w[2] for w in where], "joint").reshape(len(where), NUM_JOINTS, JOINT_FIELDS)
    info = _floats([t for i in infos for t in i[1:]], path, [w[2] - 1 for w in where], "body info")
    _check_states(vals[..., 11], path, [w[2] for w in where], "joint trackingState", per_joint=True)
    far = np.abs(vals[..., :3]) > MAX_CAMERA_METRES
    if far.any():  # a Kinect v2 sees 0.5..4.5 m; far beyond is a corrupt value, not a body
        blk, j = (int(v) for v in np.argwhere(far.any(axis=-1))[0])
        raise DatasetError(f"line {where[blk][2] + j + 1}: joint position {vals[blk, j, :3].tolist()} lies more than "
                           f"{MAX_CAMERA_METRES:g} m from the camera", path)
    _check_states(info.reshape(len(where), BODY_FIELDS - 1)[:, 8], path, [w[2] - 1 for w in where],
                  "body trackingState")
    return _assemble(path, where, vals, info.reshape(len(where), BODY_FIELDS - 1), list(ids), counts)


def _check_states(values: np.ndarray, path: str, first_lines: list[int], what: str, per_joint: bool = False) -> None:
    """Kinect tracking states are 0 (not tracked), 1 (inferred) or 2 (tracked); name the first bad line."""
    bad = ~np.isin(values, (0.0, 1.0, 2.0))
    if bad.any():
        blk = int(np.argwhere(bad)[0][0])
        line = first_lines[blk] + (int(np.argwhere(bad)[0][1]) + 1 if per_joint else 0)
        raise DatasetError(f"line {line}: {what} {values[bad][0]!r} is not 0, 1 or 2", path)


def _floats(tokens: list[str], path: str, first_lines: list[int], what: str) -> np.ndarray:
    """Strings -> float64; on a non-numeric or NaN/inf value, name its line (slow path only on error)."""
    try:
        arr = np.array(list(map(float, tokens)), dtype=np.float64)
    except ValueError:
        arr = None
    if arr is not None and np.isfinite(arr).all():
        return arr
    per = len(tokens) // max(len(first_lines), 1)
    for blk, first in enumerate(first_lines):
        for k, t in enumerate(tokens[blk * per:(blk + 1) * per]):
            try:
                ok = math.isfinite(float(t))
            except ValueError:
                raise DatasetError(f"line {first + k // JOINT_FIELDS + 1 if what == 'joint' else first}: "
                                   f"non-numeric {what} value {t!r}", path) from None
            if not ok:
                raise DatasetError(f"line {first + k // JOINT_FIELDS + 1 if what == 'joint' else first}: "
                                   f"NaN/inf {what} value", path)
    raise DatasetError(f"malformed {what} values", path)


def _assemble(path: str, where: list, vals: np.ndarray, info: np.ndarray, body_ids: list[str],
              counts: np.ndarray) -> SkeletonFile:
    F, B = len(counts), len(body_ids)
    joints = np.zeros((F, B, NUM_JOINTS, JOINT_FIELDS), np.float64)
    binfo = np.zeros((F, B, BODY_FIELDS - 1), np.float64)
    present = np.zeros((F, B), bool)
    if where:
        fi = np.array([w[0] for w in where])
        bi = np.array([w[1] for w in where])
        joints[fi, bi] = vals
        binfo[fi, bi] = info
        present[fi, bi] = True
    i8 = lambda a: a.astype(np.int8)  # noqa: E731 - tracking states / confidences are 0..2
    return SkeletonFile(
        path=path,
        joints=joints[..., 0:3].astype(np.float32),
        body_ids=body_ids,
        depth_xy=joints[..., 3:5].astype(np.float32),
        color_xy=joints[..., 5:7].astype(np.float32),
        orientation=joints[..., 7:11].astype(np.float32),
        joint_tracking=i8(joints[..., 11]),
        clipped_edges=binfo[..., 0].astype(np.int32),
        hand_left_conf=i8(binfo[..., 1]),
        hand_left_state=i8(binfo[..., 2]),
        hand_right_conf=i8(binfo[..., 3]),
        hand_right_state=i8(binfo[..., 4]),
        restricted=i8(binfo[..., 5]),
        lean_xy=binfo[..., 6:8].astype(np.float32),
        body_tracking=i8(binfo[..., 8]),
        present=present,
        bodies_per_frame=counts,
    )


def read_skeleton(path: str | os.PathLike) -> SkeletonFile:
    """Read one NTU RGB+D ``.skeleton`` file (see :class:`SkeletonFile`). Raises DatasetError."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise DatasetError(f"cannot read skeleton file ({e.strerror})", p) from None
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise DatasetError("not a text .skeleton file (non-ASCII bytes)", p) from None
    return parse_skeleton_text(text, p)


def parse_name(name: str) -> dict[str, int]:
    """``S001C002P003R002A013`` -> setup, camera, performer, replication, action (1-based ids)."""
    m = NAME_RE.fullmatch(Path(name).name.split(".")[0])
    if not m:
        raise DatasetError(f"sample name {name!r} is not of the form SsssCcccPpppRrrrAaaa", name)
    s, c, p, r, a = (int(g) for g in m.groups())
    return {"setup": s, "camera": c, "performer": p, "replication": r, "action": a}


def read_missing_list(path: str | os.PathLike) -> list[str]:
    """Names from ``NTU_RGBD(120)_samples_with_missing_skeletons.txt`` (header sentence skipped)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8", errors="strict")
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"cannot read missing-skeleton list ({e})", p) from None
    names = [ln.strip() for ln in text.splitlines() if NAME_RE.fullmatch(ln.strip())]
    if not names:
        raise DatasetError("no sample names (SsssCcccPpppRrrrAaaa) found in missing-skeleton list", p)
    return names
