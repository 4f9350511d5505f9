"""Process-group helpers for ``torchrun`` (gloo on the CPU, nccl on GPUs) and sharded evaluation.

Outside ``torchrun`` every function degrades to the single-process answer (rank 0 of 1), so
method and protocol code calls them unconditionally.

Evaluation under DDP counts every sample exactly once: :func:`shard_indices` gives each rank a
contiguous, disjoint slice of ``range(n)`` (no padding duplicates, unlike
``DistributedSampler``), and :func:`gather_concat` puts the per-rank outputs back in the
original order on every rank.
"""

from __future__ import annotations

import datetime
import logging
import os

import numpy as np
import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


def is_initialized() -> bool:
    return dist.is_available() and dist.is_initialized()


def init_distributed(timeout_s: float = 1800.0) -> tuple[int, int]:
    """Join the process group described by the torchrun environment; returns ``(rank, world_size)``.

    Does nothing (and returns ``(0, 1)``) when ``WORLD_SIZE`` is unset or 1. Idempotent. Under
    the submitit SLURM launcher with several tasks, the torchrun variables are derived from
    the SLURM environment first.
    Backend: nccl when CUDA is available (each process takes GPU ``LOCAL_RANK``), gloo otherwise.
    """
    if is_initialized():
        return rank(), world_size()
    if "WORLD_SIZE" not in os.environ and os.environ.get("SUBMITIT_EXECUTOR") == "slurm" \
            and int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        # hydra/launcher=slurm with tasks_per_node > 1: each submitit task is one rank
        from submitit.helpers import TorchDistributedEnvironment  # lazy: submitit is needed only on a SLURM launch

        TorchDistributedEnvironment().export()
    ws = int(os.environ.get("WORLD_SIZE", "1"))
    if ws <= 1:
        return 0, 1
    use_cuda = torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    backend = "nccl" if use_cuda else "gloo"
    dist.init_process_group(backend=backend, init_method="env://",
                            timeout=datetime.timedelta(seconds=timeout_s))
    log.info("joined process group: rank %d of %d (%s)", rank(), world_size(), backend)
    return rank(), world_size()


def shutdown_distributed() -> None:
    """Leave the process group this process joined (a no-op outside ``torchrun``).

    A gloo process that exits with its group still open can abort in the C++ destructor of the
    group's threads ("terminate called without an active exception", SIGABRT); torchrun then
    reports the run as failed although every record was written.
    """
    if is_initialized():
        dist.destroy_process_group()


def rank() -> int:
    return dist.get_rank() if is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if is_initialized() else 1


def is_main() -> bool:
    return rank() == 0


def barrier() -> None:
    if is_initialized():
        dist.barrier()


def comm_device() -> torch.device:
    """Device collective tensors must live on (CUDA for nccl, CPU for gloo)."""
    if is_initialized() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def shard_bounds(n: int, num_shards: int | None = None, shard: int | None = None) -> tuple[int, int]:
    """``[start, stop)`` of this rank's contiguous shard of ``range(n)`` (sizes differ by at most 1)."""
    w = world_size() if num_shards is None else num_shards
    r = rank() if shard is None else shard
    base, extra = divmod(int(n), w)
    start = r * base + min(r, extra)
    return start, start + base + (1 if r < extra else 0)


def shard_indices(n: int, num_shards: int | None = None, shard: int | None = None) -> np.ndarray:
    """This rank's sample indices: a contiguous slice, every index on exactly one rank."""
    start, stop = shard_bounds(n, num_shards, shard)
    return np.arange(start, stop, dtype=np.int64)


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum of ``t`` over ranks (returns a new tensor on ``t``'s device)."""
    if not is_initialized():
        return t.clone()
    buf = t.detach().to(comm_device()).clone()
    dist.all_reduce(buf, op=dist.ReduceOp.SUM)
    return buf.to(t.device)


def gather_concat(x: torch.Tensor | np.ndarray) -> torch.Tensor | np.ndarray:
    """Concatenate every rank's ``x`` along dim 0 in rank order (shards may differ in length).

    With :func:`shard_indices` the result is in the original sample order. Returns the same
    type (tensor on ``x``'s device, or numpy array) on every rank.
    """
    as_numpy = isinstance(x, np.ndarray)
    t = torch.from_numpy(np.ascontiguousarray(x)) if as_numpy else x
    if not is_initialized() or world_size() == 1:
        return x
    dev = comm_device()
    local = t.detach().to(dev).contiguous()
    sizes = [torch.zeros(1, dtype=torch.long, device=dev) for _ in range(world_size())]
    dist.all_gather(sizes, torch.tensor([local.shape[0]], dtype=torch.long, device=dev))
    counts = [int(s.item()) for s in sizes]
    pad = max(counts)
    if local.shape[0] < pad:  # all_gather needs equal shapes: pad, then trim
        filler = torch.zeros((pad - local.shape[0], *local.shape[1:]), dtype=local.dtype, device=dev)
        local = torch.cat([local, filler])
    bufs = [torch.empty_like(local) for _ in counts]
    dist.all_gather(bufs, local)
    out = torch.cat([b[:c] for b, c in zip(bufs, counts)])
    return out.cpu().numpy() if as_numpy else out.to(t.device)


def all_gather_object(obj):
    """Every rank's picklable ``obj`` as a list in rank order (``[obj]`` outside torchrun)."""
    if not is_initialized():
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_module(module: torch.nn.Module, src: int = 0, buffers_only: bool = False) -> None:
    """Copy ``src``'s parameters (and buffers) to every rank, as DDP does at construction."""
    if not is_initialized():
        return
    tensors = list(module.buffers()) if buffers_only else [*module.parameters(), *module.buffers()]
    dev = comm_device()
    with torch.no_grad():
        for t in tensors:
            buf = t.detach().to(dev).clone()
            dist.broadcast(buf, src=src)
            t.copy_(buf.to(t.device))
