"""Where generated synthetic datasets and preprocessing caches live.

``$MOTIONREPRO_CACHE`` (default ``<repo>/.cache``, git-ignored). Entries are keyed by a
hash of their sources and options (:func:`cache_key`) and written atomically, so a
killed run never leaves a half-written cache behind.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def cache_root() -> Path:
    return Path(os.environ.get("MOTIONREPRO_CACHE", REPO / ".cache"))


def cache_key(*parts: Any) -> str:
    """Stable short hash of JSON-able parts (options, source file names/sizes/mtimes)."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
