"""Rendered plots kept by what they show: a plot whose inputs, plotting code and matplotlib version
are those of one drawn before is copied from the cache, not drawn again.

Every run regenerates its leaderboards, plots included, from the published records and its own,
and most of its plots show records the run did not touch (a MoMask run leaves the pose plots as
they were). Drawing them was most of a regeneration's cost (measured from the published records:
2.9 CPU-s drawn, matplotlib's import included, 0.4 copied). Agg renders one figure to the same
bytes every time, so the copy is the file drawing would write (``tests/leaderboards/test_plot_cache.py``
compares them).
Entries live under ``cache_root()/plots/<key>.png``, written to a temporary name and renamed, so
concurrent runs share them safely; a cache that cannot be written only costs the drawing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Callable
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from evaluators.core.io import atomic_open
from evaluators.core.validate import ConfigError
from evaluators.datasets.cache import cache_root

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
# the modules whose code decides a plot's pixels besides its inputs: layout, labels, colours
DRAWING_CODE = ("plots.py", "style.py", "plot_cache.py")


@cache
def _drawing_version() -> str:
    h = hashlib.sha256(f"matplotlib {metadata.version('matplotlib')}".encode())
    for name in DRAWING_CODE:
        h.update((HERE / name).read_bytes())
    return h.hexdigest()


def plot_key(inputs: Any) -> str:
    """sha256 (32 hex) of the JSON of ``inputs`` (floats at full precision) and the drawing code."""
    blob = json.dumps({"inputs": inputs, "drawing": _drawing_version()}, sort_keys=True, default=repr)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def cached_plot(path: Path, inputs: Any, draw: Callable[[Path], Path]) -> Path:
    """``path`` holding the plot of ``inputs``: copied from the cache when drawn before, else
    ``draw(path)`` (which writes it) and kept in the cache."""
    path = Path(path)
    try:
        entry = cache_root() / "plots" / f"{plot_key(inputs)}.png"
    except ConfigError as e:  # $MOTIONREPRO_CACHE is not a folder: drawn, as without a cache
        log.debug("plots not cached: %s", e)
        return draw(path)
    if entry.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(entry, "rb") as src, atomic_open(path, "wb") as dst:
            shutil.copyfileobj(src, dst)
        return path
    draw(path)
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "rb") as src, atomic_open(entry, "wb") as dst:
            shutil.copyfileobj(src, dst)
    except OSError as e:  # a read-only or full cache: the plot is written, only the next one is drawn again
        log.debug("plot not cached (%s): %s", entry, e)
    return path
