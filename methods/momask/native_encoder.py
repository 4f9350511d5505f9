"""The MoMask/HGM3 encoder stack on PyTorch's fused encoder-layer kernel, for sampling (ours, for speed).

``sampler.fused_encoder`` (default false): each post-norm GELU layer of
:class:`methods.momask.transformer.Encoder` becomes ONE call of
``torch._transformer_encoder_layer_fwd``, the C++ inference fast path of
``nn.TransformerEncoderLayer`` (in-projection, attention, out-projection, add & norm, feed-forward,
add & norm). The layer has exactly that structure and its parameter names (official
``nn.TransformerEncoderLayer(activation='gelu')``, ``models/mask_transformer/transformer.py``), so
the weights are used as they are. A batch-1 decoding iteration runs 8 layers of ~100 token rows:
the profile of ``benchmarks/test_side_by_side_momask.py`` shows a visible share of the eager call
outside the matmuls, which this path removes (one dispatch per layer instead of ~15).

``sampler.onednn_linear`` (default false): the layers as separate ops
(:func:`methods.common.encoder_layer_ops.layer_by_ops`) with their products on oneDNN's packed
linear instead of oneMKL's (:mod:`methods.common.onednn_linear`: oneMKL runs its AVX2 code on AMD
CPUs, oneDNN its AVX-512 code); the weights are packed once per encoder and again when they change.

Same math, not the same rounding (the kernel's attention sums in another order; oneDNN blocks the
products' sums differently): the eager stack stays the default and the reference;
``tests/momask/test_native_encoder.py`` checks both paths against it to 1e-5 on fixed seeds. Only
inference qualifies (eval mode, no autograd, fp32 input and weights); anything else, or a kernel
that raises, runs eagerly, with one warning for a failure.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from methods.common import onednn_linear
from methods.common.encoder_layer_ops import layer_by_ops

log = logging.getLogger(__name__)
_warned: set[tuple[str, str]] = set()


def unsupported_reason(enc: nn.Module, x: torch.Tensor) -> str | None:
    """Why ``enc`` cannot run on the fused kernel for input ``x`` (None: it can)."""
    if enc.training:
        return "encoder in training mode (dropout)"
    if torch.is_grad_enabled() and any(p.requires_grad for p in enc.parameters()):
        return "autograd is on (the fused kernel has no backward)"
    if x.dtype != torch.float32 or any(p.dtype != torch.float32 for p in enc.parameters()):
        return "not float32 (the eager bf16 copies keep their own path)"
    return None


def _layer_args(layer: nn.Module) -> tuple:
    a = layer.self_attn
    d = a.in_proj_weight.shape[1]
    return (d, a.heads, a.in_proj_weight, a.in_proj_bias, a.out_proj.weight, a.out_proj.bias, True, False,
            layer.norm1.eps, layer.norm1.weight, layer.norm1.bias, layer.norm2.weight, layer.norm2.bias,
            layer.linear1.weight, layer.linear1.bias, layer.linear2.weight, layer.linear2.bias)


def fused_forward(enc: nn.Module, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """``enc``'s layers as fused-kernel calls: ``x [B, L, d]``, ``keep [B, L]`` True = real key.
    Rows of padded positions differ from the eager stack's (the kernel masks them); real rows agree."""
    pad = None if keep is None or bool(keep.all()) else ~keep  # key-padding mask: True = ignore
    mask_type = None if pad is None else 1
    for layer in enc.layers:
        x = torch._transformer_encoder_layer_fwd(x, *_layer_args(layer), pad, mask_type)
    return x


def onednn_forward(enc: nn.Module, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
    """``enc``'s layers as separate ops on oneDNN's packed linear; every row as the eager stack's."""
    packs = enc.__dict__.get("_onednn_packs")
    if packs is None:  # packed at the first call, kept with the encoder (repacked when a weight changes)
        packs = enc.__dict__["_onednn_packs"] = onednn_linear.PackedWeights(rows=x.shape[0] * x.shape[1])
    mask = None if keep is None else keep[:, None, None, :]
    for layer in enc.layers:
        x = layer_by_ops(_layer_args(layer), x, None, packs.linear, mask)
    return x


def _warn_once(switch: str, why: str) -> None:
    if (switch, why) not in _warned:
        _warned.add((switch, why))
        log.warning("sampler.%s: %s; running the encoder eagerly", switch, why)


def forward(enc: nn.Module, x: torch.Tensor, keep: torch.Tensor | None, eager, onednn: bool = False) -> torch.Tensor:
    """The fused path (``onednn``: the oneDNN one) where it applies, else ``eager(x, keep)`` with one
    warning per reason (unsupported input, oneDNN missing, or the kernel raising)."""
    switch = "onednn_linear" if onednn else "fused_encoder"
    why = unsupported_reason(enc, x) or (onednn_linear.unavailable() if onednn else None)
    if why is not None:
        _warn_once(switch, why)
        return eager(x, keep)
    try:
        return onednn_forward(enc, x, keep) if onednn else fused_forward(enc, x, keep)
    except RuntimeError as e:
        _warn_once(switch, f"the {'oneDNN linear' if onednn else 'fused encoder-layer'} kernel failed "
                           f"({type(e).__name__}: {e})")
        return eager(x, keep)
