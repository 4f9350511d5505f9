"""A tiny regression trained with ``methods.common.training.train``: used in-process and as a script.

As a script (also under ``torchrun``) it trains, evaluates a sharded metric with
``shard_indices``/``gather_concat``, and rank 0 writes ``--out`` (a torch file) with the final
weights, the loss history, the metric and the sample-count bookkeeping.
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import TensorDataset

from evaluators.core import distributed as D
from evaluators.core.seeding import seed_everything
from methods.common.training import train

N_TRAIN, N_EVAL, DIM = 50, 11, 6


def make_data() -> tuple[TensorDataset, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1234)
    w = torch.randn(DIM, 1, generator=g)
    x = torch.randn(N_TRAIN + N_EVAL, DIM, generator=g)
    y = torch.tanh(x @ w) + 0.1 * torch.randn(N_TRAIN + N_EVAL, 1, generator=g)
    return TensorDataset(x[:N_TRAIN], y[:N_TRAIN]), x[N_TRAIN:], y[N_TRAIN:]


class JitterDataset:
    """The training set with a dataset-owned generator (like the caption/crop RNG of the text-motion
    dataset): each access draws a target jitter from ``self.rng``, so resume must restore it."""

    def __init__(self, base: TensorDataset, seed: int) -> None:
        self.base, self.rng = base, random.Random(seed)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int):
        x, y = self.base[i]
        return x, y + 0.05 * self.rng.gauss(0.0, 1.0)


class Toy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(DIM, 16), nn.Tanh(), nn.Linear(16, 1))
        self.unused = nn.Linear(3, 3)  # never receives a gradient: must stay untouched


def run(seed: int = 0, steps: int = 30, batch_size: int = 7, ckpt_dir: Path | None = None, noise: bool = True,
        hang_at: int | None = None, hang_marker: Path | None = None, ckpt_every: int = 5,
        stop_after: int | None = None, num_workers: int = 0, dataset_rng: bool = True) -> dict:
    """Train the toy and return its final state, history and the sharded eval metric.

    ``hang_at``: after that many steps, write ``hang_marker`` and block forever (a test then kills
    the process at a known step, instead of guessing one from sleeps on a loaded machine)."""
    seed_everything(seed)
    model = Toy()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
    ds, xe, ye = make_data()
    if noise and dataset_rng:  # worker processes would each copy the dataset generator
        ds = JitterDataset(ds, seed)

    def step_fn(batch, step):
        x, y = batch
        if noise:  # consumes the torch RNG: resume must restore it exactly
            x = x + 0.05 * torch.randn_like(x)
        if hang_at is not None and step == hang_at:
            hang_marker.write_text(str(step))
            while True:
                time.sleep(1)
        loss = ((model.net(x) - y) ** 2).mean()
        return loss, {"mse": loss.detach()}

    state = train({"model": model}, opt, ds, batch_size=batch_size, total_steps=steps, step_fn=step_fn,
                  ckpt_dir=ckpt_dir, seed=seed, desc="toy", lr_scheduler=sched, grad_clip=1.0,
                  ckpt_every=ckpt_every, stop_after=stop_after, num_workers=num_workers)
    # sharded evaluation: each rank scores its slice, gathered back in order
    idx = D.shard_indices(len(xe))
    with torch.no_grad():
        err_local = ((model.net(xe[idx]) - ye[idx]) ** 2).squeeze(1)
    err = D.gather_concat(err_local)
    seen = D.gather_concat(torch.as_tensor(idx))
    return {
        "weights": {k: v.clone() for k, v in model.state_dict().items()},
        "history": state.history, "step": state.step, "resumed_from": state.resumed_from,
        "metric": float(err.mean()), "eval_errors": err, "eval_indices": seen,
        "n_samples": {"expected": len(xe), "evaluated": int(err.shape[0])},
        "world_size": D.world_size(), "lr": opt.param_groups[0]["lr"],
    }


def wait_for_hang(proc, marker: Path, limit_s: float = 300.0) -> None:
    """Wait until a ``--hang-at`` process has written ``marker`` (it then blocks for ever). The
    limit only turns a broken script into a failure instead of a hang; no result depends on it."""
    deadline = time.monotonic() + limit_s
    while not marker.exists():
        if proc.poll() is not None:
            raise AssertionError(f"toy_train ended (exit {proc.returncode}) before hanging: "
                                 f"{proc.stderr.read().decode()[-2000:] if proc.stderr else ''}")
        if time.monotonic() > deadline:
            raise AssertionError(f"toy_train did not reach its --hang-at step within {limit_s:g} s")
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--ckpt-dir", type=Path, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=7)
    ap.add_argument("--ckpt-every", type=int, default=5)
    ap.add_argument("--hang-at", type=int, default=None, help="block forever after this many steps")
    ap.add_argument("--no-noise", action="store_true")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    D.init_distributed()
    res = run(seed=a.seed, steps=a.steps, batch_size=a.batch_size, ckpt_dir=a.ckpt_dir, noise=not a.no_noise,
              hang_at=a.hang_at, hang_marker=Path(f"{a.out}.hanging"), ckpt_every=a.ckpt_every)
    if D.is_main():
        from evaluators.core.io import atomic_torch_save

        atomic_torch_save(res, a.out)
    D.barrier()
    D.shutdown_distributed()


if __name__ == "__main__":
    main()
