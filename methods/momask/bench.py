"""Benchmark hooks of MoMask and HGM3 (``Method.denoiser_example`` / ``train_step_example`` / ``gmacs``).

``benchmarks/test_methods.py`` counts the FLOPs (fvcore) and the latency of the module run once
per decoding iteration, and the samples/s of one optimiser step of the masked transformer.
"""

from __future__ import annotations

import torch
from torch import nn

from methods.momask.tokenizer import RVQVAE
from methods.momask.transformer import GuidedStep


class _VQRoundTrip(nn.Module):
    """encode -> decode of the RVQ-VAE as one module (for fvcore)."""

    def __init__(self, vq: RVQVAE) -> None:
        super().__init__()
        self.vq = vq

    def forward(self, x):
        return self.vq.decode(self.vq.encode(x))


def gmacs(method) -> dict[str, float]:
    """GMACs of one forward of each network (fvcore) on a 196-frame / 49-token sample."""
    from fvcore.nn import FlopCountAnalysis  # lazy: fvcore is an optional dependency (model cards, benchmarks)

    n, dev = method.c["max_motion_length"] // method.vq.unit_length, method.device
    ids = torch.zeros(1, n, dtype=torch.long, device=dev)
    pad = torch.zeros(1, n, dtype=torch.bool, device=dev)
    cond = torch.zeros(1, 1, int(method.c["text_encoder"]["dim"]), device=dev)
    vq, mtrans, rtrans = method.vq, method.mtrans, method.rtrans
    out = {}
    with torch.no_grad():
        for name, mod, args in [
            ("tokenizer", _VQRoundTrip(vq), (torch.zeros(1, n * vq.unit_length, vq.d_in, device=dev),)),
            ("mask_transformer", mtrans, (ids, cond, pad)),
        ] + ([("residual_transformer", rtrans,
               (torch.zeros(1, n, vq.code_dim, device=dev), torch.ones(1, dtype=torch.long, device=dev),
                cond[:, 0], pad))] if rtrans is not None else []):
            mod.eval()
            fl = FlopCountAnalysis(mod, args)
            fl.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
            out[name] = fl.total() / 1e9
    return out


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
        with method.linear_mode("mask_transformer"):
            loss, _ = method.mask_loss(ids[..., 0], pad, caps, 0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step
