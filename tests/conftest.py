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


@pytest.fixture(scope="session", autouse=True)
def _one_cache(model_cache):
    """Every test's default cache (``$MOTIONREPRO_CACHE``) is the model cache, for the whole session,
    and so is that of every subprocess a test starts (they inherit the environment): the smoke
    evaluators the protocol tests train at 1 thread, the synthetic datasets, are then built once per
    suite run, beside the entries the fixtures below build, instead of once in ``.cache`` and again in
    the model cache. A test that wants a cache of its own still sets the variable itself."""
    from tests._model_cache import using_cache

    with using_cache(model_cache):
        yield model_cache


@pytest.fixture(scope="session")
def smoke_t2m(model_cache):
    """``(dataset, evaluator)``: the smoke synth_t2m set and the smoke text2motion protocol's evaluator,
    the one the demo, the HGM3 end-to-end test, the sensitivity benchmark and the published-records
    rerun use. From the model cache, filled under its lock (one worker trains, the others wait and
    load), trained at ``PUBLISHED_THREADS`` threads so that the published-records rerun loads it too."""
    from evaluators.core.config import load_config
    from evaluators.datasets.base import load_dataset
    from evaluators.networks.t2m_train import train_evaluator
    from tests._model_cache import PUBLISHED_THREADS, building, torch_threads

    with building(model_cache, "synth_t2m-smoke"), torch_threads(PUBLISHED_THREADS):
        data = load_dataset(load_config("dataset", "synth_t2m", "smoke"))
        train = load_config("protocol", "text2motion", "smoke")["evaluator"]["train"]
        return data, train_evaluator(data, **train).eval()


@pytest.fixture(scope="session")
def smoke_synth_ntu(model_cache) -> Path:
    """The model cache, holding the smoke synth_ntu set: the linear-probe tests (in-process and in
    the subprocesses, which inherit the session's cache) read it there, and a test whose subprocesses
    need a private cache gets it copied in (:func:`tests._model_cache.seed_cache`) instead of
    generating it again."""
    from evaluators.core.config import load_config
    from evaluators.datasets.base import load_dataset
    from tests._model_cache import building

    with building(model_cache, "synth_ntu-smoke"):
        load_dataset(load_config("dataset", "synth_ntu", "smoke"))
    return model_cache


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


def _worker_threads(config) -> int | None:
    """In a pytest-xdist worker (``./reproduce.sh test`` runs one per core): its share of the cores,
    so that N workers running torch side by side do not oversubscribe the machine (two 2-thread
    processes on 2 cores spend their time slices spinning, evaluators/core/threads.py). None
    outside xdist (a pytest that a test starts inherits the worker's environment, not its role)."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        return None
    workers = int(workerinput["workercount"])
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, cores // workers)


def pytest_configure(config):
    """An xdist worker sets ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` to its share of the cores unless
    the user set them (before torch is imported, so OpenMP reads them at start-up; the subprocesses
    tests start inherit them). Tests that need a given thread count set it themselves, as before.

    It also drops xdist's ``PYTEST_XDIST_*`` variables from its environment (xdist itself reads the
    worker's role from ``config.workerinput``): a pytest that a test starts would inherit them and
    take itself for a worker, and pytest-benchmark then disables benchmarking (``--benchmark-only``
    stops with an error, ``--benchmark-json`` stays empty)."""
    n = _worker_threads(config)
    if n is None:
        return
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(key, str(n))
    for key in [k for k in os.environ if k.startswith("PYTEST_XDIST_")]:
        del os.environ[key]


def _slow_modules_first(items) -> None:
    """For ``--dist loadscope`` (``./reproduce.sh test``), which hands whole modules to the workers in
    collection order (so a module-scoped fixture is built once): the modules holding a slow test
    move to the front, module order and the order inside a module kept. The long parts then start
    at once and the many short modules fill the gaps at the end, instead of one long module
    starting last and running alone."""
    def module(item):
        return item.nodeid.split("::", 1)[0]

    slow = {module(i) for i in items if "slow" in i.keywords}
    items.sort(key=lambda i: module(i) not in slow)  # stable: False (slow) first


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

    if _worker_threads(config) is not None:
        _slow_modules_first(items)
    for item in items:
        if _reads_real_samples(item):
            item.add_marker(pytest.mark.data)
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (run benchmarks/gpu_check.sh on a GPU machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
