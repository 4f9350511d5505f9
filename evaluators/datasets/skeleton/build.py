"""Build (and cache) the NTU-style arrays of a folder of ``.skeleton`` files, then split them.

Shared by the real NTU RGB+D datasets and ``synth_ntu`` (which writes real ``.skeleton``
files first), so both go through exactly the same reader and preprocessing.
The cache (``cache_root()/ntu-arrays-<key>/``) is keyed by a hash of every source file's
name, size and mtime plus the preprocessing options, and written atomically.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from evaluators.core.io import atomic_path, atomic_write_text
from evaluators.core.paths import resolve_inside
from evaluators.datasets.base import DatasetError, resolve_root
from evaluators.datasets.cache import cache_key, cache_root
from evaluators.datasets.skeleton.dataset import (
    MAX_FRAMES,
    SkeletonDataset,
    SkeletonSplit,
    check_labels,
    count_valid_frames,
)
from evaluators.datasets.skeleton.ntu_preprocess import preprocess_skeleton, read_npz, rows_to_ctvm
from evaluators.datasets.skeleton.ntu_reader import NAME_RE, parse_name, read_missing_list, read_skeleton
from evaluators.datasets.skeleton.ntu_splits import in_ntu60, split_indices

log = logging.getLogger(__name__)
PIPELINE_VERSION = 1  # bump when the preprocessing changes, so old caches are not reused
MISSING_LIST_NAMES = ("NTU_RGBD_samples_with_missing_skeletons.txt",
                      "NTU_RGBD120_samples_with_missing_skeletons.txt")


def find_skeleton_files(root: Path) -> dict[str, Path]:
    """``{sample name: path}`` of every ``SsssCcccPpppRrrrAaaa.skeleton`` under ``root`` (recursive)."""
    out: dict[str, Path] = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f.endswith(".skeleton") and NAME_RE.fullmatch(f[:-9]):
                if f[:-9] in out:
                    raise DatasetError(f"sample {f[:-9]} found twice (also at {out[f[:-9]]})", Path(dirpath) / f)
                out[f[:-9]] = Path(dirpath) / f
                if os.path.islink(out[f[:-9]]):  # os.walk skips linked folders; a linked file must stay inside
                    resolve_inside(root, os.path.relpath(out[f[:-9]], root), source=out[f[:-9]])
    return dict(sorted(out.items()))


def missing_names(root: Path, cfg: dict) -> set[str]:
    """Names to skip: ``cfg['missing_list']`` (path(s)) or the official list files found in ``root``."""
    lists = cfg.get("missing_list")
    if lists in (None, "auto"):
        paths = [resolve_inside(root, p.relative_to(root), source=root)
                 for n in MISSING_LIST_NAMES for p in root.rglob(n)]
        if not paths:
            log.warning("%s: no missing-skeleton list found; samples with no skeleton will raise", root)
    elif lists in ("none", False):
        paths = []
    else:
        paths = [Path(p) for p in ([lists] if isinstance(lists, str | os.PathLike) else lists)]
    names: set[str] = set()
    for p in paths:
        names.update(read_missing_list(p))
    return names


def build_arrays(files: dict[str, Path], *, max_frames: int = MAX_FRAMES, single_actor: str = "zeros",
                 use_cache: bool = True) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Preprocess every file: ``(rows float32 [N, max_frames, 150], names, frames int64 [N])``.

    With the cache on, rows are written straight into a memory-mapped ``.npy`` (a temporary
    name renamed into place when complete), so the full NTU-120 array (about 20 GB, as the
    official npz) never has to fit in RAM; the returned array is then a read-only memmap.
    """
    names = list(files)
    opts = {"max_frames": max_frames, "single_actor": single_actor, "v": PIPELINE_VERSION}
    stats = [(n, os.stat(p).st_size, os.stat(p).st_mtime_ns) for n, p in files.items()]
    cdir = cache_root() / f"ntu-arrays-{cache_key(stats, opts)}"
    if use_cache and (cdir / "meta.json").exists():
        meta, why = _valid_cache(cdir, names)
        if meta is not None:
            return np.load(cdir / "rows.npy", mmap_mode="r"), names, np.asarray(meta["frames"], np.int64)
        log.warning("dataset cache %s is %s: rebuilding it", cdir, why)
    shape = (len(names), max_frames, 150)
    frames = np.zeros(len(names), np.int64)
    existed = cdir.exists()
    try:
        with _staged_npy(cdir / "rows.npy", shape) if use_cache else _in_memory(shape) as rows:
            for i, p in enumerate(tqdm(files.values(), desc="ntu preprocess", disable=len(files) < 2000)):
                rows[i], frames[i] = preprocess_skeleton(read_skeleton(p), max_frames=max_frames,
                                                         single_actor=single_actor)
    except BaseException:
        if use_cache and not existed and cdir.is_dir() and not any(cdir.iterdir()):
            cdir.rmdir()  # a failed build leaves no empty cache folder behind
        raise
    if not use_cache:
        return rows, names, frames
    rows_path = cdir / "rows.npy"
    atomic_write_text(cdir / "meta.json", json.dumps({"names": names, "frames": frames.tolist(), "options": opts,
                                                      "rows_size": rows_path.stat().st_size,
                                                      "rows_checksum": sampled_checksum(rows_path)}))
    return np.load(rows_path, mmap_mode="r"), names, frames


def sampled_checksum(path: Path, blocks: int = 64, block: int = 1 << 16) -> str:
    """sha256 over the size and ``blocks`` evenly spaced ``block``-byte slices of ``path``.

    ours: a full hash of the NTU-120 rows (about 20 GB) would cost minutes at every start; the
    stored size catches truncation exactly, the sampled slices catch a rewritten or mixed-up file.
    """
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as fh:
        for k in range(blocks):
            fh.seek(size * k // blocks)
            h.update(fh.read(block))
    return h.hexdigest()


def _valid_cache(cdir: Path, names: list[str]) -> tuple[dict | None, str]:
    """(meta, "") when ``cdir`` holds a complete, consistent cache; else (None, what is wrong)."""
    rows = cdir / "rows.npy"
    try:
        meta = json.loads((cdir / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return None, f"unreadable (meta.json: {type(e).__name__})"
    if not isinstance(meta, dict) or meta.get("names") != names or len(meta.get("frames", [])) != len(names):
        return None, "inconsistent (meta.json does not list these files)"
    if not rows.is_file():
        return None, "incomplete (rows.npy missing)"
    if meta.get("rows_size") != rows.stat().st_size:
        return None, f"truncated (rows.npy has {rows.stat().st_size} bytes, meta.json says {meta.get('rows_size')})"
    if meta.get("rows_checksum") != sampled_checksum(rows):
        return None, "corrupt (rows.npy checksum differs from meta.json)"
    return meta, ""


@contextlib.contextmanager
def _staged_npy(path: Path, shape: tuple[int, ...]):
    """An ``open_memmap`` on a temporary sibling of ``path``, renamed onto it only on success
    (the memmap needs a real file name, so :func:`evaluators.core.io.atomic_open` cannot be used)."""
    with atomic_path(path, ".tmp.npy") as tmp:  # unique name, umask mode (mkstemp made it 0600)
        arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
        yield arr
        arr.flush()
        del arr


@contextlib.contextmanager
def _in_memory(shape: tuple[int, ...]):
    yield np.zeros(shape, np.float32)


def _split_arrays(rows: np.ndarray, idx: np.ndarray, tag: str, lean: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(data [n, 3, T, 25, 2], valid_frames [n])`` of ``rows[idx]``; a memmap view when ``lean``."""
    if not lean:
        data = rows_to_ctvm(np.asarray(rows[idx]))
        return data, count_valid_frames(data)
    path = Path(rows.filename).parent / f"split-{tag}.npy"
    if not path.exists():
        with _staged_npy(path, (len(idx),) + rows.shape[1:]) as out:
            for s in range(0, len(idx), 2048):
                out[s:s + 2048] = rows[idx[s:s + 2048]]
    sub = np.load(path, mmap_mode="r")
    valid = np.concatenate([count_valid_frames(rows_to_ctvm(np.asarray(sub[s:s + 2048])))
                            for s in range(0, len(sub), 2048)]) if len(sub) else np.zeros(0, np.int64)
    n, t, _ = sub.shape
    # the same reshape/transpose MAMP's feeder applies to its mmap'ed npz: a view, no copy
    return sub.reshape(n, t, 2, 25, 3).transpose(0, 4, 1, 3, 2), valid


def splits_from_rows(rows: np.ndarray, names: list[str], rule: str, num_classes: int,
                     where: str, max_per_split: int | None = None,
                     in_memory_max: int = 20000) -> dict[str, SkeletonSplit]:
    """Official split of the cached rows. Splits larger than ``in_memory_max`` samples stay on disk."""
    labels = np.array([parse_name(n)["action"] - 1 for n in names], np.int64)
    check_labels(labels, num_classes, where)
    out = {}
    for split, idx in split_indices(names, rule).items():
        if max_per_split and len(idx) > max_per_split:  # evenly spaced, deterministic (smoke runs)
            idx = idx[np.linspace(0, len(idx) - 1, max_per_split).round().astype(np.int64)]
        lean = isinstance(rows, np.memmap) and len(idx) > in_memory_max
        data, valid = _split_arrays(rows, idx, f"{rule}-{split}-{max_per_split}", lean)
        out[split] = SkeletonSplit(data, labels[idx], [names[i] for i in idx], valid)
    return out


def load_ntu_like(cfg: dict, *, rule: str, num_classes: int, ntu60_only: bool,
                  single_actor: str, source: str = "real", root: Path | None = None,
                  info: dict[str, Any] | None = None) -> SkeletonDataset:
    """A :class:`SkeletonDataset` from ``cfg`` (root of ``.skeleton`` files, or ``npz``)."""
    name = cfg.get("name", rule)
    benchmark = rule.split("_")[-1]
    max_per = cfg.get("max_samples_per_split")
    if cfg.get("npz"):
        p = Path(cfg["npz"])
        if not p.exists():
            raise DatasetError(f"npz for dataset {name!r} not found", p)
        arrays = read_npz(p, num_classes)

        def from_npz() -> dict[str, SkeletonSplit]:
            out = {}
            for s, (x, y) in arrays.items():
                check_labels(y, num_classes, str(p))
                idx = np.arange(len(y))
                if max_per and len(idx) > max_per:
                    idx = idx[np.linspace(0, len(idx) - 1, max_per).round().astype(np.int64)]
                # the npz holds no sample names; MAMP's feeder names them train_0, test_0, ...
                out[s] = SkeletonSplit.from_arrays(rows_to_ctvm(np.asarray(x[idx])), y[idx],
                                                   [f"{s}_{i}" for i in idx])
            return out

        return SkeletonDataset(name, source=source, benchmark=benchmark, num_classes=num_classes,
                               splits=from_npz, root=str(p), info=info, feeder_defaults=cfg.get("feeder"))
    root = root if root is not None else resolve_root(cfg)
    files = find_skeleton_files(root)
    if not files:
        raise DatasetError(f"no SsssCcccPpppRrrrAaaa.skeleton files under the root of dataset {name!r}", root)
    skip = missing_names(root, cfg)
    files = {n: p for n, p in files.items() if n not in skip and (not ntu60_only or in_ntu60(n))}
    if cfg.get("sample_list"):
        files = _restrict(files, Path(cfg["sample_list"]))
    if not files:
        raise DatasetError(f"no usable samples for {name!r} after the missing-skeleton filter", root)

    def make() -> dict[str, SkeletonSplit]:
        rows, names, _ = build_arrays(files, max_frames=int(cfg.get("max_frames", MAX_FRAMES)),
                                      single_actor=cfg.get("single_actor", single_actor),
                                      use_cache=bool(cfg.get("cache", True)))
        return splits_from_rows(rows, names, rule, num_classes, str(root), max_per,
                                int(cfg.get("in_memory_max_samples", 20000)))

    return SkeletonDataset(name, source=source, benchmark=benchmark, num_classes=num_classes,
                           splits=make, root=str(root), info={"skipped_missing": len(skip), **(info or {})},
                           feeder_defaults=cfg.get("feeder"))


def _restrict(files: dict[str, Path], list_path: Path) -> dict[str, Path]:
    """Keep the samples a list file names (one per line); a name with no file is an error."""
    if not list_path.exists():
        raise DatasetError("sample list not found", list_path)
    wanted = [ln.strip() for ln in list_path.read_text().splitlines() if ln.strip()]
    unknown = [n for n in wanted if n not in files]
    if unknown:
        raise DatasetError(f"sample list names {len(unknown)} samples with no .skeleton file "
                           f"(first: {unknown[0]})", list_path)
    return {n: files[n] for n in sorted(set(wanted))}
