"""Atomic file writing: nothing half-written is ever left at the destination path.

Everything the suite persists (dataset caches, checkpoints, run records, generated
leaderboards, synthetic datasets) goes through these helpers: write to a temporary
file in the same directory, fsync, then ``os.replace`` onto the final name.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary sibling of ``path`` for writing; rename onto ``path`` on success only."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


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
