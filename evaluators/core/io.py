"""Atomic file writing: nothing half-written is ever left at the destination path.

Everything the suite persists (dataset caches, checkpoints, run records, generated
leaderboards, synthetic datasets) goes through these helpers: write to a temporary
file in the same directory, fsync, then ``os.replace`` onto the final name.

Each temporary file has a name no other process or thread can pick (pid + random token,
created with ``O_EXCL``), and is created with mode ``0o666`` minus the umask, as ``open()``
would create the final file: ``tempfile.mkstemp`` would make every record, plot and
leaderboard ``-rw-------`` whatever the user's umask.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np


class DiskFull(OSError):
    """A write that ran out of disk space (or quota); the destination keeps its previous content."""

    def __str__(self) -> str:  # the sentence alone, not "[Errno 28] ..."
        return str(self.strerror)


def _disk_full(e: BaseException, path: Path) -> BaseException:
    """``e`` as a one-line :class:`DiskFull` naming the file when it is ENOSPC / EDQUOT, else ``e``."""
    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return DiskFull(e.errno, disk_full_message(path, path.exists()))
    return e


def disk_full_message(path: Path, kept: bool) -> str:
    """The one line a full disk gets: which folder's disk, which file, whether the old file survives."""
    return (f"no space left on the disk holding {path.parent} while writing {path.name} "
            f"({f'the previous {path.name} is kept' if kept else 'nothing was written'})")


_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def create_unique_sibling(path: str | os.PathLike, suffix: str = ".tmp") -> tuple[int, Path]:
    """Create a new empty file beside ``path`` under a name unique to this call; ``(fd, its path)``.

    The name is ``.<name>.<pid>-<random>.<suffix>`` (hidden, so globs over the folder skip it);
    ``O_EXCL`` guarantees no two callers share it. Mode ``0o666 & ~umask``, as a plain ``open()``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(6)}{suffix}")
        try:
            return os.open(tmp, _CREATE_FLAGS, 0o666), tmp
        except FileExistsError:  # 48 random bits: only a pathological folder gets here twice
            continue
    raise FileExistsError(f"could not create a unique temporary file beside {path}")


def current_umask() -> int:
    """The process umask (read from /proc where possible: ``os.umask`` can only be read by setting it)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """A unique temporary file name beside ``path`` for writers that need a name, not a handle
    (PIL/matplotlib animation writers, ``np.lib.format.open_memmap``); renamed onto ``path`` when
    the block succeeds, removed when it fails.

    ``suffix`` (default: ``path``'s own, e.g. ``.gif``) ends the temporary name, because such
    writers pick the file format from it. The file exists (empty, umask mode) when the block starts.
    """
    path = Path(path)
    fd, tmp = create_unique_sibling(path, (".tmp" + path.suffix) if suffix is None else suffix)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:  # durable before the rename, like atomic_open
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        full = _disk_full(e, path)
        if full is not e:
            raise full from e
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary sibling of ``path`` for writing; rename onto ``path`` on success only."""
    path = Path(path)
    fd, tmp = create_unique_sibling(path)
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        full = _disk_full(e, path)
        if full is not e:
            raise full from e
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def write_new_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` atomically under ``path``, or ``<stem>.1<suffix>``, ``.2``... when taken.

    The name is claimed with ``os.link`` from a finished temporary file, which fails when the name
    exists: two processes writing at the same moment get two files, and no reader sees a partial one.
    """
    path = Path(path)
    fd, tmp = create_unique_sibling(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        n, cand = 1, path
        while True:
            try:
                os.link(tmp, cand)
                return cand
            except FileExistsError:
                cand = path.with_name(f"{path.stem}.{n}{path.suffix}")
                n += 1
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` through a temporary file (checkpoints survive a kill mid-write)."""
    import torch  # lazy: records and leaderboards import core.io and must not pay torch's import

    with atomic_open(path, "wb") as fh:
        torch.save(obj, fh)


def atomic_np_save(path: str | os.PathLike, array: Any) -> None:
    with atomic_open(path, "wb") as fh:
        np.save(fh, array)
