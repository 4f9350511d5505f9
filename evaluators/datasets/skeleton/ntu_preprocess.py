"""NTU RGB+D preprocessing of MAMP / MacDiff / CTR-GCN (the SGN scripts), re-implemented.

Sources (read for facts, re-written here): ``data/ntu/get_raw_skes_data.py``,
``get_raw_denoised_data.py``, ``seq_transformation.py`` and their ``data/ntu120`` twins in
maoyunyao/MAMP and Wenrui-Shen/MacDiff@692888f.

Per sample (:func:`preprocess_skeleton`), from a :class:`~evaluators.datasets.skeleton.ntu_reader.SkeletonFile`:

1. Frames with no body are dropped (``get_raw_bodies_data``'s ``frames_drop``).
2. Each tracking id becomes a body track. Quirk kept from the official code: a track's
   frames are laid out contiguously from its first appearance (its ``interval`` grows by
   one per appearance), so a track that vanishes and returns is shifted earlier.
3. With 2+ tracks (``denoising_bodies_data``): drop tracks of <= 11 frames; then, while more
   than one remains, drop a track whose share of frames with x-spread > 0.8 * y-spread is
   >= 0.69754, else lower its motion to that of its valid frames; rank by motion (sum of
   per-axis variances of all its joints), largest first.
4. Actor 1 = largest motion; each further track goes into actor 1's slot if its interval does
   not overlap actor 1's, else into actor 2's if it does not overlap actor 2's, else it is
   dropped (``get_two_actors_points``). Frames where every kept joint is zero are removed.
5. Centering (``seq_translation``): subtract joint 2 (spine middle, index 1) of actor 1 in
   its first non-zero frame from every frame and actor; frames where an actor is missing
   stay zero. No rotation or scale normalisation.
6. Alignment (``align_frames``): zero-pad to 300 frames as ``[300, 150]`` (2 actors x 25 x 3).
   A one-actor sequence gets zeros for actor 2 in NTU-60's script but a copy of actor 1 in
   NTU-120's (``np.hstack((ske_joints, ske_joints))``); ``single_actor`` picks which.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from evaluators.datasets.base import DatasetError
from evaluators.datasets.checks import check_npz_sizes, integer_labels, numeric_array
from evaluators.datasets.skeleton.dataset import MAX_FRAMES
from evaluators.datasets.skeleton.ntu_reader import SkeletonFile

log = logging.getLogger(__name__)

NOISE_LEN_THRES = 11  # get_raw_denoised_data.py: noise_len_thres
NOISE_SPR_THRES1 = 0.8  # x-spread vs y-spread
NOISE_SPR_THRES2 = 0.69754  # share of noisy frames


def _tracks(rec: SkeletonFile) -> list[dict]:
    """Body tracks in first-appearance order: id, joints [n, 25, 3] float32, start (valid-frame index)."""
    keep = rec.bodies_per_frame > 0
    present = rec.present[keep]
    joints = rec.joints[keep]
    out = []
    for b, bid in enumerate(rec.body_ids):
        frames = np.flatnonzero(present[:, b])
        if len(frames):
            out.append({"id": bid, "joints": joints[frames, b], "start": int(frames[0])})
    return out


def _motion(j: np.ndarray) -> float:
    # np.sum(np.var(body_data['joints'], axis=0)) over the (frames*25, 3) stack, in float32
    return float(np.sum(np.var(j.reshape(-1, 3), axis=0)))


def denoise_tracks(tracks: list[dict], path: str = "") -> list[dict]:
    """Steps 3 of the module doc: the surviving tracks, largest motion first."""
    if len(tracks) == 1:
        return tracks
    for t in tracks:
        t["motion"] = _motion(t["joints"])
    tracks = [t for t in tracks if len(t["joints"]) > NOISE_LEN_THRES]
    if len(tracks) == 1:
        return tracks
    kept = list(tracks)
    for t in tracks:
        if len(kept) == 1:
            break
        j = t["joints"]
        xs = j[:, :, 0].max(1) - j[:, :, 0].min(1)
        ys = j[:, :, 1].max(1) - j[:, :, 1].min(1)
        valid = xs <= NOISE_SPR_THRES1 * ys
        n_noise = int(len(j) - valid.sum())
        if n_noise == 0:
            continue
        if n_noise / float(len(j)) >= NOISE_SPR_THRES2:
            kept.remove(t)
        else:
            t["motion"] = min(t["motion"], _motion(j[valid]))
    if not kept:
        raise DatasetError("every body track is shorter than 12 frames; no actor survives denoising", path)
    return sorted(kept, key=lambda t: t["motion"], reverse=True)


def select_actors(rec: SkeletonFile) -> tuple[np.ndarray, int]:
    """Steps 1-4: ``(joints [T, 2, 25, 3] float32, n_actors 1|2)`` (actor 2 zero when n_actors == 1)."""
    path = rec.path
    num_frames = int((rec.bodies_per_frame > 0).sum())
    if num_frames == 0:
        raise DatasetError("all frames have no skeleton (a sample of the missing-skeleton list?)", path)
    tracks = _tracks(rec)
    multi = len(tracks) > 1
    tracks = denoise_tracks(tracks, path)
    out = np.zeros((num_frames, 2, 25, 3), np.float32)
    if len(tracks) == 1:
        t = tracks[0]
        out[t["start"]:t["start"] + len(t["joints"]), 0] = t["joints"]
        n_actors = 1
    else:
        a1 = tracks[0]
        s1, e1 = a1["start"], a1["start"] + len(a1["joints"]) - 1
        out[s1:e1 + 1, 0] = a1["joints"]
        s2, e2 = 0, 0  # the official "virtual" initial interval of actor 2
        for t in tracks[1:]:
            s, e = t["start"], t["start"] + len(t["joints"]) - 1
            if min(e1, e) - max(s1, s) <= 0:
                out[s:e + 1, 0] = t["joints"]
                s1, e1 = min(s, s1), max(e, e1)
            elif min(e2, e) - max(s2, s) <= 0:
                out[s:e + 1, 1] = t["joints"]
                s2, e2 = min(s, s2), max(e, e2)
        n_actors = 2
    if multi:  # remove_missing_frames: only the 2+-track branch of get_raw_denoised_data does it
        flat = out[:, :n_actors].reshape(num_frames, -1)
        out = out[flat.sum(axis=1) != 0]
    if len(out) == 0:
        raise DatasetError("no frame left after removing missing frames", path)
    return out, n_actors


def center(joints: np.ndarray, n_actors: int) -> np.ndarray:
    """Step 5 on ``[T, 2, 25, 3]``: subtract actor 1's joint 2 in its first non-zero frame."""
    out = joints.astype(np.float32, copy=True)
    nz = np.flatnonzero(np.any(out[:, 0].reshape(len(out), -1) != 0, axis=1))
    i = int(nz[0]) if len(nz) else len(out) - 1
    origin = out[i, 0, 1].copy()
    missing = [out[:, a].reshape(len(out), -1).sum(axis=1) == 0 for a in range(2)]
    out[:, :n_actors] -= origin
    if n_actors == 2:
        for a in range(2):
            out[missing[a], a] = 0
    return out


def align(joints: np.ndarray, n_actors: int, max_frames: int = MAX_FRAMES,
          single_actor: str = "zeros", path: str = "") -> np.ndarray:
    """Step 6: ``[T, 2, 25, 3]`` -> ``[max_frames, 150]`` float32 (actor-major, then joint, then xyz)."""
    if single_actor not in ("zeros", "duplicate"):
        raise ValueError(f"single_actor must be 'zeros' or 'duplicate', got {single_actor!r}")
    T = len(joints)
    if T > max_frames:
        log.warning("%s: %d frames after denoising, truncated to %d", path, T, max_frames)
        joints, T = joints[:max_frames], max_frames
    j = joints.copy()
    if n_actors == 1:
        j[:, 1] = j[:, 0] if single_actor == "duplicate" else 0
    out = np.zeros((max_frames, 150), np.float32)
    out[:T] = j.reshape(T, 150)
    return out


def preprocess_skeleton(rec: SkeletonFile, *, max_frames: int = MAX_FRAMES,
                        single_actor: str = "zeros") -> tuple[np.ndarray, int]:
    """One ``.skeleton`` -> (``[max_frames, 150]`` float32 as in ``NTU60_XSub.npz``, frame count)."""
    joints, n = select_actors(rec)
    joints = center(joints, n)
    return align(joints, n, max_frames, single_actor, rec.path), min(len(joints), max_frames)


def rows_to_ctvm(x: np.ndarray) -> np.ndarray:
    """``[N, T, 150]`` (npz rows) -> ``[N, 3, T, 25, 2]`` exactly as MAMP's feeder reshapes them."""
    N, T, D = x.shape
    if D != 150:
        raise ValueError(f"expected 150 values per frame (2 x 25 x 3), got {D}")
    return np.ascontiguousarray(x.reshape(N, T, 2, 25, 3).transpose(0, 4, 1, 3, 2))


def ctvm_to_rows(x: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rows_to_ctvm`: ``[N, 3, T, 25, 2]`` -> ``[N, T, 150]``."""
    N, C, T, V, M = x.shape
    return np.ascontiguousarray(x.transpose(0, 2, 4, 3, 1).reshape(N, T, M * V * C))


def one_hot(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """``seq_transformation.one_hot_vector``: float64 ``[N, num_classes]``."""
    out = np.zeros((len(labels), num_classes))
    out[np.arange(len(labels)), labels] = 1
    return out


#: class counts the published npz names imply (CTR-GCN / MAMP ``NTU60_XSub.npz``, ``NTU120_XSet.npz``,
#: ``PKUv1_XSub.npz`` ...): what ``inspect`` checks labels against when no dataset config says
NPZ_NAME_CLASSES = (("ntu120", 120), ("ntu60", 60), ("pkuv1", 51), ("pkuv2", 51))
#: the most classes any skeleton benchmark here has (NTU-120), the bound for an unrecognised name
MAX_SKELETON_CLASSES = 120


def npz_num_classes(path: str | Path) -> int | None:
    """The class count an npz's file name implies (``NTU60_*`` -> 60, ...), else None."""
    name = Path(path).name.lower().replace("-", "").replace("_", "")
    return next((n for key, n in NPZ_NAME_CLASSES if name.startswith(key)), None)


def read_npz(path: str | Path, num_classes: int | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Read an ``NTU60_XSub.npz``-style file: ``{"train": (x [N,T,150], y int64 [N]), "test": ...}``.

    Labels are checked against ``num_classes`` (the dataset config's) or, without it, against the
    count the file name implies (:func:`npz_num_classes`), so ``inspect`` refuses what a run refuses.
    Every member's header is checked against its stored size before anything is read.
    """
    p = Path(path)
    if p.is_dir():
        raise DatasetError("is a directory, expected an .npz file", p)
    if num_classes is None:
        num_classes = npz_num_classes(p)
    label_high = (num_classes or MAX_SKELETON_CLASSES) - 1
    check_npz_sizes(p)
    try:
        z = np.load(p, mmap_mode="r", allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - any unreadable npz is a data error
        raise DatasetError(f"cannot read npz ({e})", p) from None
    out = {}
    for split in ("train", "test"):
        for key in (f"x_{split}", f"y_{split}"):
            if key not in z.files:
                raise DatasetError(f"missing array {key!r} (has {z.files})", p)
        try:
            x, y = z[f"x_{split}"], np.asarray(z[f"y_{split}"])
        except Exception as e:  # noqa: BLE001 - a truncated member surfaces only when read
            raise DatasetError(f"truncated or corrupt npz member x_{split}/y_{split} ({e})", p) from None
        numeric_array(x, p, f"x_{split}")  # dtype, NaN/inf
        y = numeric_array(y, p, f"y_{split}")
        if x.ndim != 3 or x.shape[2] != 150:
            raise DatasetError(f"x_{split} has shape {x.shape}, expected [N, T, 150]", p)
        if y.ndim == 2:  # one-hot rows
            if num_classes is not None and y.shape[1] != num_classes:
                raise DatasetError(f"y_{split} has {y.shape[1]} classes, expected {num_classes}", p)
            if len(y) and not np.all((y > 0).sum(1) == 1):
                raise DatasetError(f"y_{split} rows are not one-hot", p)
            labels = np.argmax(y > 0, axis=1).astype(np.int64)
        elif y.ndim == 1:
            labels = integer_labels(y, p, f"y_{split}", 0, label_high)
        else:
            raise DatasetError(f"y_{split} has shape {y.shape}", p)
        if len(labels) != len(x):
            raise DatasetError(f"x_{split} has {len(x)} rows but y_{split} has {len(labels)}", p)
        out[split] = (x, labels)
    return out
