"""Source templates of ``python -m methods new`` (``methods/scaffold.py``): one toy per capability.

Placeholders ``__NAME__`` (registry name) and ``__CLASS__`` are filled in by the scaffold. The
toys read every setting from their YAML (``cfg["key"]``): a default lives in the config only.
Each toy is the smallest model that trains through ``methods.common.training.train`` (seeded
order, atomic checkpoints, resume, DDP) and serves its task's protocols; it is a starting point,
not a baseline.
"""

T2M_METHOD = '''"""__CLASS__: a toy text-to-motion generator (scaffolded by ``python -m methods new``).

A linear map from a hashed bag of caption words to one (normalised) pose, repeated over the
requested length: enough to exercise training, checkpoints, resume, DDP and every protocol of
``task = "text2motion"``. Replace ``_Net`` and ``generate`` with the paper's model.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from methods.base import Method
from methods.common.training import train
from methods.registry import register_method


class _Net(nn.Module):
    """Bag of hashed words -> one normalised pose; keeps the data's feature statistics as buffers."""

    def __init__(self, buckets: int, nfeats: int) -> None:
        super().__init__()
        self.linear = nn.Linear(buckets, nfeats)
        self.register_buffer("mean", torch.zeros(nfeats))
        self.register_buffer("std", torch.ones(nfeats))

    def forward(self, bow: torch.Tensor) -> torch.Tensor:
        return self.linear(bow)


@register_method("__NAME__")
class __CLASS__(Method):
    """MotionGenerator: ``generate(captions, lengths) -> raw features [B, T_max, D]``."""

    task = "text2motion"
    main_stage = "train"  # train_batch() reads train.batch_size
    # no iterative sampler: default_steps stays None and the step sweep is (None,) (methods/base.py)

    def __init__(self, cfg: dict | None = None, **kw) -> None:
        super().__init__(cfg, **kw)
        torch.manual_seed(self.seed)
        self.buckets = int(self.cfg["buckets"])
        self.net = _Net(self.buckets, int(self.cfg["nfeats"])).to(self.device)

    def components(self) -> dict[str, nn.Module]:
        return {"net": self.net}

    def set_normalization(self, mean, std) -> None:
        """Feature statistics of the training data (raw = normalised * std + mean)."""
        self.net.mean.copy_(torch.as_tensor(np.asarray(mean, np.float32)))
        self.net.std.copy_(torch.as_tensor(np.asarray(std, np.float32)))

    def _bow(self, captions: Sequence[str] | None, n: int) -> torch.Tensor:
        x = torch.zeros(n, self.buckets)
        for i, cap in enumerate(captions or [""] * n):
            for word in str(cap).lower().split():
                x[i, zlib.crc32(word.encode()) % self.buckets] += 1.0
        return x.to(self.device)

    def fit(self, dataset) -> None:
        """Regress each training motion's mean (normalised) pose from its caption."""
        mean, std = np.asarray(dataset.mean, np.float32), np.asarray(dataset.std, np.float32)
        if len(mean) != self.net.mean.numel():  # the dataset's feature width (263 HumanML3D, 251 KIT)
            self.net = _Net(self.buckets, len(mean)).to(self.device)
        self.set_normalization(mean, std)
        tcfg = self.cfg["train"]
        opt = torch.optim.Adam(self.net.parameters(), lr=float(tcfg["lr"]))

        def step_fn(batch, step):
            motion = (batch["motion"].to(self.device) - self.net.mean) / self.net.std
            valid = (torch.arange(motion.shape[1], device=self.device)[None] < batch["length"].to(self.device)[:, None])
            target = (motion * valid[..., None]).sum(1) / valid.sum(1, keepdim=True).clamp(min=1)
            loss = ((self.net(self._bow(batch["caption"], len(motion))) - target) ** 2).mean()
            return loss, {}

        ckpt = self.workdir / "train" if self.workdir is not None else None  # resume after a kill
        train({"net": self.net}, opt, dataset.torch_dataset("train", normalise=False),
              batch_size=int(tcfg["batch_size"]), total_steps=int(tcfg["steps"]), step_fn=step_fn,
              ckpt_dir=ckpt, seed=self.seed, desc="__NAME__", collate_fn=dataset.collate,
              ckpt_every=int(tcfg["ckpt_every"]))

    @torch.inference_mode()
    def generate(self, conditions: Sequence[str] | None, lengths: Sequence[int],
                 steps: int | None = None) -> torch.Tensor:
        pose = self.net(self._bow(conditions, len(lengths))) * self.net.std + self.net.mean
        out = pose[:, None, :].repeat(1, max(lengths), 1)
        out[torch.arange(max(lengths), device=out.device)[None] >= torch.tensor(list(lengths), device=out.device)[:, None]] = 0
        return out.float().cpu()

    def train_step_example(self, batch: int):
        """One optimiser step on random data (benchmarks time it for samples/s)."""
        opt = torch.optim.Adam(self.net.parameters(), lr=1e-3)
        x = torch.randn(batch, self.buckets, device=self.device)
        y = torch.randn(batch, self.net.mean.numel(), device=self.device)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = ((self.net(x) - y) ** 2).mean()
            loss.backward()
            opt.step()

        return step
'''


SKELETON_METHOD = '''"""__CLASS__: a toy skeleton representation learner (scaffolded by ``python -m methods new``).

Per-joint tokens: a linear map of each joint's coordinates averaged over 4-frame patches, trained
to reconstruct them (an auto-encoder). Enough to exercise pretraining, checkpoints, resume, DDP,
the linear / semi-supervised protocols (``encode``) and reconstruction (``reconstruct``).
Replace ``_Tokens`` with the paper's encoder.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from methods.base import Method
from methods.common.training import train
from methods.registry import register_method

PATCH = 4  # frames per token


class _Tokens(nn.Module):
    """``[B, 3, T, V, M]`` -> tokens ``[B, M, T // PATCH, V, D]`` and back."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.enc, self.dec = nn.Linear(3, dim), nn.Linear(dim, 3)

    def patches(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, v, m = x.shape
        x = x[:, :, : t - t % PATCH].reshape(b, c, t // PATCH, PATCH, v, m).mean(3)
        return x.permute(0, 4, 2, 3, 1)  # [B, M, TP, V, 3]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.enc(self.patches(x))


@register_method("__NAME__")
class __CLASS__(Method):
    """RepresentationLearner + Reconstructor on ``[B, 3, T, 25, 2]`` skeletons."""

    task = "skeleton_ssl"
    main_stage = "pretrain"  # train_batch() reads pretrain.batch_size
    # no iterative sampler: default_steps stays None and the step sweep is (None,) (methods/base.py)

    def __init__(self, cfg: dict | None = None, **kw) -> None:
        super().__init__(cfg, **kw)
        torch.manual_seed(self.seed)
        self.window = int(self.cfg["window"])
        self.net = _Tokens(int(self.cfg["dim"])).to(self.device)

    def components(self) -> dict[str, nn.Module]:
        return {"net": self.net}

    def _loss(self, x: torch.Tensor) -> torch.Tensor:
        target = self.net.patches(x)
        return F.mse_loss(self.net.dec(self.net.enc(target)), target)

    def pretrain(self, dataset) -> None:
        p = self.cfg["pretrain"]
        opt = torch.optim.Adam(self.net.parameters(), lr=float(p["lr"]))
        ckpt = self.workdir / "pretrain" if self.workdir is not None else None  # resume after a kill
        train({"net": self.net}, opt, dataset.feeder("train", train=True, window=self.window),
              batch_size=int(p["batch_size"]), total_steps=int(p["steps"]),
              step_fn=lambda batch, step: (self._loss(batch[0].to(self.device)), {}),
              ckpt_dir=ckpt, seed=self.seed, desc="__NAME__", ckpt_every=int(p["ckpt_every"]))

    @torch.inference_mode()
    def encode(self, skeletons: torch.Tensor, pooling: str = "joint") -> torch.Tensor:
        tok = self.net(skeletons.to(self.device).float())  # [B, M, TP, V, D]
        if pooling == "tokens":
            return tok
        if pooling == "joint":
            return tok.mean(dim=(1, 2)).reshape(tok.shape[0], -1)
        if pooling == "mean":
            return tok.mean(dim=(1, 2, 3))
        raise ValueError(f"__NAME__: pooling must be joint, mean or tokens, got {pooling!r}")

    @torch.inference_mode()
    def reconstruct(self, x: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        """Auto-encoded input at the token rate, repeated back to the input's frames."""
        out = self.net.dec(self.net(x.to(self.device).float())).permute(0, 4, 2, 3, 1)  # [B, 3, TP, V, M]
        out = out.repeat_interleave(PATCH, dim=2)
        return F.pad(out, (0, 0, 0, 0, 0, x.shape[2] - out.shape[2])).cpu()

    def train_step_example(self, batch: int):
        """One optimiser step on random skeletons (benchmarks time it for samples/s)."""
        opt = torch.optim.Adam(self.net.parameters(), lr=1e-3)
        x = torch.randn(batch, 3, self.window, 25, 2, device=self.device)

        def step():
            opt.zero_grad(set_to_none=True)
            self._loss(x).backward()
            opt.step()

        return step
'''
