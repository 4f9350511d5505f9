"""Benchmark hooks of MoMask and HGM3 (``Method.denoiser_example`` / ``train_step_example``).

``benchmarks/test_methods.py`` counts the FLOPs (fvcore) and the latency of the module run once
per decoding iteration, and the samples/s of one optimiser step of the masked transformer.
"""

from __future__ import annotations

import torch
from torch import nn

from methods.momask.transformer import GuidedStep


def denoiser_example(method, batch: int = 1) -> tuple[nn.Module, tuple]:
    """One guided decoding iteration (cond + uncond rows in one forward) on a 196-frame
    (49-token) sequence: ids ``[B, 49]``, condition ``[B, Lc, D]``, pad ``[B, 49]``
    (HGM3: its finest graph level with the node padding ``[B, 13]``)."""
    n, dev = int(method.c["max_motion_length"]) // method.vq.unit_length, method.device
    ids = torch.full((batch, n), method.mtrans.mask_id, dtype=torch.long, device=dev)
    pad = torch.zeros(batch, n, dtype=torch.bool, device=dev)
    with torch.no_grad():
        cond, cpad = method.conditions([f"a person walks and waves {i}" for i in range(batch)])[-1]
    step = GuidedStep(method.mtrans.eval(), float(method.c["sampler"]["cond_scale"]))
    return step, (ids, cond, pad) + (() if cpad is None else (cpad,))


def train_step_example(method, batch: int):
    """A callable running one masked-transformer optimiser step: frozen tokenizer on random
    196-frame motions, mask loss with real captions (HGM3: graph levels + hard token mining)."""
    t = int(method.c["max_motion_length"])
    data = {"motion": torch.randn(batch, t, method.vq.d_in, device=method.device), "length": torch.full((batch,), t)}
    caps = [f"a person walks forward {i % 7} steps and then waves" for i in range(batch)]
    mods = list(method._mask_modules().values())
    opt = torch.optim.AdamW([p for m in mods for p in m.parameters()], lr=1e-4)

    def step() -> None:
        ids, _, pad = method._tokens(data)
        for m in mods:
            m.train()
        loss, _ = method.mask_loss(ids[..., 0], pad, caps, 0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step
