"""A test-only method (``testing_only = True``: hidden from --help and the demo).

A linear auto-encoder trained with the shared loop: enough to drive the runner end to end
(train -> checkpoint -> protocol -> record) in a second.
"""

from __future__ import annotations

import torch
from torch import nn

from methods.base import Method
from methods.common.training import train
from methods.registry import register_method


@register_method("tinyrepro")
class TinyRepro(Method):
    """Representation learner: ``encode(x [B, D]) -> [B, D]`` after an MSE auto-encoding pretrain."""

    task = "skeleton_ssl"
    testing_only = True

    def __init__(self, cfg: dict | None = None, **kw) -> None:
        super().__init__(cfg, **kw)
        torch.manual_seed(self.seed)
        d = int(self.cfg.get("dim", 4))
        self.enc, self.dec = nn.Linear(d, d), nn.Linear(d, d)

    def components(self) -> dict[str, nn.Module]:
        return {"enc": self.enc, "dec": self.dec}

    def pretrain(self, dataset) -> None:
        opt = torch.optim.SGD([*self.enc.parameters(), *self.dec.parameters()], lr=0.1)

        def step_fn(batch, step):
            x = batch[0]
            loss = ((self.dec(self.enc(x)) - x) ** 2).mean()
            return loss, {}

        ckpt = self.workdir / "pretrain" if self.workdir is not None else None
        train({"enc": self.enc, "dec": self.dec}, opt, dataset.train, batch_size=int(self.cfg.get("batch_size", 8)),
              total_steps=int(self.cfg["steps"]), step_fn=step_fn, ckpt_dir=ckpt, seed=self.seed, desc="tiny")

    @torch.inference_mode()
    def encode(self, skeletons: torch.Tensor, pooling: str = "joint") -> torch.Tensor:
        return self.enc(skeletons)
