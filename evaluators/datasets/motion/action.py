"""Action-to-motion datasets as ACTOR (Mathux/ACTOR) and MLD publish them: HumanAct12 and UESTC.

HumanAct12 (``humanact12poses.pkl``, ACTOR ``src/datasets/humanact12poses.py``): a pickled dict
``{"poses": [T, 72] SMPL axis-angle per clip, "joints3D": [T, 24, 3], "y": int label}`` of
lists; 12 coarse classes; ACTOR trains (and the action-to-motion protocol evaluates) on all
clips, so the only split is ``train``.

UESTC (ACTOR ``src/datasets/uestc.py``)::

    ROOT/vibe_cache_refined.pkl   {"pose": [T, 72], "joints3d": [T, 49, 3], "orig_cam": [T, 4]} lists
    ROOT/info/names.txt           25600 video names  a<action>_d<view>_p<subject>_c<side>_color.avi
    ROOT/info/num_frames_min.txt  frames per video
    ROOT/info/action_classes.txt  40 class names
    ROOT/globtrans_usez.pkl       optional cached global translations

18 joints (``action2motion_joints`` of VIBE's 49), global translation from VIBE's camera
(``get_z``), side-2 videos rotated to the front view (view 8 of side 2 dropped), the official
cross-subject split (51 training subjects), training clips shorter than 3/4 of
``num_frames`` dropped.

API: ``ds.name, source, fps, up, num_classes, class_names, joints_num, kinematic_chain,
split_names, split(name) -> list[ActionSample(name, joints float32 [T, J, 3], label)],
torch_dataset(split, num_frames=60, seed=0)`` yielding ``{"name", "joints" float32 [N, J, 3]
(first-frame root at the origin), "label", "length"}`` with ACTOR's "conseq" frame sampling.

``up``: the direction that points up, ``"-y"`` for both published sets: their joints are camera
frames with y pointing down (HumanAct12: ACTOR ``src/preprocess/humanact12_process.py`` moves the
PHSPD joints into the Kinect ``c2`` camera; UESTC: VIBE's camera-frame SMPL joints), which is
why ACTOR's renderer turns meshes 180 degrees about x (``src/render/renderer.py`` L107-108) and
MDM's ``plot_3d_motion`` negates their axes ("reverse axes", ``plot_script.py`` L69-70).
``None``: not known (the physical metrics then leave the dataset out).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from evaluators.core.safe_load import load_data_pickle
from evaluators.datasets.base import DatasetError, register_dataset, register_inspector, resolve_root
from evaluators.datasets.checks import integer_labels, numeric_array, read_utf8

HUMANACT12_CLASSES = ("warm_up", "walk", "run", "jump", "drink", "lift_dumbbell", "sit", "eat",
                      "turn steering wheel", "phone", "boxing", "throw")
# SMPL 24-joint chains (HumanML3D t2m chain plus the two hand joints 22/23)
SMPL24_CHAIN = [[0, 2, 5, 8, 11], [0, 1, 4, 7, 10], [0, 3, 6, 9, 12, 15], [9, 14, 17, 19, 21, 23],
                [9, 13, 16, 18, 20, 22]]
ACTION2MOTION_JOINTS = [8, 1, 2, 3, 4, 5, 6, 7, 0, 9, 10, 11, 12, 13, 14, 21, 24, 38]
# the published HumanAct12 / UESTC joints are camera frames, y pointing down (module docstring)
CAMERA_UP = "-y"
UESTC_TRAIN_SUBJECTS = (1, 2, 6, 12, 13, 16, 21, 24, 28, 29, 30, 31, 33, 35, 39, 41, 42, 45, 47, 50, 52, 54, 55,
                        57, 59, 61, 63, 64, 67, 69, 70, 71, 73, 77, 81, 84, 86, 87, 88, 90, 91, 93, 96, 99, 102,
                        103, 104, 107, 108, 112, 113)


@dataclass
class ActionSample:
    name: str
    joints: np.ndarray  # float32 [T, J, 3]
    label: int

    @property
    def motion(self) -> np.ndarray:
        """Alias of ``joints`` (the name the generation protocols read)."""
        return self.joints


def _load_pickle(path: Path, trust: bool = False):
    """Restricted unpickling (numpy arrays and plain containers only; :mod:`evaluators.core.safe_load`)."""
    return load_data_pickle(path, trust=trust)


def _check_joints(arr, path: Path, what: str, joints: int | None = None) -> np.ndarray:
    arr = numeric_array(arr, path, what, finite=False)
    if arr.ndim != 3 or arr.shape[-1] != 3 or (joints is not None and arr.shape[1] != joints):
        raise DatasetError(f"{what}: expected [T, {joints or 'J'}, 3] joints, got {arr.shape}", path=path)
    if len(arr) == 0:
        raise DatasetError(f"{what}: empty sequence (0 frames)", path=path)
    if not np.isfinite(arr).all():
        raise DatasetError(f"{what}: contains NaN or inf", path=path)
    return arr.astype(np.float32)


def read_humanact12(path: str | Path, trust_pickles: bool = False) -> list[ActionSample]:
    """All clips of ``humanact12poses.pkl`` (names = clip index, zero-padded).

    ``trust_pickles``: unpickle without restrictions (only for a file you trust; README "Safety").
    """
    path = Path(path)
    data = _load_pickle(path, trust_pickles)
    if not isinstance(data, dict) or not {"joints3D", "y"} <= set(data):
        raise DatasetError("expected a dict with keys 'joints3D', 'poses', 'y'", path=path)
    joints, labels = data["joints3D"], data["y"]
    for key, value in (("joints3D", joints), ("y", labels)):
        if not isinstance(value, (list, tuple, np.ndarray)) or getattr(value, "ndim", 1) == 0:
            raise DatasetError(f"{key!r} must be a list with one entry per clip, got {type(value).__name__} "
                               f"{value!r:.60}", path=path)
    if len(joints) != len(labels) or len(joints) == 0:
        raise DatasetError(f"{len(joints)} joint sequences but {len(labels)} labels", path=path)
    out = []
    labels = integer_labels(labels, path, "y", 0, len(HUMANACT12_CLASSES) - 1)
    for i, (j, y) in enumerate(zip(joints, labels)):
        y = int(y)
        out.append(ActionSample(f"{i:04d}", _check_joints(j, path, f"clip {i}", 24), y))
    return out


def actor_frame_indices(nframes: int, num_frames: int, rng: random.Random, sampling_step: int = 1) -> np.ndarray:
    """ACTOR ``_get_item_data_index`` with sampling='conseq': padded with the last frame when too
    short, otherwise ``num_frames`` frames ``sampling_step`` apart at a random shift."""
    if num_frames > nframes:
        return np.concatenate([np.arange(nframes), np.full(num_frames - nframes, nframes - 1)])
    step_max = (nframes - 1) // max(num_frames - 1, 1)
    step = step_max if sampling_step == -1 or sampling_step * (num_frames - 1) >= nframes else sampling_step
    last = step * (num_frames - 1)
    shift = rng.randint(0, max(0, nframes - last - 1 - 1))
    return shift + np.arange(0, last + 1, max(step, 1))


class ActionDataset:
    """Clips with action labels (see module docstring for the API)."""

    def __init__(self, name: str, splits: dict[str, list[ActionSample]], class_names, *, source: str = "real",
                 fps: float = 20.0, kinematic_chain=None, up: str | None = None) -> None:
        self.name, self.source, self.fps, self.up = name, source, float(fps), up
        self._splits = splits
        self.split_names = tuple(splits)
        self.class_names = tuple(class_names)
        self.num_classes = len(self.class_names)
        first = next(iter(splits.values()))
        self.joints_num = int(first[0].joints.shape[1]) if first else 0
        self.kinematic_chain = kinematic_chain

    def split(self, name: str) -> list[ActionSample]:
        if name not in self._splits:
            raise DatasetError(f"unknown split {name!r}; available: {list(self.split_names)}", path=self.name)
        return self._splits[name]

    def torch_dataset(self, split: str, num_frames: int = 60, seed: int = 0, sampling_step: int = 1):
        return ActionTorchDataset(self.split(split), num_frames, seed, sampling_step)

    @staticmethod
    def collate(items: list[dict]) -> dict:
        return {"name": [it["name"] for it in items], "joints": torch.stack([it["joints"] for it in items]),
                "label": torch.tensor([it["label"] for it in items], dtype=torch.long),
                "length": torch.tensor([it["length"] for it in items], dtype=torch.long)}

    def __repr__(self) -> str:
        sizes = {k: len(v) for k, v in self._splits.items()}
        return f"ActionDataset({self.name!r}, classes={self.num_classes}, splits={sizes})"


class ActionTorchDataset:
    def __init__(self, samples: list[ActionSample], num_frames: int, seed: int, sampling_step: int) -> None:
        self.samples, self.num_frames, self.sampling_step = samples, int(num_frames), sampling_step
        self.rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        s = self.samples[index]
        ix = actor_frame_indices(len(s.joints), self.num_frames, self.rng, self.sampling_step)
        j = s.joints[ix] - s.joints[ix[0], 0]  # ACTOR: root of the first sampled frame at the origin
        return {"name": s.name, "joints": torch.from_numpy(np.ascontiguousarray(j, dtype=np.float32)),
                "label": s.label, "length": len(ix)}


@register_dataset("humanact12", task="action2motion", source="real")
def load_humanact12(cfg: dict) -> ActionDataset:
    root = resolve_root(cfg)
    path = root if root.is_file() else root / "humanact12poses.pkl"
    clips = read_humanact12(path, bool(cfg.get("trust_pickles", False)))
    return ActionDataset(cfg["name"], {"train": clips}, HUMANACT12_CLASSES,
                         source=cfg.get("source", "real"), fps=cfg.get("fps", 20), kinematic_chain=SMPL24_CHAIN,
                         up=CAMERA_UP)


# -- UESTC --------------------------------------------------------------------------------------


def _check_cams(cams, frames: int, path: Path, what: str) -> np.ndarray:
    """VIBE ``orig_cam`` [T, 4] = (sx, sy, tx, ty): finite, and a weak-perspective scale ``sx > 0``
    (``_vibe_trans`` divides by the projected height, which a zero scale makes zero)."""
    cams = numeric_array(cams, path, f"{what} orig_cam")
    if cams.shape != (frames, 4):
        raise DatasetError(f"{what} orig_cam: expected [{frames}, 4] (one (sx, sy, tx, ty) per frame), got "
                           f"{cams.shape}", path=path)
    bad = np.flatnonzero(~(cams[:, 0] > 0))
    if len(bad):
        raise DatasetError(f"{what} orig_cam frame {int(bad[0])}: scale sx = {cams[bad[0], 0]!r} (must be > 0)",
                           path=path)
    return cams


def _vibe_trans(joints: np.ndarray, cams: np.ndarray) -> np.ndarray:
    """ACTOR ``get_trans_from_vibe(use_z=True)``: per-frame (x, y, z) from VIBE's orig_cam."""
    out = []
    for j, cam in zip(joints, cams):
        target = (cam[0] * (j[:, :2] + cam[2:4]) + 1) * 0.5 * 540
        h3 = np.linalg.norm(j[:, :2].max(0) - j[:, :2].min(0))
        h2 = np.linalg.norm(target.max(0) - target.min(0))
        out.append([cam[2], cam[3], 500 * (h3 / h2)])
    out = np.asarray(out, dtype=np.float64)
    return out - out[0]


def read_uestc(root: str | Path, num_frames: int = 60,
               trust_pickles: bool = False) -> tuple[dict[str, list[ActionSample]], list[str]]:
    """(splits, class names) of an ACTOR-layout UESTC folder (see module docstring)."""
    root = Path(root)
    info = root / "info"
    names_path = info / "names.txt"
    if not names_path.is_file():
        raise DatasetError("info/names.txt missing", path=names_path)
    names = [n for n in read_utf8(names_path, "names file").splitlines() if n.strip()]
    nf_path = info / "num_frames_min.txt"
    try:
        nf = [int(s) for s in read_utf8(nf_path, "frame-count file").splitlines() if s.strip()]
    except ValueError as exc:
        raise DatasetError(f"unreadable frame counts ({exc})", path=nf_path) from None
    bad = next((k for k, n in enumerate(nf) if n < 1), None)
    if bad is not None:
        raise DatasetError(f"line {bad + 1}: frame count {nf[bad]} (must be >= 1)", path=nf_path)
    vibe_path = root / "vibe_cache_refined.pkl"
    vibe = _load_pickle(vibe_path, trust_pickles)
    if not isinstance(vibe, dict) or not {"joints3d", "pose", "orig_cam"} <= set(vibe):
        raise DatasetError("expected a dict with keys 'pose', 'joints3d', 'orig_cam'", path=vibe_path)
    for key in ("joints3d", "orig_cam"):
        if not isinstance(vibe[key], (list, tuple, np.ndarray)) or getattr(vibe[key], "ndim", 1) == 0:
            raise DatasetError(f"{key!r} must be a list with one entry per video, got {type(vibe[key]).__name__}",
                               path=vibe_path)
    if not len(names) == len(nf) == len(vibe["joints3d"]) == len(vibe["orig_cam"]):
        raise DatasetError(f"{len(names)} names, {len(nf)} frame counts, {len(vibe['joints3d'])} clips, "
                           f"{len(vibe['orig_cam'])} camera tracks", path=root)
    glob_path = root / "globtrans_usez.pkl"
    globtrans = _load_pickle(glob_path, trust_pickles) if glob_path.is_file() else None
    threshold = num_frames * 3 / 4 if num_frames > 0 else 0
    splits: dict[str, list[ActionSample]] = {"train": [], "test": []}
    for i, video in enumerate(names):
        try:
            act, view, subject, side = (int(p[1:]) for p in video.split("_")[:4])
        except ValueError:
            raise DatasetError(f"line {i + 1}: video name {video!r} is not a<A>_d<V>_p<S>_c<C>...", path=names_path) \
                from None
        if not 0 <= act < 40:
            raise DatasetError(f"line {i + 1}: action {act} outside 0..39", path=names_path)
        if side != 1 and view == 8:
            continue
        j = _check_joints(vibe["joints3d"][i], vibe_path, f"clip {i} ({video})").astype(np.float64)
        n = min(nf[i], len(j))
        if globtrans is not None:
            trans = numeric_array(globtrans[i], glob_path, f"clip {i} ({video}) translation")
            if trans.shape != (len(j), 3):
                raise DatasetError(f"clip {i} ({video}) translation: expected [{len(j)}, 3], got {trans.shape}",
                                   path=glob_path)
        else:
            trans = _vibe_trans(j, _check_cams(vibe["orig_cam"][i], len(j), vibe_path, f"clip {i} ({video})"))
        if side != 1:  # rotate to the front view: angle -view*pi/4 about Y
            th = -view * np.pi / 4
            rot = np.array([[np.cos(th), 0, np.sin(th)], [0, 1, 0], [-np.sin(th), 0, np.cos(th)]])
            j, trans = j @ rot.T, trans @ rot.T
        j = (j + trans[:, None])[:n, ACTION2MOTION_JOINTS]
        split = "train" if subject in UESTC_TRAIN_SUBJECTS else "test"
        if split == "train" and n < threshold:
            continue
        splits[split].append(ActionSample(video.split("_color")[0], j.astype(np.float32), act))
    cls_path = info / "action_classes.txt"
    classes = read_utf8(cls_path, "class-name file").splitlines() if cls_path.is_file() \
        else [f"action_{k}" for k in range(40)]
    return splits, classes


@register_dataset("uestc", task="action2motion", source="real")
def load_uestc(cfg: dict) -> ActionDataset:
    splits, classes = read_uestc(resolve_root(cfg), int(cfg.get("num_frames", 60)),
                                bool(cfg.get("trust_pickles", False)))
    return ActionDataset(cfg["name"], splits, classes, source=cfg.get("source", "real"), fps=cfg.get("fps", 20),
                         up=CAMERA_UP)


@register_inspector
def inspect_humanact12(path: Path):
    if not (path.is_file() and path.suffix == ".pkl" and "humanact12" in path.name.lower()):
        return None
    samples = read_humanact12(path)
    lengths = np.array([len(s.joints) for s in samples])
    counts = np.bincount([s.label for s in samples], minlength=12)
    return {"format": "HumanAct12 (ACTOR humanact12poses.pkl)", "clips": len(samples), "joints": 24,
            "frames": {"min": int(lengths.min()), "mean": round(float(lengths.mean()), 1), "max": int(lengths.max())},
            "clips_per_class": {HUMANACT12_CLASSES[k]: int(c) for k, c in enumerate(counts)}}


@register_inspector
def inspect_uestc(path: Path):
    """An ACTOR-layout UESTC folder, read by the loader's own reader (so ``inspect`` and a run agree)."""
    if not (path.is_dir() and (path / "info" / "names.txt").is_file() and (path / "vibe_cache_refined.pkl").is_file()):
        return None
    splits, classes = read_uestc(path)
    return {"format": "UESTC (ACTOR layout)", "classes": len(classes), "joints": len(ACTION2MOTION_JOINTS),
            "clips": {k: len(v) for k, v in splits.items()}}
