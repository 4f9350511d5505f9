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
history, and the python/numpy/torch RNG states of every rank; it is written atomically
(temp file + rename, :func:`evaluators.io.atomic_torch_save`) every ``ckpt_every`` steps and
at the end. When it exists, :func:`train` resumes from it, so a killed run re-run with the
same arguments ends with bit-identical weights (CPU) to an uninterrupted one. The data
order needs no saved generator: it is a pure function of ``(seed, epoch)``.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, default_collate
from tqdm.auto import tqdm

from evaluators.io import atomic_torch_save
from methods.common import distributed as D
from methods.common.seeding import get_rng_state, seed_everything, set_rng_state

__all__ = ["TrainState", "train", "seed_everything", "epoch_permutation", "global_batches", "local_slice",
           "average_gradients"]

log = logging.getLogger(__name__)

CKPT_NAME = "last.pt"
CKPT_VERSION = 1


@dataclass
class TrainState:
    """Where a training run stands: global step, last step's logs, loss per step (global mean)."""

    step: int = 0
    logs: dict[str, float] = field(default_factory=dict)
    history: list[float] = field(default_factory=list)
    resumed_from: int | None = None  # step of the checkpoint this call resumed from, if any
    wall_s: float = 0.0  # seconds spent in this call


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


def _save(path: Path, modules, optimizer, lr_scheduler, state: TrainState, seed: int, batch_size: int) -> None:
    rng = D.all_gather_object(get_rng_state())  # every rank's generators, in rank order
    if D.is_main():
        atomic_torch_save({
            "version": CKPT_VERSION,
            "step": state.step,
            "modules": {k: m.state_dict() for k, m in modules.items()},
            "optimizer": optimizer.state_dict(),
            "scheduler": lr_scheduler.state_dict() if lr_scheduler is not None else None,
            "history": list(state.history),
            "logs": dict(state.logs),
            "rng": rng,
            "seed": seed,
            "batch_size": batch_size,
            "world_size": D.world_size(),
        }, path)
    D.barrier()


def _load(path: Path, modules, optimizer, lr_scheduler, seed: int, batch_size: int) -> TrainState:
    # weights_only=False: the file is our own and holds numpy/python RNG states.
    ck = torch.load(path, map_location="cpu", weights_only=False)
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
    if len(rng) == D.world_size():
        set_rng_state(rng[D.rank()])
    else:  # a different process count: the model state is exact, per-rank randomness restarts
        log.warning("%s was written by %d processes, resuming with %d: reseeding RNGs", path, len(rng),
                    D.world_size())
        seed_everything(seed + 1000 * D.rank() + ck["step"])
    return TrainState(step=int(ck["step"]), logs=dict(ck.get("logs", {})), history=list(ck.get("history", [])),
                      resumed_from=int(ck["step"]))


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
          ckpt_every: int = 200, stop_after: int | None = None, num_workers: int = 0) -> TrainState:
    """Train ``modules`` for ``total_steps`` optimizer steps (see the module docstring).

    ``dataset``: map-style (``__len__``/``__getitem__``). ``batch_size`` is the GLOBAL batch
    (summed over ranks). ``stop_after``: stop (with a checkpoint) once the global step reaches
    this value, as if the run had been interrupted there; tests use it. Returns the
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

    if ckpt is not None and ckpt.exists():
        state = _load(ckpt, modules, optimizer, lr_scheduler, seed, batch_size)
        log.info("%s: resumed from %s at step %d", desc, ckpt, state.step)
    else:
        state = TrainState()
        seed_everything(seed + 1000 * rank)  # distinct per-rank noise; rank 0 == single process
    for m in modules.values():  # same starting point everywhere (DDP broadcasts at construction)
        D.broadcast_module(m)

    end = total_steps if stop_after is None else min(total_steps, stop_after)
    batches_per_epoch = len(global_batches(n, batch_size, seed, 0))
    t0 = time.perf_counter()
    # in a log file (not a terminal) refresh rarely, so logs stay readable
    bar = tqdm(total=total_steps, initial=state.step, desc=desc, disable=not D.is_main(), dynamic_ncols=True,
               mininterval=1.0 if sys.stderr.isatty() else 30.0)
    samples, t_rate = 0, time.perf_counter()
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
                if grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(params, grad_clip)
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
                if ckpt is not None and (state.step % ckpt_every == 0 or state.step == end):
                    _save(ckpt, modules, optimizer, lr_scheduler, state, seed, batch_size)
    finally:
        bar.close()
    state.wall_s = time.perf_counter() - t0
    return state
