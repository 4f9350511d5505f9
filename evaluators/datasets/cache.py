"""Where generated synthetic datasets and preprocessing caches live.

``$MOTIONREPRO_CACHE`` (default ``<repo>/.cache``, git-ignored). Entries are keyed by a
hash of their sources and options (:func:`cache_key`) and written atomically, so a
killed run never leaves a half-written cache behind.

A generated dataset folder also holds a manifest (:data:`MANIFEST`: every file's size and
sha256, :func:`write_manifest`, written last, inside the staging folder). On open,
:func:`valid_or_discard` checks it; a truncated, edited, incomplete or manifest-less folder is
removed with ONE warning line naming it and the caller rebuilds it, so a damaged cache never poisons a run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from filelock import FileLock

from evaluators.core.io import current_umask
from evaluators.core.kernel_numerics import torch_kernels_id
from evaluators.core.validate import ConfigError

REPO = Path(__file__).resolve().parents[2]
MANIFEST = ".cache-manifest.json"
log = logging.getLogger(__name__)


def cache_root() -> Path:
    """``$MOTIONREPRO_CACHE`` (default ``<repo>/.cache``); one that exists and is not a folder is a
    ConfigError naming the variable (instead of a raw NotADirectoryError deep in a loader)."""
    root = Path(os.environ.get("MOTIONREPRO_CACHE") or REPO / ".cache")
    if root.exists() and not root.is_dir():
        raise ConfigError(f"MOTIONREPRO_CACHE={root}: is not a folder; point it at a folder (or unset it)")
    return root


def cache_key(*parts: Any) -> str:
    """Stable short hash of JSON-able parts (options, source file names/sizes/mtimes)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def trained_entry(folder: str, key: str) -> Path:
    """Where a model trained under cache key ``key`` is kept: ``cache_root()/<folder>/<key>-<kernel id>.pt``.

    ``key`` names what a run chose (data, hyperparameters, torch, threads, ISA) and is recorded with
    the model. The kernel id (:func:`~evaluators.core.kernel_numerics.torch_kernels_id`) names how
    this machine's torch kernels round, which the key leaves out: two CPUs of different vendors at the
    same ISA train one key to different weights. In a cache folder they share, each then keeps and
    loads its own model, so a cache hit gives what training here would have given."""
    return cache_root() / folder / f"{key}-{torch_kernels_id()}.pt"


@contextmanager
def entry_lock(path: str | Path) -> Iterator[Path]:
    """Hold the OS file lock ``<path>.lock`` (its folder created) for the ``with`` block.

    Two processes that miss the same cache entry at once (two runs started together on a cluster,
    two pytest workers) would otherwise both build it: train-and-save under this lock, checking
    for the entry again once it is held, so the second waits and then loads what the first saved.
    ``flock`` underneath: the kernel drops the lock if its holder dies, so a killed build leaves
    no stale lock behind (the entry itself is written atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path.with_name(path.name + ".lock"))):
        yield path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)


def write_manifest(folder: str | Path) -> None:
    """Record every file's size and sha256 in ``folder/MANIFEST`` (call last, before the rename)."""
    folder = Path(folder)
    files = {str(p.relative_to(folder)): {"size": p.stat().st_size, "sha256": _sha256(p)} for p in _files(folder)}
    (folder / MANIFEST).write_text(json.dumps({"files": files}, sort_keys=True), encoding="utf-8")


def cache_problem(folder: str | Path) -> str | None:
    """Why ``folder`` is not a complete cache entry (None when every file matches its manifest)."""
    folder = Path(folder)
    try:
        files = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["files"]
        if not isinstance(files, dict):
            raise TypeError("files is not a mapping")
    except FileNotFoundError:
        return f"incomplete (no {MANIFEST})"
    except (OSError, ValueError, KeyError, TypeError) as e:
        return f"unreadable ({MANIFEST}: {type(e).__name__})"
    present = {str(p.relative_to(folder)) for p in _files(folder)}
    if present != set(files):
        missing, extra = sorted(set(files) - present), sorted(present - set(files))
        return f"inconsistent (missing {missing[:3]}, unlisted {extra[:3]})"
    for rel, want in sorted(files.items()):
        size = (folder / rel).stat().st_size
        if size != want.get("size"):
            return f"truncated ({rel} has {size} bytes, the manifest says {want.get('size')})"
        if _sha256(folder / rel) != want.get("sha256"):
            return f"corrupt ({rel} checksum differs from the manifest)"
    return None


def valid_or_discard(folder: str | Path, what: str) -> bool:
    """True when ``folder`` is a complete cache entry; a damaged one is removed (one warning line
    naming it) and False returned, so the caller rebuilds it. False when it does not exist."""
    folder = Path(folder)
    if not folder.exists():
        return False
    problem = cache_problem(folder)
    if problem is None:
        return True
    log.warning("%s cache %s is %s: rebuilding it", what, folder, problem)
    shutil.rmtree(folder, ignore_errors=True)
    return False


def build_staged(folder: str | Path, write: Callable[[Path], None]) -> Path:
    """Build the cache entry ``folder`` atomically: ``write(stage)`` fills a staging folder beside it,
    the manifest is added last and the stage is renamed into place, so a failed build leaves nothing
    behind. When another process finished first, its (valid) copy is kept."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        write(stage)
        write_manifest(stage)
        os.chmod(stage, 0o777 & ~current_umask())  # mkdtemp makes it private; give it mkdir's mode
        try:
            os.replace(stage, folder)
        except OSError:  # another process finished first: keep its copy
            if cache_problem(folder) is not None:
                raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return folder
