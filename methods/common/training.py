"""The shared training loop: seeded data order, atomic checkpoints with automatic resume,
a progress bar, and gradient averaging across ``torchrun`` processes.

Usage (every method)::

    state = train(modules={"model": net}, optimizer=opt, dataset=ds, batch_size=64,
                  total_steps=10_000, step_fn=step_fn, ckpt_dir=workdir / "vae", seed=seed)

``step_fn(batch, step) -> (loss, logs)`` runs the forward pass on this rank's part of the
global batch and returns a scalar loss that is a MEAN over the batch's samples (plus a dict
of floats to show/log). The loop does ``backward``, the cross-rank gradient average,
optional clipping, ``optimizer.step()`` and ``lr_scheduler.step()`` (once per step).

Data order. Epoch ``e`` visits ``randperm(len(dataset))`` drawn from a generator seeded with
``seed + e`` (identical on every rank). The permutation is cut into global batches of
``batch_size`` (last partial batch dropped, as ``drop_last=True``); rank ``r`` of ``W`` takes
its contiguous slice of each global batch. One process with batch B and W processes with the
same B therefore see exactly the same samples per step.

Gradient averaging (DDP-equivalent). After ``backward`` each rank scales its gradients by
``n_local / n_global`` and they are summed with ``all_reduce``: because the loss is a
per-sample mean, the result is exactly the gradient of the mean over the global batch,
which is what DistributedDataParallel computes. Doing it explicitly (instead of wrapping the
modules in DDP) works with any ``step_fn`` structure (several forwards, several modules,
frozen parts) and with parameters that receive no gradient in a step (``None`` on every
rank stays ``None``, so optimizers skip them as in one process). Parameters and buffers are
broadcast from rank 0 at the start, and buffers (e.g. BatchNorm statistics) before every
step, as DDP's ``broadcast_buffers=True`` does.

Checkpoints. ``ckpt_dir/last.pt`` holds the modules, optimizer, scheduler, step, loss
history, the python/numpy/torch RNG states of every rank, and the state of every generator
the dataset owns (:func:`dataset_generators`: e.g. the caption/crop ``random.Random`` of the
text-motion dataset, the clip-shift RNG of the action dataset); it is written atomically
(temp file + rename, :func:`evaluators.core.io.atomic_torch_save`) every ``ckpt_every`` steps and
at the end, after the previous one has been renamed to ``prev.pt``. When it exists,
:func:`train` resumes from it, so a killed run re-run with the same arguments ends with
bit-identical weights (CPU) to an uninterrupted one. A truncated or unreadable ``last.pt``
is named in one warning line and the run resumes from ``prev.pt`` instead. Checkpoints are
read with ``weights_only=True`` (:mod:`evaluators.core.safe_load`). The data order needs no saved
generator: it is a pure function of ``(seed, epoch)``.

Curves. With a ``ckpt_dir``, rank 0 writes the stage's training curves there (TensorBoard events in
``tb/``, ``scalars.csv``, ``loss.png``; :mod:`methods.common.curves`): loss and the ``step_fn`` logs,
learning rate, gradient norm, samples/s and the ``state.val`` metrics an ``on_step`` hook sets, one
point per optimizer step, continued without duplicates on resume. ``$MOTIONREPRO_CURVES=0`` turns
them off; they never change a number.
"""

from __future__ import annotations

import logging
import numbers
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, default_collate
from tqdm.auto import tqdm

from evaluators.core import distributed as D
from evaluators.core.seeding import seed_everything
from methods.common.curves import grad_norm, open_curves, step_scalars
from methods.common.train_checkpoint import (
    CKPT_NAME,
    TrainState,
    _load,
    _save,
    dataset_generators,
    find_resume_checkpoint,
)

__all__ = ["TrainState", "train", "seed_everything", "epoch_permutation", "global_batches", "local_slice",
           "average_gradients", "dataset_generators", "find_resume_checkpoint",
           "TrainingInterrupted", "STOP_ENV"]

log = logging.getLogger(__name__)

STOP_ENV = "MOTIONREPRO_STOP_AFTER"


class TrainingInterrupted(RuntimeError):
    """Raised by the ``$MOTIONREPRO_STOP_AFTER`` test hook after the checkpoint of the stop step is written."""


def _stop_hook(desc: str) -> int | None:
    """``$MOTIONREPRO_STOP_AFTER`` = ``STEP`` or ``DESC:STEP`` (DESC a substring of the loop's ``desc``):
    the step at which this loop simulates a kill (tests of resume through a method's whole ``fit``)."""
    raw = os.environ.get(STOP_ENV, "").strip()
    if not raw:
        return None
    name, _, step = raw.rpartition(":")
    if name and name not in desc:
        return None
    try:
        return int(step)
    except ValueError:
        raise ValueError(f"${STOP_ENV}={raw!r}: expected STEP or DESC:STEP") from None


def stage_steps(steps: Any, from_epochs: Callable[[], int], where: str) -> int:
    """A training stage's optimizer steps: the config's ``steps`` when set, else ``from_epochs()``
    (the stage's epochs times its steps per epoch, as each method counts them).

    An unset budget is ``null``: a ``steps`` of 0 is refused like a negative or fractional one (the
    runner's config check refuses it too, ``evaluators/core/validate.py``), so that it can never pass
    for "unset" and silently train the whole epoch budget. ``where`` names the key in the error."""
    if steps is None:
        return int(from_epochs())
    whole = isinstance(steps, numbers.Integral) or (isinstance(steps, numbers.Real) and float(steps).is_integer())
    if isinstance(steps, bool) or not whole or steps < 1:
        raise ValueError(f"{where} must be a whole number >= 1 (or null for the epoch budget), got {steps!r}")
    return int(steps)


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The sample order of ``epoch``: ``randperm(n)`` from a generator seeded ``seed + epoch``."""
    g = torch.Generator().manual_seed(int(seed) + int(epoch))
    return torch.randperm(n, generator=g)


def global_batches(n: int, batch_size: int, seed: int, epoch: int) -> list[torch.Tensor]:
    """The global batches (index tensors) of one epoch, last partial batch dropped.

    If the dataset is smaller than one batch the whole permutation is the only batch.
    """
    perm = epoch_permutation(n, seed, epoch)
    if n < batch_size:
        return [perm]
    return [perm[i * batch_size:(i + 1) * batch_size] for i in range(n // batch_size)]


def local_slice(batch_idx: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """Rank ``rank``'s contiguous slice of a global batch (sizes differ by at most one)."""
    start, stop = D.shard_bounds(len(batch_idx), world, rank)
    return batch_idx[start:stop]


def _trainable(modules: dict[str, nn.Module], optimizer: torch.optim.Optimizer) -> list[nn.Parameter]:
    """Parameters whose gradients are averaged: the modules' trainable ones plus any other
    tensor the optimizer updates (deduplicated, in a fixed order identical on every rank)."""
    seen: set[int] = set()
    out = []
    extra = [p for g in optimizer.param_groups for p in g["params"]]
    for p in [*(q for name in sorted(modules) for q in modules[name].parameters()), *extra]:
        if p.requires_grad and id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


def average_gradients(params: Sequence[nn.Parameter], weight: float) -> None:
    """``grad <- sum_r weight_r * grad_r`` over ranks; grads that are None everywhere stay None.

    ``weight`` is this rank's ``n_local / n_global`` (see the module docstring).
    """
    if D.world_size() == 1:
        if weight != 1.0:
            for p in params:
                if p.grad is not None:
                    p.grad.mul_(weight)
        return
    dev = D.comm_device()
    has = torch.tensor([p.grad is not None for p in params], dtype=torch.float32, device=dev)
    has = D.all_reduce_sum(has)
    chunks = []
    for p, h in zip(params, has.tolist()):
        if h > 0:
            g = p.grad if p.grad is not None else torch.zeros_like(p)
            chunks.append(g.detach().reshape(-1).to(dev, torch.float32) * weight)
    if not chunks:
        return
    flat = D.all_reduce_sum(torch.cat(chunks))
    offset = 0
    for p, h in zip(params, has.tolist()):
        if h > 0:
            n = p.numel()
            g = flat[offset:offset + n].view_as(p).to(p.device, p.dtype)
            if p.grad is None:
                p.grad = g.clone()
            else:
                p.grad.copy_(g)
            offset += n


def _floats(logs: dict | None) -> dict[str, float]:
    """The numeric entries of a step's logs as floats (tensors averaged); others dropped."""
    out = {}
    for k, v in (logs or {}).items():
        if isinstance(v, torch.Tensor):
            out[k] = float(v.detach().float().mean().item())
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[k] = float(v)
    return out


def train(modules: dict[str, nn.Module], optimizer: torch.optim.Optimizer, dataset, batch_size: int,
          total_steps: int, step_fn: Callable[[Any, int], tuple[torch.Tensor, dict]], ckpt_dir=None, seed: int = 0,
          desc: str = "train", lr_scheduler=None, collate_fn=None, grad_clip: float | None = None,
          ckpt_every: int = 200, stop_after: int | None = None, num_workers: int = 0,
          on_step: Callable[[TrainState], None] | None = None, generators: dict | None = None) -> TrainState:
    """Train ``modules`` for ``total_steps`` optimizer steps (see the module docstring).

    ``dataset``: map-style (``__len__``/``__getitem__``). ``batch_size`` is the GLOBAL batch
    (summed over ranks). ``stop_after``: stop (with a checkpoint) once the global step reaches
    this value, as if the run had been interrupted there; tests use it. ``on_step(state)`` runs
    on every rank after each optimizer step, before that step's checkpoint (periodic validation,
    best-checkpoint selection); the metrics it puts in ``state.val`` are logged as ``val/<name>``
    curves of that step. ``generators``: random
    generators the method's ``step_fn`` draws from (``{"noise": torch.Generator}``), checkpointed
    and restored with the dataset's own. ``$MOTIONREPRO_STOP_AFTER``
    (``STEP`` or ``DESC:STEP``) does the same from outside a method's ``fit`` and then raises
    :class:`TrainingInterrupted`, so the later stages do not run (a kill without the slow kill). Returns the
    :class:`TrainState` (identical on every rank).
    """
    D.init_distributed()
    rank, world = D.rank(), D.world_size()
    n = len(dataset)
    if n == 0:
        raise ValueError(f"{desc}: empty training dataset")
    if batch_size < world:
        raise ValueError(f"{desc}: batch_size {batch_size} is smaller than the number of processes {world}")
    collate = collate_fn or default_collate
    params = _trainable(modules, optimizer)
    ckpt = Path(ckpt_dir) / CKPT_NAME if ckpt_dir is not None else None

    found = find_resume_checkpoint(ckpt.parent) if ckpt is not None else None
    if found is not None:
        state = _load(found[0], found[1], modules, optimizer, lr_scheduler, seed, batch_size, dataset, generators)
        log.info("%s: resumed from %s at step %d", desc, found[0], state.step)
    else:
        state = TrainState()
        seed_everything(seed + 1000 * rank)  # distinct per-rank noise; rank 0 == single process
    for m in modules.values():  # same starting point everywhere (DDP broadcasts at construction)
        D.broadcast_module(m)

    end = total_steps if stop_after is None else min(total_steps, stop_after)
    kill_at = _stop_hook(desc)
    if kill_at is not None and state.step < kill_at < end:
        end = kill_at
    else:
        kill_at = None
    batches_per_epoch = len(global_batches(n, batch_size, seed, 0))
    t0 = time.perf_counter()
    # in a log file (not a terminal) refresh rarely, so logs stay readable
    bar = tqdm(total=total_steps, initial=state.step, desc=desc, disable=not D.is_main(), dynamic_ncols=True,
               mininterval=1.0 if sys.stderr.isatty() else 30.0)
    samples, t_rate = 0, time.perf_counter()
    curves = open_curves(ckpt.parent if ckpt is not None else None, state.step) if state.step < end else None
    t_step, lrs, gnorm = time.perf_counter(), [], None
    finished = False
    try:
        while state.step < end:
            epoch, first = divmod(state.step, batches_per_epoch)
            todo = global_batches(n, batch_size, seed, epoch)[first:first + (end - state.step)]
            local = [local_slice(b, rank, world).tolist() for b in todo]
            weights = [len(li) / len(b) for li, b in zip(local, todo)]
            if num_workers > 0:  # worker seeds come from this generator, not from the global RNG
                loader = DataLoader(dataset, batch_sampler=local, num_workers=num_workers, collate_fn=collate,
                                    generator=torch.Generator().manual_seed(seed + epoch))
                it = iter(loader)
            else:
                it = (collate([dataset[i] for i in li]) for li in local)
            for batch, w, gb in zip(it, weights, todo):
                for m in modules.values():
                    m.train()
                    if world > 1:
                        D.broadcast_module(m, buffers_only=True)
                optimizer.zero_grad(set_to_none=True)
                loss, logs = step_fn(batch, state.step)
                if not torch.isfinite(loss.detach()).all():
                    raise FloatingPointError(f"{desc}: non-finite loss {loss.item()} at step {state.step}")
                loss.backward()
                average_gradients(params, w)
                if curves is not None:  # the rate this step uses, read before the scheduler moves it
                    lrs = [float(g["lr"]) for g in optimizer.param_groups]
                if grad_clip is not None:
                    gnorm = torch.nn.utils.clip_grad_norm_(params, grad_clip)
                elif curves is not None:
                    gnorm = grad_norm(params)
                optimizer.step()
                if lr_scheduler is not None:
                    lr_scheduler.step()
                state.step += 1
                gl = D.all_reduce_sum(loss.detach().float().reshape(1) * w).item() if world > 1 else loss.item()
                state.history.append(gl)
                state.logs = {"loss": gl, **_floats(logs)}
                samples += len(gb)
                bar.update(1)
                now = time.perf_counter()
                if now - t_rate >= 1.0 or state.step == end:
                    bar.set_postfix(loss=f"{gl:.4g}", samples_s=f"{samples / max(now - t_rate, 1e-9):.1f}")
                    samples, t_rate = 0, now
                state.val = {}
                if on_step is not None:
                    on_step(state)
                if curves is not None:
                    curves.log(state.step, step_scalars(state.logs, lrs, gnorm, len(gb) / max(now - t_step, 1e-9),
                                                        state.val))
                if ckpt is not None and (state.step % ckpt_every == 0 or state.step == end):
                    if curves is not None:  # curves up to the checkpoint's step are on disk before it
                        curves.flush()
                    _save(ckpt, modules, optimizer, lr_scheduler, state, seed, batch_size, dataset, generators)
                t_step = time.perf_counter()
        finished = True
    finally:
        bar.close()
        if curves is not None:
            curves.close(draw=finished)
    state.wall_s = time.perf_counter() - t0
    if kill_at is not None:
        raise TrainingInterrupted(f"{desc}: stopped at step {state.step} by ${STOP_ENV} (checkpoint written)")
    return state
