"""The suite's cache of trained tiny models and generated datasets, shared by every test that needs one.

Training the synth_t2m evaluator, the smoke HGM3 or a synthetic dataset once per suite run (and
not at all when the code has not changed since the last run) is most of what keeps the suite
short. Sharing must never hand a test a stale model, so the cache folder is keyed by
:func:`code_version`, a hash of every file under ``evaluators/``, ``methods/`` and ``configs/``:
any edit there starts a fresh folder. Inside it, entries keep their own content keys (a trained
evaluator's key hashes its hyperparameters, its training data, the torch version and the thread
count, and its file name adds the machine's kernel id; a dataset's its options), and every entry is written to a temporary name and renamed.
``./reproduce.sh test`` runs one pytest worker per core, all sharing the folder: a fixture that
fills an entry holds that entry's file lock (:func:`building`), so a second worker that needs it
waits and then loads it instead of training it a second time.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import torch

from evaluators.datasets.cache import cache_root, entry_lock

REPO = Path(__file__).resolve().parents[1]
CODE_DIRS = ("evaluators", "methods", "configs")
STALE_AFTER_S = 7 * 24 * 3600  # ours: folders of code versions unused for a week are removed
# The thread count the published pipeline-check records were made at (the demo's default, the cores of
# the 2-core machine that ran it). A trained evaluator's cache key holds the thread count, so the smoke
# evaluator the in-process tests share is trained at this count: the published-records rerun
# (tests/leaderboards/test_published_records_reproduce.py) then loads it instead of training its own.
PUBLISHED_THREADS = 2


def code_version(root: Path = REPO) -> str:
    """sha256 (16 hex) of the path and bytes of every file under :data:`CODE_DIRS` (caches skipped)."""
    h = hashlib.sha256()
    for d in CODE_DIRS:
        for p in sorted((root / d).rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts:
                h.update(p.relative_to(root).as_posix().encode() + b"\0")
                h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()[:16]


def model_cache_dir() -> Path:
    """``cache_root()/tests-<code_version>``, created; touched, so :func:`prune` keeps it."""
    name = f"tests-{code_version()}"
    # a pytest that a test starts inherits $MOTIONREPRO_CACHE, which the session already pointed at
    # this folder (tests/conftest.py): it shares it instead of nesting a second one inside
    root = cache_root() if cache_root().name == name else cache_root() / name
    root.mkdir(parents=True, exist_ok=True)
    os.utime(root)
    return root


def prune(keep: Path) -> None:
    """Remove the ``tests-*`` folders of other code versions that no run touched for a week."""
    now = time.time()
    for old in keep.parent.glob("tests-*"):
        with contextlib.suppress(OSError):
            if old != keep and old.is_dir() and now - old.stat().st_mtime > STALE_AFTER_S:
                shutil.rmtree(old)


@contextlib.contextmanager
def using_cache(path: Path) -> Iterator[Path]:
    """Point ``$MOTIONREPRO_CACHE`` at ``path`` for the ``with`` block (restored after)."""
    old = os.environ.get("MOTIONREPRO_CACHE")
    os.environ["MOTIONREPRO_CACHE"] = str(path)
    try:
        yield path
    finally:
        if old is None:
            os.environ.pop("MOTIONREPRO_CACHE", None)
        else:
            os.environ["MOTIONREPRO_CACHE"] = old


@contextlib.contextmanager
def building(root: Path, name: str) -> Iterator[Path]:
    """:func:`using_cache` ``root`` while holding the lock ``root/<name>.lock`` (an OS file lock: the
    kernel drops it if the holder dies). Of two pytest workers that build the same entries, the
    second waits for the first and then loads what it wrote."""
    with entry_lock(root / name), using_cache(root):
        yield root


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[int]:
    """torch's intra-op thread count set to ``n`` for the ``with`` block (restored after)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)


def _finished(rel: Path) -> bool:
    """Not a lock file nor a staging folder / temporary file that a build is still writing."""
    return not rel.name.endswith(".lock") and not any(p.startswith(".") and ".tmp" in p for p in rel.parts)


def seed_cache(dest: Path, source: Path) -> Path:
    """Fill ``dest`` (a test's private ``$MOTIONREPRO_CACHE``) with the finished entries of the model
    cache ``source``: hard links (a copy across file systems), so a subprocess that must not share the
    session's folder, to show what it writes, loads the evaluators and datasets instead of building
    them again. Entries are replaced by renames, never written in place, so the links stay intact."""
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if not path.is_file() or not _finished(rel):
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, dest / rel)
        except OSError:
            shutil.copy2(path, dest / rel)
    return dest
