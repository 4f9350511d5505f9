"""Containment of paths built from data: a dataset file never makes the suite read outside its root.

Split files, caption ids, COCO ``file_name``s, MPII ``image`` names and the like are data, and
a loader joins them onto a folder of the dataset. :func:`resolve_inside` is the one place that
join happens: an absolute id, an id whose ``..`` climbs out of the folder, and (unless allowed)
an id that resolves through a symlink to somewhere outside the folder's real location are all
refused with one :class:`DatasetError` naming the file, the line and the id.

A dataset root that is itself a *symlink farm* (every file a link into another disk) is
legitimate; opt in with the environment variable ``MOTIONREPRO_ALLOW_SYMLINKS=1`` (README
"Safety"). The lexical checks (absolute ids, ``..`` escapes) hold even then. Only symlinks
*inside* the folder are affected: the folder itself may be a link, since containment is
checked against its real location.
"""

from __future__ import annotations

import ntpath
import os
import posixpath
from pathlib import Path

from evaluators.core.errors import DatasetError

#: ``MOTIONREPRO_ALLOW_SYMLINKS=1``: symlinks inside a dataset folder may point anywhere
ALLOW_SYMLINKS_ENV = "MOTIONREPRO_ALLOW_SYMLINKS"


def symlinks_allowed() -> bool:
    """Whether the user opted in to symlink farms (``MOTIONREPRO_ALLOW_SYMLINKS`` set to 1/true/yes)."""
    return os.environ.get(ALLOW_SYMLINKS_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _where(source: str | os.PathLike, line: int | None) -> str:
    return f"{source}:{line}" if line is not None else str(source)


def resolve_inside(root: str | os.PathLike, rel: str | os.PathLike, *, source: str | os.PathLike,
                   line: int | None = None, allow_symlinks: bool | None = None) -> Path:
    """``root / rel``, refused with a :class:`DatasetError` unless it stays inside ``root``.

    ``rel``: a relative path taken from a data file (``source``, line ``line`` when it has lines).
    Refused: an absolute ``rel`` (POSIX ``/x`` or a Windows drive/UNC path), a ``rel`` whose ``..``
    components climb above ``root``, and, unless ``allow_symlinks`` (default: the
    ``MOTIONREPRO_ALLOW_SYMLINKS`` environment variable), a path whose real location (all symlinks
    followed, ``root``'s own included) is not under ``root``'s real location. The file need not
    exist (the caller reports a missing file itself). Returns ``root / rel`` with ``.`` and inner
    ``..`` removed, symlinks kept, so error messages downstream show the user's own path.
    """
    text = os.fspath(rel)
    where = _where(source, line)
    if not text or "\x00" in text:
        raise DatasetError(f"{where}: empty or NUL-containing name {text!r}", path=source)
    if posixpath.isabs(text) or ntpath.isabs(text) or ntpath.splitdrive(text)[0]:
        raise DatasetError(f"{where}: {text!r} is an absolute path; names in a dataset file must be relative to {root}", path=source)
    parts: list[str] = []
    for part in text.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise DatasetError(f"{where}: {text!r} points outside the dataset folder {root}", path=source)
            parts.pop()
        else:
            parts.append(part)
    if not parts:
        raise DatasetError(f"{where}: {text!r} names the dataset folder itself, not a file in it", path=source)
    path = (root if isinstance(root, Path) else Path(root)).joinpath("/".join(parts))  # parses only the id
    if allow_symlinks is None:
        allow_symlinks = symlinks_allowed()
    if not allow_symlinks:
        # below root, only a link can lead elsewhere: one lstat per component, realpath only on a link
        # (a split file names ~30k ids; realpath of each would cost seconds on every load)
        probe = os.fspath(root)
        for part in parts:
            probe = os.path.join(probe, part)
            if os.path.islink(probe):
                break
        else:
            return path
        real_root = os.path.realpath(root)
        real = os.path.realpath(path)
        if os.path.commonpath([real_root, real]) != real_root:
            raise DatasetError(f"{where}: {text!r} resolves through a symlink to {real}, outside the dataset "
                               f"folder {root} (set {ALLOW_SYMLINKS_ENV}=1 for a folder of symlinks you trust)",
                               path=source)
    return path
