"""evaluators/core/threads.py: OpenMP defaults for a shared CPU, and their overrides."""

from __future__ import annotations

import os

import pytest

from evaluators.core.threads import auto_threads, configure


def test_defaults_fill_only_unset_variables():
    env = {"OMP_NUM_THREADS": "3"}
    out = configure(env)
    assert env["OMP_WAIT_POLICY"] == "PASSIVE" and env["OMP_NUM_THREADS"] == "3"  # the user's value kept
    assert out == {"OMP_WAIT_POLICY": "PASSIVE", "MKL_NUM_THREADS": env["MKL_NUM_THREADS"]}
    # the default does not depend on the machine's load (seeded runs must not change with it)
    assert int(env["MKL_NUM_THREADS"]) == len(os.sched_getaffinity(0))


def test_auto_threads_within_the_affinity_mask():
    assert 1 <= auto_threads() <= len(os.sched_getaffinity(0))


def test_overrides():
    env = {"MOTIONREPRO_THREADS": "5"}
    configure(env)
    assert env["OMP_NUM_THREADS"] == "5" and env["MKL_NUM_THREADS"] == "5"
    env = {"MOTIONREPRO_THREADS": "auto"}
    configure(env)
    assert 1 <= int(env["OMP_NUM_THREADS"]) <= len(os.sched_getaffinity(0))
    env = {"MOTIONREPRO_THREADS": "off"}
    assert configure(env) == {} and "OMP_WAIT_POLICY" not in env
    with pytest.raises(ValueError, match="MOTIONREPRO_THREADS"):
        configure({"MOTIONREPRO_THREADS": "many"})
