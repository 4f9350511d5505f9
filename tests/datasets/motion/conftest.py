"""Fixtures for the text-to-motion / action dataset tests: small synthetic sets, one per session."""

from __future__ import annotations

import pytest

from tests._model_cache import using_cache

SMALL_T2M = {"name": "synth_t2m", "n_train": 8, "n_val": 3, "n_test": 4, "min_frames": 40, "max_frames": 90,
             "subclip_prob": 0.5, "seed": 3}
SMALL_ACTION = {"name": "synth_action", "clips_per_class": 4, "test_fraction": 0.25, "seed": 1}


@pytest.fixture(scope="session")
def synth_t2m(tmp_path_factory):
    from evaluators.datasets import load_dataset

    with using_cache(tmp_path_factory.mktemp("t2m_cache")):
        return load_dataset(dict(SMALL_T2M))


@pytest.fixture(scope="session")
def synth_action(tmp_path_factory):
    from evaluators.datasets import load_dataset

    with using_cache(tmp_path_factory.mktemp("act_cache")):
        return load_dataset(dict(SMALL_ACTION))
