"""One process at a time in a run folder: :func:`hold_run_folder`.

Two runs writing the same folder (checkpoints ``last.pt``/``prev.pt``, samples, records) would
resume from each other's half-finished state and overwrite each other's files. A run therefore
holds an OS file lock (``filelock.FileLock``, ``flock``/``LockFileEx`` underneath: released by
the kernel when the process dies, so a ``kill -9`` leaves no stale lock) on ``<folder>/.lock``
for as long as it works there. A second process either waits for the folder or stops at once
with one line naming the folder and, when known, the pid holding it (read from
``<folder>/.lock.owner``, which the holder writes after acquiring and removes on release).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from evaluators.core.io import atomic_write_text

LOCK_NAME = ".lock"
OWNER_NAME = ".lock.owner"


class RunFolderBusy(RuntimeError):
    """Another process holds the run folder. The message is one line naming the folder (and the pid)."""

    def __init__(self, folder: Path, pid: int | None, waited: float | None) -> None:
        self.folder, self.pid = folder, pid
        who = f"another process (pid {pid})" if pid is not None else "another process"
        after = f" after waiting {waited:g} s" if waited else ""
        super().__init__(f"run folder {folder} is in use by {who}{after}; wait for it to finish or choose "
                         f"another folder")


def owner_pid(folder: str | os.PathLike) -> int | None:
    """The pid recorded by the process holding ``folder`` (None if unknown or not recorded)."""
    with contextlib.suppress(OSError, ValueError):
        return int((Path(folder) / OWNER_NAME).read_text(encoding="ascii").split()[0])
    return None


def _timeout(wait: bool | float) -> float:
    """``filelock`` timeout: -1 waits forever, 0 tries once."""
    if wait is True:
        return -1
    if wait is False:
        return 0
    if isinstance(wait, int | float) and wait >= 0:
        return float(wait)
    raise ValueError(f"wait must be True, False or a number of seconds >= 0, got {wait!r}")


@contextlib.contextmanager
def hold_run_folder(path: str | os.PathLike, *, wait: bool | float) -> Iterator[Path]:
    """Hold the run folder ``path`` (created if absent) for the duration of the ``with`` block.

    ``wait``: ``False`` raises :class:`RunFolderBusy` at once when another process holds it,
    ``True`` waits as long as it takes, a number waits at most that many seconds, then raises.
    Yields the folder. The lock is not re-entrant across processes and is dropped by the kernel
    if this process dies.
    """
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    timeout = _timeout(wait)
    lock = FileLock(str(folder / LOCK_NAME), timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise RunFolderBusy(folder, owner_pid(folder), timeout if timeout > 0 else None) from None
    owner = folder / OWNER_NAME
    try:
        atomic_write_text(owner, f"{os.getpid()}\n")
        yield folder
    finally:
        if owner_pid(folder) == os.getpid():
            with contextlib.suppress(FileNotFoundError):
                owner.unlink()
        lock.release()
