"""The value checks every loader and ``inspect`` share: dtypes, finiteness, ranges, ids, sizes.

Each raises :class:`DatasetError` naming the file and the field, so a loader rejects what is
wrong (a bool motion, a complex array losing its imaginary part, a label 3.7, NaN, a duplicate
id, a box outside its image, a header promising more bytes than the file holds) instead of
converting it silently or failing deep inside training. The loaders' ``inspect`` functions call
the same parsers, so ``python -m evaluators.datasets inspect`` and a run can never disagree.
"""

from __future__ import annotations

import os
import unicodedata
import zipfile
import zlib
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
    flat = a.reshape(-1)
    bad = np.flatnonzero(((flat < low) if low is not None else False) | ((flat > high) if high is not None else False))
    if len(bad):
        k = int(bad[0])
        allowed = f"{low if low is not None else '-inf'}..{high if high is not None else 'inf'}"
        raise DatasetError(f"{field}: label {int(flat[k])} at index {k} outside {allowed}", path=path)
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
    check_npy_size(path, what)
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


# -- sizes before allocation ----------------------------------------------------------------------
def _npy_header(fh, path, what: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, bytes of data the header promises) of the ``.npy`` stream at ``fh``'s start."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fh)
        if version == (1, 0):
            shape, _, dtype = fmt.read_array_header_1_0(fh)
        elif version == (2, 0):
            shape, _, dtype = fmt.read_array_header_2_0(fh)
        else:  # 3.0 (utf-8 field names) has no public reader
            shape, _, dtype = fmt._read_array_header(fh, version)
    except (ValueError, OSError, EOFError, SyntaxError) as e:
        raise DatasetError(f"{what}: not a valid .npy header ({e})", path=path) from None
    if dtype.hasobject:
        raise DatasetError(f"{what} holds pickled objects (refused)", path=path)
    count = 1
    for n in shape:
        count *= int(n)
    return tuple(int(n) for n in shape), dtype, count * dtype.itemsize


def check_npy_size(path: str | os.PathLike, what: str = "array file") -> tuple[int, ...]:
    """The shape a ``.npy`` header declares, after checking the file holds that many bytes.

    Read before ``np.load`` so that a header claiming 10^12 x 263 floats is refused in one line
    instead of numpy trying to allocate a petabyte.
    """
    path = Path(path)
    with open(path, "rb") as fh:
        shape, dtype, need = _npy_header(fh, path, what)
        have = os.fstat(fh.fileno()).st_size - fh.tell()
    if need > have:
        raise DatasetError(f"{what}: header declares shape {shape} {dtype} ({need} bytes) but the file holds "
                           f"only {have} bytes of data", path=path)
    return shape


def check_npz_sizes(path: str | os.PathLike, what: str = "npz file") -> dict[str, tuple[int, ...]]:
    """``{member: shape}`` of an ``.npz``, each member's header checked against its stored size."""
    path = Path(path)
    out = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if not info.filename.endswith(".npy"):
                    continue
                with zf.open(info) as fh:
                    shape, dtype, need = _npy_header(fh, path, f"{what} member {info.filename}")
                    have = info.file_size - fh.tell()
                if need > have:
                    raise DatasetError(f"{what} member {info.filename}: header declares shape {shape} {dtype} "
                                       f"({need} bytes) but the member holds only {have} bytes", path=path)
                out[info.filename[:-4]] = shape
    except (zipfile.BadZipFile, zlib.error, EOFError) as e:
        raise DatasetError(f"{what} is not a readable zip/npz ({e})", path=path) from None
    return out


# -- text, numbers, ids ---------------------------------------------------------------------------
#: ours: the longest caption of HumanML3D / KIT-ML is a few hundred characters; ten times that is
#: no description of a motion but a corrupt or hostile file
MAX_TEXT_CHARS = 2000


def check_text(text: str, path: str | os.PathLike, field: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    """A human-written text field: no control characters (NUL, escape...; tab allowed), bounded length."""
    if not isinstance(text, str):
        raise DatasetError(f"{field}: expected text, got {type(text).__name__} {text!r:.60}", path=path)
    if len(text) > max_chars:
        raise DatasetError(f"{field}: {len(text)} characters (at most {max_chars} expected)", path=path)
    for k, ch in enumerate(text):
        if ch != "\t" and unicodedata.category(ch) == "Cc":
            raise DatasetError(f"{field}: control character {ch!r} at position {k}", path=path)
    return text


def finite_number(value, path: str | os.PathLike, field: str, *, low: float | None = None,
                  high: float | None = None, above: float | None = None) -> float:
    """A JSON/pickle scalar as float: a number (not bool/str), finite, ``low <= v <= high``, ``v > above``."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DatasetError(f"{field}: expected a number, got {value!r:.60}", path=path)
    v = float(value)
    if not np.isfinite(v):
        raise DatasetError(f"{field}: {value!r} is not finite", path=path)
    if (low is not None and v < low) or (high is not None and v > high) or (above is not None and v <= above):
        rng = " and ".join(s for s in (f">= {low:g}" if low is not None else "", f"<= {high:g}" if high is not None
                                       else "", f"> {above:g}" if above is not None else "") if s)
        raise DatasetError(f"{field}: {value!r} must be {rng}", path=path)
    return v


def integer_id(value, path: str | os.PathLike, field: str) -> int:
    """An id that must be an integer (COCO ``id`` / ``image_id`` / ``category_id``)."""
    if isinstance(value, np.integer):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise DatasetError(f"{field}: expected an integer id, got {value!r:.60}", path=path)
    return value


def unique_ids(ids, path: str | os.PathLike, what: str) -> None:
    """Refuse the first id that occurs twice (``what`` names the kind: "annotation id", "split id")."""
    seen = set()
    for k, i in enumerate(ids):
        if i in seen:
            raise DatasetError(f"duplicate {what} {i!r} (entry {k + 1})", path=path)
        seen.add(i)


# -- image-space geometry (COCO, MPII, detections) ------------------------------------------------
#: ours: no camera image of these datasets is 100 000 pixels wide; a coordinate beyond this is corrupt
MAX_PIXELS = 1e5


def check_box(box, path: str | os.PathLike, field: str, image_wh: tuple[float, float] | None = None) -> np.ndarray:
    """An ``[x, y, w, h]`` box: 4 finite numbers, ``w, h > 0``, inside ``MAX_PIXELS`` and, when the image size
    is known, overlapping the image and no further than one image size outside it."""
    b = json_numbers(box, path, field, size=4)
    x, y, w, h = (float(v) for v in b)
    if w <= 0 or h <= 0:
        raise DatasetError(f"{field}: width/height must be > 0, got {w:g} x {h:g}", path=path)
    if max(abs(x), abs(y), abs(x + w), abs(y + h)) > MAX_PIXELS:
        raise DatasetError(f"{field}: {[x, y, w, h]} lies beyond {MAX_PIXELS:g} pixels", path=path)
    if image_wh is not None:
        iw, ih = image_wh
        if x >= iw or y >= ih or x + w <= 0 or y + h <= 0:
            raise DatasetError(f"{field}: {[x, y, w, h]} does not overlap the {iw:g} x {ih:g} image", path=path)
        if x < -iw or y < -ih or x + w > 2 * iw or y + h > 2 * ih:
            raise DatasetError(f"{field}: {[x, y, w, h]} reaches more than one image size outside the "
                               f"{iw:g} x {ih:g} image", path=path)
    return b


def check_points(xy: np.ndarray, labelled: np.ndarray, path: str | os.PathLike, field: str,
                 lo: tuple[float, float], hi: tuple[float, float]) -> None:
    """Every labelled point of ``xy`` ``[K, 2]`` lies in the rectangle ``lo``..``hi`` (a margin around the
    image or the person); the first one outside is named with its index."""
    xy = np.asarray(xy, dtype=np.float64)
    out = labelled.astype(bool) & ((xy < np.asarray(lo)) | (xy > np.asarray(hi))).any(axis=1)
    if out.any():
        k = int(np.flatnonzero(out)[0])
        raise DatasetError(f"{field}: labelled point {k} at {xy[k].tolist()} lies outside "
                           f"[{lo[0]:g}, {hi[0]:g}] x [{lo[1]:g}, {hi[1]:g}]", path=path)
