"""Checkpoints of the shared training loop (:func:`methods.common.training.train`).

``ckpt_dir/last.pt`` holds the modules, optimizer, scheduler, step, loss history, the
python/numpy/torch RNG states of every rank and the state of every generator the dataset owns
(:func:`dataset_generators`); it is written atomically after the previous one is renamed to
``prev.pt``, and a damaged ``last.pt`` falls back to ``prev.pt`` (:func:`find_resume_checkpoint`).
See the module docstring of :mod:`methods.common.training` for the resume guarantees.
"""

from __future__ import annotations

import logging
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from evaluators.core import distributed as D
from evaluators.core.io import DiskFull, atomic_torch_save, disk_full_message
from evaluators.core.safe_load import CheckpointError, load_checkpoint_file
from evaluators.core.seeding import get_rng_state, seed_everything, set_rng_state

log = logging.getLogger("methods.common.training")  # one logger name for the loop and its checkpoints

CKPT_NAME = "last.pt"
PREV_NAME = "prev.pt"
CKPT_VERSION = 2


@dataclass
class TrainState:
    """Where a training run stands: global step, last step's logs, loss per step (global mean)."""

    step: int = 0
    logs: dict[str, float] = field(default_factory=dict)
    history: list[float] = field(default_factory=list)
    resumed_from: int | None = None  # step of the checkpoint this call resumed from, if any
    wall_s: float = 0.0  # seconds spent in this call
    val: dict[str, float] = field(default_factory=dict)  # metrics an on_step hook measured at this step (curves)


def dataset_generators(dataset, depth: int = 2) -> dict[str, Any]:
    """Every random generator a dataset object holds, by attribute path (``"rng"``, ``"base.rng"``).

    Also numpy arrays a class names in ``resume_state_attrs`` (per-sample draw counters).

    ``random.Random``, ``numpy.random.Generator`` / ``RandomState`` and ``torch.Generator``
    attributes are found on the dataset and (``depth`` levels down) on the objects it wraps, so a
    method's dataset wrapper needs no code to have its sampling randomness checkpointed.
    """
    found: dict[str, Any] = {}
    seen: set[int] = set()

    def walk(obj, prefix: str, d: int) -> None:
        if id(obj) in seen or not hasattr(obj, "__dict__"):
            return
        seen.add(id(obj))
        counters = set(getattr(type(obj), "resume_state_attrs", ()))  # e.g. per-sample draw counters
        for k, v in sorted(vars(obj).items()):
            if isinstance(v, (random.Random, np.random.Generator, np.random.RandomState, torch.Generator)):
                found[prefix + k] = v
            elif k in counters and isinstance(v, np.ndarray):
                found[prefix + k] = v
            elif d > 0 and hasattr(v, "__dict__") and not isinstance(v, (nn.Module, torch.Tensor, type)) \
                    and not callable(v):
                walk(v, f"{prefix}{k}.", d - 1)

    walk(dataset, "", depth)
    return found


def _gen_state(g) -> Any:
    if isinstance(g, random.Random):
        v, internal, gauss = g.getstate()
        return {"kind": "random", "state": torch.tensor(internal, dtype=torch.int64), "version": v, "gauss": gauss}
    if isinstance(g, np.random.Generator):
        return {"kind": "numpy_generator", "state": g.bit_generator.state}
    if isinstance(g, np.random.RandomState):
        return {"kind": "numpy_randomstate", "state": g.get_state()}
    if isinstance(g, np.ndarray):
        return {"kind": "array", "state": torch.from_numpy(g.copy())}
    return {"kind": "torch", "state": g.get_state()}


def _set_gen_state(g, st: dict) -> None:
    if st["kind"] == "random":
        g.setstate((st["version"], tuple(int(x) for x in st["state"].tolist()), st["gauss"]))
    elif st["kind"] == "numpy_generator":
        g.bit_generator.state = st["state"]
    elif st["kind"] == "numpy_randomstate":
        g.set_state(st["state"])
    elif st["kind"] == "array":
        g[...] = st["state"].numpy()
    else:
        g.set_state(st["state"])


def _generators(dataset, extra: dict | None) -> dict[str, Any]:
    """The dataset's generators plus those a method passes to :func:`train` (``method.<name>``)."""
    out = dataset_generators(dataset)
    out.update({f"method.{k}": g for k, g in (extra or {}).items()})
    return out


def _save(path: Path, modules, optimizer, lr_scheduler, state: TrainState, seed: int, batch_size: int,
          dataset=None, generators: dict | None = None) -> None:
    rng = D.all_gather_object(get_rng_state())  # every rank's generators, in rank order
    gens = D.all_gather_object({k: _gen_state(g) for k, g in _generators(dataset, generators).items()})
    if D.is_main():
        payload = {
            "version": CKPT_VERSION,
            "step": state.step,
            "modules": {k: m.state_dict() for k, m in modules.items()},
            "optimizer": optimizer.state_dict(),
            "scheduler": lr_scheduler.state_dict() if lr_scheduler is not None else None,
            "history": list(state.history),
            "logs": dict(state.logs),
            "rng": rng,
            "dataset_rng": gens,
            "seed": seed,
            "batch_size": batch_size,
            "world_size": D.world_size(),
        }
        rotated = path.exists()
        if rotated:  # keep the previous checkpoint: a damaged last.pt falls back to it
            os.replace(path, path.with_name(PREV_NAME))
        try:
            atomic_torch_save(payload, path)
        except DiskFull as e:  # the disk filled: the previous checkpoint goes back to where resume looks first
            if rotated:
                os.replace(path.with_name(PREV_NAME), path)
            raise DiskFull(e.errno, disk_full_message(path, rotated)) from e
    D.barrier()


def find_resume_checkpoint(ckpt_dir: str | Path) -> tuple[Path, dict] | None:
    """The checkpoint to resume from and its contents: ``last.pt``, else (damaged or missing) ``prev.pt``.

    A damaged ``last.pt`` costs one warning line naming it; both damaged raises
    :class:`evaluators.core.safe_load.CheckpointError` naming both files. None when neither exists.
    """
    last, prev = Path(ckpt_dir) / CKPT_NAME, Path(ckpt_dir) / PREV_NAME
    errors = []
    for p in (last, prev):
        if not p.exists():
            continue
        try:
            ck = load_checkpoint_file(p, what="training checkpoint")
            if not isinstance(ck, dict) or "modules" not in ck or "step" not in ck:
                raise CheckpointError(f"training checkpoint {p}: not a training-loop checkpoint "
                                      f"(keys: {sorted(ck)[:6] if isinstance(ck, dict) else type(ck).__name__})")
        except CheckpointError as e:
            errors.append(str(e))
            if p == last:
                log.warning("%s; falling back to %s", e, prev.name if prev.exists() else "a fresh start")
            continue
        return p, ck
    if errors and prev.exists():
        raise CheckpointError("no usable checkpoint to resume from: " + "; ".join(errors))
    return None


def _load(path: Path, ck: dict, modules, optimizer, lr_scheduler, seed: int, batch_size: int,
          dataset=None, generators: dict | None = None) -> TrainState:
    if ck.get("seed") != seed or ck.get("batch_size") != batch_size:
        log.warning("%s was written with seed=%s batch_size=%s, resuming with seed=%s batch_size=%s",
                    path, ck.get("seed"), ck.get("batch_size"), seed, batch_size)
    missing = set(modules) - set(ck["modules"])
    if missing:
        raise KeyError(f"{path}: checkpoint lacks modules {sorted(missing)}")
    for k, m in modules.items():
        m.load_state_dict(ck["modules"][k])
    optimizer.load_state_dict(ck["optimizer"])
    if lr_scheduler is not None and ck.get("scheduler") is not None:
        lr_scheduler.load_state_dict(ck["scheduler"])
    rng = ck["rng"]
    gens = _generators(dataset, generators)
    saved_gens = ck.get("dataset_rng") or []
    if len(rng) == D.world_size():
        set_rng_state(rng[D.rank()])
        mine = saved_gens[D.rank()] if len(saved_gens) == D.world_size() else {}
        for k, g in gens.items():
            if k in mine:
                _set_gen_state(g, mine[k])
            else:
                log.warning("%s holds no state for dataset generator %r (older checkpoint?)", path, k)
    else:  # a different process count: the model state is exact, per-rank randomness restarts
        log.warning("%s was written by %d processes, resuming with %d: reseeding RNGs", path, len(rng),
                    D.world_size())
        seed_everything(seed + 1000 * D.rank() + ck["step"])
    return TrainState(step=int(ck["step"]), logs=dict(ck.get("logs", {})), history=list(ck.get("history", [])),
                      resumed_from=int(ck["step"]))
