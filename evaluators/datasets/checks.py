"""Checks every loader shares: array dtypes and values, integer labels, UTF-8 text, file vs folder.

Each raises :class:`DatasetError` naming the file and the field, so a loader rejects what is
wrong (a bool motion, a complex array losing its imaginary part, a label 3.7, NaN) instead of
converting it silently.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from evaluators.datasets.base import DatasetError

#: dtype kinds a numeric array may have: signed/unsigned integers and floats
NUMERIC_KINDS = "iuf"
_KIND_NAMES = {"b": "bool", "c": "complex", "U": "string", "S": "bytes", "O": "object", "V": "void/structured",
               "M": "datetime", "m": "timedelta"}


def numeric_array(arr, path: str | os.PathLike, field: str, *, finite: bool = True) -> np.ndarray:
    """``arr`` as an ndarray of a numeric dtype (bool, complex, string, object refused), NaN/inf refused."""
    a = np.asarray(arr) if not isinstance(arr, np.ndarray) else arr
    if a.dtype.kind not in NUMERIC_KINDS:
        raise DatasetError(f"{field}: {_KIND_NAMES.get(a.dtype.kind, a.dtype.kind)} array (dtype {a.dtype}), "
                           f"expected numbers", path=path)
    if finite and a.dtype.kind == "f" and not np.isfinite(a).all():
        raise DatasetError(f"{field}: contains NaN or inf", path=path)
    return a


def integer_labels(values, path: str | os.PathLike, field: str, low: int | None = None,
                   high: int | None = None) -> np.ndarray:
    """Labels as int64; a non-integral value (3.7) or one outside ``[low, high]`` is an error."""
    a = numeric_array(np.asarray(values), path, field)
    if a.dtype.kind == "f":
        if not np.all(a == np.round(a)):
            bad = a[a != np.round(a)][0]
            raise DatasetError(f"{field}: label {bad!r} is not an integer", path=path)
    a = a.astype(np.int64)
    if a.size and low is not None and a.min() < low:
        raise DatasetError(f"{field}: label {int(a.min())} below {low}", path=path)
    if a.size and high is not None and a.max() > high:
        raise DatasetError(f"{field}: label {int(a.max())} above {high}", path=path)
    return a


def read_utf8(path: str | os.PathLike, what: str = "text file") -> str:
    """A text file's content; a directory, a missing file or non-UTF-8 bytes are named errors."""
    path = Path(path)
    if path.is_dir():
        raise DatasetError(f"{what} is a directory, expected a file", path=path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"{what} missing", path=path) from None
    except OSError as e:
        raise DatasetError(f"{what} unreadable ({e.strerror})", path=path) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DatasetError(f"{what} is not UTF-8 (byte {e.start})", path=path) from None


def load_npy(path: str | os.PathLike, what: str = "array file") -> np.ndarray:
    """``np.load`` of one ``.npy`` (no pickles); a folder or a truncated file are named as such."""
    path = Path(path)
    if path.is_dir():
        raise DatasetError(f"{what} is a directory, expected a .npy file", path=path)
    if not path.is_file():
        raise DatasetError(f"{what} missing", path=path)
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as e:
        if "pickle" in str(e).lower():
            raise DatasetError(f"{what} holds pickled objects (refused)", path=path) from None
        raise DatasetError(f"{what} is truncated or corrupt ({e})", path=path) from None
    except (OSError, EOFError) as e:
        raise DatasetError(f"{what} is truncated or not a .npy file ({e})", path=path) from None


def json_numbers(value, path: str | os.PathLike, field: str, size: int | None = None) -> np.ndarray:
    """A JSON number or list of numbers as float64 (strings, nulls, bools refused; ``size`` checked)."""
    def ok(v) -> bool:
        if isinstance(v, list):
            return all(ok(x) for x in v)
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    if not ok(value):
        raise DatasetError(f"{field}: expected numbers, got {value!r:.80}", path=path)
    a = np.asarray(value, dtype=np.float64)
    if size is not None and a.size != size:
        raise DatasetError(f"{field}: expected {size} numbers, got {a.size}", path=path)
    if not np.isfinite(a).all():
        raise DatasetError(f"{field}: NaN/inf values", path=path)
    return a
