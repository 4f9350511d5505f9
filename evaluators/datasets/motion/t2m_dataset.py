"""Text-to-motion datasets in the published HumanML3D / KIT-ML layout (real or synthetic).

Layout (HumanML3D, github.com/EricGuo5513/HumanML3D; KIT-ML the same with 251-d features)::

    ROOT/new_joint_vecs/<id>.npy   float32 [T, 263|251] motion features (see humanml3d_features.py)
    ROOT/new_joints/<id>.npy       float32 [T, 22|21, 3] joint positions (optional, not read)
    ROOT/texts/<id>.txt            caption#word/POS tokens#start#end per line (t2m_text.py)
    ROOT/Mean.npy, ROOT/Std.npy    float32 [D] statistics of the training features
    ROOT/{train,val,test,train_val,all}.txt   one id per line (``M``-prefixed = mirrored copy)
                                   (also accepted under ROOT/splits/, the TMR layout)
    ROOT/annotations.json          TMR-format captions, read when texts/ is absent (KIT-ML)

API that methods and protocols code against (stable)::

    ds = load_dataset(cfg)                      # -> MotionTextDataset
    ds.name, ds.source, ds.fps, ds.joints_num, ds.feat_dim, ds.kinematic_chain
    ds.max_motion_length (196), ds.min_motion_length (40 HumanML3D, 24 KIT), ds.unit_length (4)
    ds.mean, ds.std                             # np.float32 [D]
    ds.split_names                              # e.g. ("train", "val", "test", ...)
    ds.split_ids(name) -> list[str]             # ids as written in the split file
    ds.split(name) -> list[MotionTextSample]    # MotionTextSample(name, motion float32 [T, D] raw
                                                #   features, texts: list[Caption(caption, tokens
                                                #   ["word/POS"], start, end)])
    ds.torch_dataset(split, normalise=True, max_len=196, seed=0) -> torch Dataset of dicts  (alias normalize=)
        {"name", "caption": str, "tokens": list[str], "motion": float32 Tensor [max_len, D]
         (normalised with mean/std, zero-padded), "length": int}
    ds.collate(list_of_items) -> {"name": list, "caption": list, "tokens": list,
                                  "motion": [B, max_len, D], "length": LongTensor [B]}
    ds.normalise(x) / ds.denormalise(x)         # numpy or torch, [..., D]
    ds.features_to_joints(x_raw [..., T, D]) -> [..., T, J, 3]   (recover_from_ric)

Sample rules follow text-to-motion ``data/dataset.py`` (Text2MotionDatasetV2): motions with
``T < min_motion_length`` or ``T >= 200`` are dropped; a caption with a non-zero start/end span
becomes its own sample ``motion[int(start*20):int(end*20)]`` (same length rule) named
``<letter>_<id>`` with a seeded random letter A–W; the motion keeps the whole-motion captions and
is dropped if it has none. Each access draws one caption at random and crops the motion to a
multiple of ``unit_length`` (one unit shorter with probability 1/3) at a random start.
"""

from __future__ import annotations

import csv
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from evaluators.core.paths import resolve_inside
from evaluators.datasets.base import DatasetError
from evaluators.datasets.checks import load_npy, numeric_array, read_utf8
from evaluators.datasets.motion.humanml3d_features import recover_from_ric
from evaluators.datasets.motion.kinematics import skeleton_for
from evaluators.datasets.motion.t2m_text import Caption, read_caption_file, read_tmr_annotations, tag_captions

log = logging.getLogger(__name__)

SPLIT_ORDER = ("train", "val", "test", "train_val", "all")
MAX_RAW_LENGTH = 200  # official: len(motion) >= 200 is dropped
CROP_FPS = 20  # official: int(f_tag * 20) for HumanML3D and KIT alike


@dataclass
class MotionTextSample:
    name: str
    motion: np.ndarray  # float32 [T, D] raw (un-normalised) features
    texts: list[Caption] = field(default_factory=list)

    @property
    def length(self) -> int:
        return int(len(self.motion))


def read_split_file(path: str | Path) -> list[str]:
    """Ids of one split file (blank lines ignored); DatasetError if missing or empty."""
    return [i for _, i in read_split_lines(path)]


def read_split_lines(path: str | Path) -> list[tuple[int, str]]:
    """``(line number, id)`` of one split file, so that a bad id can be reported with its line."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError("split file missing", path=path)
    ids = [(n + 1, ln.strip()) for n, ln in enumerate(read_utf8(path, "split file").splitlines()) if ln.strip()]
    if not ids:
        raise DatasetError("split file is empty", path=path)
    seen: dict[str, int] = {}
    for n, i in ids:  # a repeated id would train (and evaluate) on that motion twice
        if i in seen:
            raise DatasetError(f"line {n}: id {i!r} already listed on line {seen[i]}", path=path)
        seen[i] = n
    return ids


def load_stat(path: str | Path, feat_dim: int | None = None) -> np.ndarray:
    """Mean.npy / Std.npy as float32 [D], checked for shape and finiteness."""
    path = Path(path)
    arr = numeric_array(load_npy(path, "statistics file"), path, "statistics")
    if arr.ndim != 1 or (feat_dim is not None and arr.shape[0] != feat_dim):
        raise DatasetError(f"expected shape ({feat_dim},), got {arr.shape}", path=path)
    if not np.isfinite(arr).all():
        raise DatasetError("contains NaN or inf", path=path)
    return arr.astype(np.float32)


def load_features(path: str | Path, feat_dim: int | None = None) -> np.ndarray:
    """One ``new_joint_vecs`` file as float32 [T, D]; DatasetError on any defect."""
    path = Path(path)
    arr = numeric_array(load_npy(path, "motion file"), path, "motion features")
    if arr.ndim != 2:
        raise DatasetError(f"expected features [T, D], got shape {arr.shape}", path=path)
    if feat_dim is not None and arr.shape[1] != feat_dim:
        raise DatasetError(f"wrong feature count {arr.shape[1]} (expected {feat_dim})", path=path)
    if arr.shape[1] not in (263, 251):
        raise DatasetError(f"wrong feature count {arr.shape[1]} (263 HumanML3D or 251 KIT-ML)", path=path)
    if len(arr) == 0:
        raise DatasetError("empty sequence (0 frames)", path=path)
    if not np.isfinite(arr).all():
        raise DatasetError("contains NaN or inf", path=path)
    return arr.astype(np.float32)


class MotionTextDataset:
    """A HumanML3D-layout folder (see module docstring for the API)."""

    def __init__(self, root: str | Path, *, name: str, source: str = "real", fps: float = 20.0,
                 joints_num: int = 22, min_motion_length: int = 40, max_motion_length: int = 196,
                 unit_length: int = 4, seed: int = 0, missing: str = "error") -> None:
        self.root = Path(root)
        self.name, self.source, self.fps = name, source, float(fps)
        self.joints_num = int(joints_num)
        spec = skeleton_for(self.joints_num)
        self.feat_dim = spec.feat_dim
        self.kinematic_chain = [list(c) for c in spec.kinematic_chain]
        self.min_motion_length, self.max_motion_length = int(min_motion_length), int(max_motion_length)
        self.unit_length, self.seed, self.missing = int(unit_length), int(seed), missing
        if not (self.root / "new_joint_vecs").is_dir():
            raise DatasetError("no new_joint_vecs/ folder (not a HumanML3D-layout dataset)", path=self.root)
        self.mean = load_stat(self.root / "Mean.npy", self.feat_dim)
        self.std = load_stat(self.root / "Std.npy", self.feat_dim)
        if (self.std <= 0).any():
            raise DatasetError("Std.npy has non-positive entries", path=self.root / "Std.npy")
        self._splits = {s: p for s in SPLIT_ORDER for p in (self.root / f"{s}.txt", self.root / "splits" / f"{s}.txt")
                        if p.is_file()}
        if not self._splits:
            raise DatasetError("no split files (train.txt, val.txt, test.txt ...)", path=self.root)
        self.split_names = tuple(s for s in SPLIT_ORDER if s in self._splits)
        self._cache: dict[str, list[MotionTextSample]] = {}
        self._annotations: dict | None = None

    # -- reading -----------------------------------------------------------------------------
    def split_file(self, split: str) -> Path | None:
        """The split's id file (``test.txt``...), whose sha256 names the split in evaluation manifests."""
        return self._splits.get(split)

    def split_ids(self, split: str) -> list[str]:
        if split not in self._splits:
            raise DatasetError(f"unknown split {split!r}; available: {list(self.split_names)}", path=self.root)
        return read_split_file(self._splits[split])

    def _captions(self, ids: list[str], text_paths: dict[str, Path]) -> dict[str, list[Caption]]:
        if (self.root / "texts").is_dir():
            return {i: read_caption_file(text_paths[i]) for i in ids}
        ann_path = self.root / "annotations.json"
        if not ann_path.is_file():
            raise DatasetError("neither texts/ nor annotations.json present", path=self.root)
        if self._annotations is None:
            self._annotations = read_tmr_annotations(ann_path)
        missing = [i for i in ids if i not in self._annotations]
        if missing:
            raise DatasetError(f"{len(missing)} id(s) have no annotation, e.g. {missing[:5]}", path=ann_path)
        caps = {i: self._annotations[i]["captions"] for i in ids}
        flat = [(i, k) for i in ids for k in range(len(caps[i]))]
        tokens = tag_captions([caps[i][k].caption for i, k in flat])
        out: dict[str, list[Caption]] = {i: [] for i in ids}
        for (i, k), tok in zip(flat, tokens):
            c = caps[i][k]
            out[i].append(Caption(c.caption, tok, c.start, c.end))
        return out

    def split(self, split: str) -> list[MotionTextSample]:
        """Samples of a split after the official length rules and caption sub-clip cropping."""
        if split in self._cache:
            return self._cache[split]
        split_path = self._splits.get(split)
        if split not in self._splits:
            raise DatasetError(f"unknown split {split!r}; available: {list(self.split_names)}", path=self.root)
        numbered = read_split_lines(split_path)
        ids = [i for _, i in numbered]
        # ids are data: each file they name must stay inside its folder (no ../, no absolute id, no escaping link)
        vec_dir, text_dir = self.root / "new_joint_vecs", self.root / "texts"
        vec_paths = {i: resolve_inside(vec_dir, f"{i}.npy", source=split_path, line=n) for n, i in numbered}
        text_paths = {i: resolve_inside(text_dir, f"{i}.txt", source=split_path, line=n) for n, i in numbered}
        absent = [i for i in ids if not vec_paths[i].is_file()]
        if absent:
            if self.missing != "skip":
                raise DatasetError(f"split file names {len(absent)} unknown sample(s) with no "
                                   f"new_joint_vecs/<id>.npy, e.g. {absent[:5]}", path=split_path)
            log.warning("%s: skipping %d ids without a motion file", split_path, len(absent))
            ids = [i for i in ids if i not in set(absent)]
        caps = self._captions(ids, text_paths)
        rng = random.Random(self.seed)  # deterministic sub-clip names (official: module random)
        taken: set[str] = set()
        out: list[MotionTextSample] = []
        lo, hi = self.min_motion_length, MAX_RAW_LENGTH
        for i in ids:
            motion = load_features(vec_paths[i], self.feat_dim)
            if not lo <= len(motion) < hi:
                continue
            whole = []
            for c in caps[i]:
                if c.whole_motion:
                    whole.append(c)
                    continue
                if int(c.start * CROP_FPS) >= len(motion):  # describes nothing of this motion
                    raise DatasetError(f"{c.source or text_paths[i]}: span {c.start:g}..{c.end:g} s starts after "
                                       f"the end of motion {i} ({len(motion)} frames = "
                                       f"{len(motion) / CROP_FPS:g} s at {CROP_FPS} fps)")
                sub = motion[int(c.start * CROP_FPS):int(c.end * CROP_FPS)]
                if not lo <= len(sub) < hi:
                    continue
                new = f"{rng.choice('ABCDEFGHIJKLMNOPQRSTUVW')}_{i}"
                while new in taken:
                    new = f"{rng.choice('ABCDEFGHIJKLMNOPQRSTUVW')}_{i}"
                taken.add(new)
                out.append(MotionTextSample(new, sub, [c]))
            if whole:
                taken.add(i)
                out.append(MotionTextSample(i, motion, whole))
        if not out:
            raise DatasetError(f"split {split!r} has no usable sample (lengths {lo}..{hi - 1} frames)",
                               path=split_path)
        self._cache[split] = out
        return out

    # -- tensors ------------------------------------------------------------------------------
    def normalise(self, x):
        return (x - _like(self.mean, x)) / _like(self.std, x)

    def denormalise(self, x):
        return x * _like(self.std, x) + _like(self.mean, x)

    def features_to_joints(self, x):
        """Joint positions [..., T, J, 3] of raw (de-normalised) features [..., T, D]."""
        return recover_from_ric(x, self.joints_num)

    def torch_dataset(self, split: str, normalise: bool = True, max_len: int | None = None, seed: int | None = None,
                      normalize: bool | None = None):
        """Items of ``split`` (see module docstring); ``normalize`` is accepted as a US-spelling alias."""
        if normalize is not None:
            normalise = normalize
        return MotionTextTorchDataset(self, split, normalise=normalise,
                                      max_len=max_len or self.max_motion_length,
                                      seed=self.seed if seed is None else seed)

    @staticmethod
    def collate(items: list[dict]) -> dict:
        return {"name": [it["name"] for it in items], "caption": [it["caption"] for it in items],
                "tokens": [it["tokens"] for it in items],
                "motion": torch.stack([it["motion"] for it in items]),
                "length": torch.tensor([it["length"] for it in items], dtype=torch.long)}

    def __repr__(self) -> str:
        return f"MotionTextDataset({self.name!r}, root={str(self.root)!r}, splits={self.split_names})"


def _like(arr: np.ndarray, x):
    try:
        if isinstance(x, torch.Tensor):
            return torch.as_tensor(arr, dtype=x.dtype, device=x.device)
    except ImportError:  # pragma: no cover
        pass
    return arr


def crop_length(length: int, max_len: int, unit: int, coin: str) -> int:
    """Official V2 crop: round down to a multiple of ``unit``; 'double' removes one more unit."""
    m = min(length, max_len)
    units = m // unit - (1 if coin == "double" else 0)
    return max(units, 1) * unit if m >= unit else m


class MotionTextTorchDataset:
    """torch ``Dataset`` view of one split (seeded caption choice and crop per access)."""

    def __init__(self, ds: MotionTextDataset, split: str, *, normalise: bool, max_len: int, seed: int) -> None:
        self.ds, self.split_name, self.normalise_, self.max_len = ds, split, normalise, int(max_len)
        self.samples = ds.split(split)
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Reset the caption/crop generator to a state determined by (seed, epoch).

        The generator is consumed per access; DataLoader worker processes each get a copy, so
        with workers the draws are reproducible but repeat across workers (call ``set_epoch``
        per epoch and use ``num_workers=0`` for the single-process stream).
        """
        self.rng = np.random.default_rng([self.seed, epoch])

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        s = self.samples[index]
        cap = s.texts[int(self.rng.integers(len(s.texts)))]
        unit = self.ds.unit_length
        coin = "double" if unit < 10 and self.rng.integers(3) == 2 else "single"
        m_len = crop_length(s.length, self.max_len, unit, coin)
        start = int(self.rng.integers(0, s.length - m_len + 1))
        motion = s.motion[start:start + m_len]
        if self.normalise_:
            motion = self.ds.normalise(motion)
        out = np.zeros((self.max_len, self.ds.feat_dim), dtype=np.float32)
        out[:m_len] = motion
        return {"name": s.name, "caption": cap.caption, "tokens": list(cap.tokens),
                "motion": torch.from_numpy(out), "length": m_len}


def read_humanml3d_index(path: str | Path) -> list[dict]:
    """HumanML3D ``index.csv`` (source_path, start_frame, end_frame, new_name): which AMASS /
    HumanAct12 file and frame range (end -1 = to the end) each HumanML3D id was cut from."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError("index file missing", path=path)
    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames != ["source_path", "start_frame", "end_frame", "new_name"]:
            raise DatasetError(f"unexpected header {reader.fieldnames}", path=path)
        for k, row in enumerate(reader, start=2):
            try:
                rows.append({"source_path": row["source_path"], "start_frame": int(row["start_frame"]),
                             "end_frame": int(row["end_frame"]), "id": Path(row["new_name"]).stem})
            except (TypeError, ValueError):
                raise DatasetError(f"line {k}: malformed row {row}", path=path) from None
    return rows
