"""Shared fixtures: the real sample files, seeded temp dirs, the skip-to-failure switch.

The real dataset samples live outside the project (their licences forbid copying them
in). They are found through ``$MOTIONREPRO_SHARED_DATA`` (default ``../shared/data``
next to the checkout). Outside this workplace the tests that need them skip with a
reason; ``.ci/run`` sets ``MOTIONREPRO_REQUIRE_DATA=1`` so a missing sample fails
instead of silently skipping.
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _default_shared_data() -> Path:
    """``../shared/data`` beside the checkout; a clone made elsewhere in this workplace (e.g. a
    fresh clone under /tmp for a CI dry run) falls back to the workplace's ``/work/shared/data``."""
    for cand in (REPO.parent / "shared" / "data", Path("/work/shared/data")):
        if cand.exists():
            return cand
    return REPO.parent / "shared" / "data"


SHARED_DATA = Path(os.environ["MOTIONREPRO_SHARED_DATA"]) if os.environ.get("MOTIONREPRO_SHARED_DATA") \
    else _default_shared_data()
REQUIRE_DATA = os.environ.get("MOTIONREPRO_REQUIRE_DATA", "") not in ("", "0")


def need_shared(*parts: str) -> Path:
    """Path to a real sample under the shared data folder; skip (or fail under CI) if absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        msg = (f"real sample {path} not found (set MOTIONREPRO_SHARED_DATA to the folder holding "
               "the shared dataset samples)")
        if REQUIRE_DATA:
            pytest.fail(msg + " and MOTIONREPRO_REQUIRE_DATA=1 forbids skipping")
        pytest.skip(msg)
    return path


@pytest.fixture
def shared_data() -> Path:
    """Root of the real sample files (``../shared/data``)."""
    return need_shared()


@pytest.fixture(scope="session")
def model_cache() -> Path:
    """The session's cache of trained tiny models and generated datasets, keyed by the code version
    (``tests/_model_cache.py``): a test that trains what another one did loads it instead."""
    from tests._model_cache import model_cache_dir, prune

    root = model_cache_dir()
    prune(root)
    return root


@pytest.fixture(autouse=True)
def _fixed_seed():
    """Every test starts from the same global RNG state."""
    import random

    import numpy as np
    import torch

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    yield


def _reads_real_samples(item) -> bool:
    """The test takes the ``shared_data`` fixture or calls :func:`need_shared` itself."""
    if "shared_data" in getattr(item, "fixturenames", ()):
        return True
    fn = getattr(item, "function", None)
    try:
        return fn is not None and "need_shared(" in inspect.getsource(fn)
    except (OSError, TypeError):
        return False


def pytest_collection_modifyitems(config, items):
    """Tests that read the real samples get the ``data`` mark (``-m data`` / ``-m "not data"``);
    ``@pytest.mark.gpu`` tests skip, with the reason, on a machine without CUDA."""
    import torch

    for item in items:
        if _reads_real_samples(item):
            item.add_marker(pytest.mark.data)
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (run benchmarks/gpu_check.sh on a GPU machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
