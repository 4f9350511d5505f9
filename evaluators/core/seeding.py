"""Seeding that makes a CPU run bit-for-bit repeatable, and RNG state capture for checkpoints."""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int, deterministic: bool | None = None) -> None:
    """Seed python, numpy and torch (all devices); make torch pick deterministic kernels.

    ``deterministic`` defaults to True without CUDA (every CPU op then has one result for one
    input). On CUDA it is opt-in because it needs ``CUBLAS_WORKSPACE_CONFIG`` and costs speed;
    ops without a deterministic kernel only warn (``warn_only``) instead of failing the run.
    """
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic is None:
        deterministic = not torch.cuda.is_available()
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def numerics_fingerprint() -> dict[str, Any]:
    """What, besides the seed and the inputs, changes the weights a CPU training run ends with:
    the torch build, the intra-op thread count (it sets the reduction order of CPU kernels: the
    same seed trained at 1 and at 2 threads ends at different weights) and the CPU kernel ISA torch
    dispatches to. Part of the cache key of every trained-and-cached model, so a model trained
    under one of them is never reused under another. Not in it: the CPU vendor, whose kernels round
    differently at the same ISA (:mod:`evaluators.core.kernel_numerics`). The key is recorded with the
    model, and adding the kernel id to it would change every published key, which only a republish
    from the publishing machine can do; the id goes into the cache entry's file name instead
    (:func:`evaluators.datasets.cache.trained_entry`)."""
    return {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def get_rng_state() -> dict[str, Any]:
    """Snapshot of the python, numpy, torch CPU and CUDA generators (picklable)."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore a snapshot taken by :func:`get_rng_state`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@contextmanager
def rng_neutral() -> Iterator[None]:
    """Run the block without touching the global python / numpy / torch generators.

    For loading frozen pretrained parts (text encoders, parsers) lazily, inside a training step:
    the first import of their libraries draws from python's ``random``, so without this a run that
    resumes from a checkpoint (and loads them again at a later step, in a fresh process) would
    continue from other generator states than the uninterrupted run, and not end bit-identical to it.
    """
    state = get_rng_state()
    try:
        yield
    finally:
        set_rng_state(state)
