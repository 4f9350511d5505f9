"""PKU-MMD I and II skeletons: the published text format, official splits, MAMP's 300-frame alignment.

Format (PKU-MMD README): ``skeleton/<video>.txt`` has one row per frame of 150 numbers,
two bodies x 25 joints x (x, y, z) (the second body zero when only one person is seen);
``label/<video>.txt`` has one row per action instance ``action_id,start_frame,end_frame,
confidence``. Split files (shipped with the dataset): ``cross-subject.txt`` / ``cross-view.txt``
(v1) and ``cross_subject_v2.txt`` / ``cross_view_v2.txt`` (v2); their second line lists the
training videos, comma separated; every other video is test.

Preprocessing follows MAMP ``data/pku_v1|v2/pku_gendata.py``: each labelled instance is the
rows ``[start, end)`` of its video, instances that are all zero are skipped, and each is
truncated / zero-padded to 300 frames (no centring: the PKU configs' input statistics are of
camera-space coordinates, e.g. PKU-v2 mean z = 1.36 m). Labels are ``action_id - 1`` of 51.
Deviation: videos are visited in sorted order (the official script uses ``os.listdir`` order).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from evaluators.core.paths import resolve_inside
from evaluators.datasets.base import DatasetError, register_dataset, register_inspector, resolve_root
from evaluators.datasets.checks import unique_ids
from evaluators.datasets.skeleton.build import load_ntu_like
from evaluators.datasets.skeleton.dataset import MAX_FRAMES, SkeletonDataset, SkeletonSplit, check_labels
from evaluators.datasets.skeleton.ntu_preprocess import rows_to_ctvm

log = logging.getLogger(__name__)
NUM_CLASSES = 51  # one_hot_vector(labels, 51) in both pku_gendata.py scripts
VALUES_PER_FRAME = 150
SPLIT_FILES = {  # (version, benchmark) -> split file name, as read by pku_gendata.py
    (1, "xsub"): "cross-subject.txt", (1, "xview"): "cross-view.txt",
    (2, "xsub"): "cross_subject_v2.txt", (2, "xview"): "cross_view_v2.txt",
}
NPZ_NAMES = {(1, "xsub"): "PKUv1_XSub.npz", (1, "xview"): "PKUv1_XView.npz",
             (2, "xsub"): "PKUv2_XSub.npz", (2, "xview"): "PKUv2_XView.npz"}


def read_pku_skeleton(path: str | Path) -> np.ndarray:
    """A PKU-MMD skeleton file -> float32 ``[frames, 150]``. Raises DatasetError."""
    p = Path(path)
    try:
        text = p.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"cannot read PKU-MMD skeleton file ({e})", p) from None
    rows = [ln.split() for ln in text.splitlines() if ln.strip()]
    if not rows:
        raise DatasetError("empty sequence: no frame rows", p)
    for i, r in enumerate(rows):
        if len(r) != VALUES_PER_FRAME:
            raise DatasetError(f"line {i + 1}: {len(r)} values, expected {VALUES_PER_FRAME} "
                               "(2 bodies x 25 joints x 3)", p)
    try:
        arr = np.array(rows, dtype=np.float64)
    except ValueError:
        raise DatasetError("non-numeric value in a frame row", p) from None
    if not np.isfinite(arr).all():
        raise DatasetError(f"line {int(np.argwhere(~np.isfinite(arr))[0][0]) + 1}: NaN/inf value", p)
    return arr.astype(np.float32)


def read_pku_labels(path: str | Path) -> np.ndarray:
    """A PKU-MMD label file -> int64 ``[K, 3]`` rows of (action_id, start, end); confidence dropped."""
    p = Path(path)
    try:
        lines = [ln for ln in p.read_text(encoding="ascii").splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"cannot read PKU-MMD label file ({e})", p) from None
    if not lines:
        raise DatasetError("label file has no action instance", p)
    out = []
    for i, ln in enumerate(lines):
        tok = [t.strip() for t in ln.split(",")]
        if len(tok) not in (3, 4):
            raise DatasetError(f"line {i + 1}: expected 'action_id,start,end,confidence', got {ln[:60]!r}", p)
        try:
            a, s, e = (int(float(t)) for t in tok[:3])
        except (ValueError, OverflowError):  # 'x', 'nan' -> ValueError; 'inf', '1e400' -> OverflowError
            raise DatasetError(f"line {i + 1}: non-numeric or non-finite field in {ln[:60]!r}", p) from None
        if not 1 <= a <= NUM_CLASSES:
            raise DatasetError(f"line {i + 1}: action id {a} outside 1..{NUM_CLASSES}", p)
        if s < 0 or e <= s:
            raise DatasetError(f"line {i + 1}: empty or negative interval [{s}, {e})", p)
        out.append((a, s, e))
    return np.array(out, dtype=np.int64)


def read_split_file(path: str | Path) -> list[str]:
    """Training video names from an official split file (its second line, comma separated)."""
    p = Path(path)
    if not p.exists():
        raise DatasetError("PKU-MMD split file not found", p)
    lines = p.read_text(encoding="utf-8", errors="replace").splitlines()
    if len(lines) < 2 or not lines[1].strip():
        raise DatasetError("split file has no training-video list on its second line", p)
    names = [t.strip() for t in lines[1].split(",") if t.strip()]
    unique_ids(names, p, "training video on line 2")  # a repeated video would be trained on twice
    return names


def instances(seq: np.ndarray, labels: np.ndarray, video: str, max_frames: int = MAX_FRAMES,
              path: str | Path | None = None):
    """Yield (name, rows [max_frames, 150], label0) per labelled instance of one video."""
    for k, (a, s, e) in enumerate(labels):
        if s >= len(seq) or e > len(seq):  # outside the video: an error, not a silent clip
            raise DatasetError(f"label row {k + 1}: interval [{s}, {e}) is not within the {len(seq)}-frame "
                               f"video", path or video)
        clip = seq[s:e]
        if clip.sum() == 0:  # pku_gendata.py: "Find all zero instance." -> skipped
            log.info("%s_%d: all-zero instance skipped", video, k)
            continue
        rows = np.zeros((max_frames, VALUES_PER_FRAME), np.float32)
        n = min(len(clip), max_frames)
        rows[:n] = clip[:n]
        yield f"{video}_{k}", rows, int(a) - 1


def load_pku(cfg: dict, version: int, benchmark: str) -> SkeletonDataset:
    name = cfg.get("name", f"pku{version}_{benchmark}")
    npz = Path(cfg["npz"]) if cfg.get("npz") else None
    root = None
    if npz is None:
        root = resolve_root(cfg)
        if (root / NPZ_NAMES[(version, benchmark)]).exists():
            npz = root / NPZ_NAMES[(version, benchmark)]
    if npz is not None:  # a PKUv1_XSub.npz-style file: same array layout as NTU's npz

        return load_ntu_like({**cfg, "npz": str(npz), "name": name}, rule=f"pku_{benchmark}",
                             num_classes=NUM_CLASSES, ntu60_only=False, single_actor="zeros",
                             source=cfg.get("source", "real"))
    skel_dir, label_dir = root / "skeleton", root / "label"
    for d in (skel_dir, label_dir):
        if not d.is_dir():
            raise DatasetError(f"expected folder {d.name}/ under the PKU-MMD root", d)
    videos = sorted(p.stem for p in skel_dir.glob("*.txt"))
    if not videos:
        raise DatasetError("no skeleton/*.txt files", skel_dir)
    split_path = Path(cfg["split_file"]) if cfg.get("split_file") else root / SPLIT_FILES[(version, benchmark)]
    train_set = set(read_split_file(split_path))
    unknown = sorted(train_set - set(videos))
    if unknown and not cfg.get("allow_unknown_split_names", False):
        raise DatasetError(f"split file names {len(unknown)} videos with no skeleton file (first: {unknown[0]})",
                           split_path)
    max_frames = int(cfg.get("max_frames", MAX_FRAMES))

    def make() -> dict[str, SkeletonSplit]:
        buckets: dict[str, tuple[list, list, list]] = {"train": ([], [], []), "test": ([], [], [])}
        for v in videos:
            # names come from the skeleton/ listing; a linked file must not lead outside the root
            lab_path = resolve_inside(label_dir, f"{v}.txt", source=skel_dir)
            if not lab_path.exists():
                raise DatasetError(f"no label file for video {v}", lab_path)
            seq = read_pku_skeleton(resolve_inside(skel_dir, f"{v}.txt", source=skel_dir))
            b = buckets["train" if v in train_set else "test"]
            for n, rows, y in instances(seq, read_pku_labels(lab_path), v, max_frames, lab_path):
                b[0].append(rows)
                b[1].append(y)
                b[2].append(n)
        out = {}
        for s, (rows, ys, names) in buckets.items():
            x = np.stack(rows) if rows else np.zeros((0, max_frames, VALUES_PER_FRAME), np.float32)
            y = np.asarray(ys, np.int64)
            check_labels(y, NUM_CLASSES, str(root))
            out[s] = SkeletonSplit.from_arrays(rows_to_ctvm(x), y, names)
        return out

    return SkeletonDataset(name, source=cfg.get("source", "real"), benchmark=benchmark,
                           num_classes=NUM_CLASSES, splits=make, root=str(root),
                           info={"videos": len(videos), "train_videos": len(train_set & set(videos))},
                           feeder_defaults=cfg.get("feeder"))


def _make_loader(version: int, benchmark: str):
    def load(cfg: dict) -> SkeletonDataset:
        return load_pku(cfg, version, benchmark)

    load.__doc__ = f"PKU-MMD {'I' * version} {benchmark} (official split file, MAMP alignment)."
    return load


for _v in (1, 2):
    for _b in ("xsub", "xview"):
        register_dataset(f"pku{_v}_{_b}", task="skeleton_ssl", source="real")(_make_loader(_v, _b))


@register_inspector
def inspect_pku(path: Path) -> dict | None:
    """PKU-MMD skeleton txt (rows of 150 numbers) or a root with skeleton/ and label/."""
    if path.is_dir():
        if not ((path / "skeleton").is_dir() and (path / "label").is_dir()):
            return None
        vids = sorted(p.stem for p in (path / "skeleton").glob("*.txt"))
        splits = {f: len(read_split_file(path / f)) for f in sorted(set(SPLIT_FILES.values()))
                  if (path / f).exists()}
        n_inst = sum(len(read_pku_labels(resolve_inside(path / "label", p.name, source=path / "label")))
                     for p in sorted((path / "label").glob("*.txt")))
        return {"format": "pku_mmd_folder", "path": str(path), "videos": len(vids),
                "instances": n_inst, "training_videos_per_split_file": splits}
    if path.suffix != ".txt":
        return None
    with open(path, encoding="ascii", errors="replace") as fh:
        first = fh.readline().split()
    if len(first) != VALUES_PER_FRAME:
        return None
    seq = read_pku_skeleton(path)
    second = np.abs(seq[:, 75:]).sum(axis=1) > 0
    out = {"format": "pku_mmd_skeleton", "path": str(path), "frames": int(len(seq)), "joints": 25,
           "bodies": 2 if second.any() else 1, "frames_with_two_bodies": int(second.sum())}
    lab = path.parent.parent / "label" / path.name
    if lab.exists():
        lab_rows = read_pku_labels(lab)
        out["instances"] = int(len(lab_rows))
        out["actions"] = sorted({int(a) for a in lab_rows[:, 0]})
    return out
