"""Fixtures for the skeleton dataset tests: one synthetic NTU set generated per session."""

from __future__ import annotations

import pytest

from tests.datasets.skeleton.helpers import CacheEnv


@pytest.fixture(scope="session")
def synth(tmp_path_factory):
    """The default (smoke) synth_ntu dataset, generated once into a temporary cache."""
    from evaluators.datasets import load_dataset

    cache = tmp_path_factory.mktemp("skel_cache")
    with CacheEnv(cache):
        ds = load_dataset({"name": "synth_ntu"})
        ds.split("train"), ds.split("test")  # materialise (the arrays cache goes to `cache` too)
    ds.cache_dir = cache
    return ds


@pytest.fixture
def cache_env(tmp_path):
    """A fresh cache root for one test."""
    with CacheEnv(tmp_path / "cache"):
        yield tmp_path / "cache"
