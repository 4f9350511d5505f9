"""Transformer building blocks of MLD, with the official parameter layout.

The official code (``ChenFengYe/motion-latent-diffusion``, ``mld/models/operator/
cross_attention.py``) uses DETR-style post-norm layers built on ``nn.MultiheadAttention``
and U-Net-like "skip" stacks (``SkipTransformerEncoder/Decoder``: (L-1)/2 input blocks,
one middle block, (L-1)/2 output blocks, each output block fed ``Linear(2d -> d)`` of
the concatenation of the running state and the matching input block's output).

We re-implement them with ``torch.nn.functional.scaled_dot_product_attention`` but keep
every parameter *name and shape* identical (``self_attn.in_proj_weight`` [3d, d],
``self_attn.out_proj.weight``, ``linear1``, ``norm1`` ...), so an official checkpoint
loads strictly and the math is the same (a test compares against ``nn.MultiheadAttention``).

Layout: batch-first ``[B, L, d]`` everywhere (the official code is sequence-first; only
the positional tables keep the official ``[max_len, 1, d]`` shape for key compatibility).
Padding masks are ``True`` where a position is padding (PyTorch's convention).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


class MultiheadAttention(nn.Module):
    """Multi-head attention via SDPA with ``nn.MultiheadAttention``'s parameter layout.

    query ``[B, Lq, d]``, key/value ``[B, Lk, d]``, key_padding_mask ``[B, Lk]`` (True = pad)
    -> ``[B, Lq, d]``.
    """

    def __init__(self, d_model: int, nhead: int, dropout: float = 0.0) -> None:
        super().__init__()
        if d_model % nhead:
            raise ValueError(f"d_model {d_model} not divisible by nhead {nhead}")
        self.d_model, self.nhead, self.dropout = d_model, nhead, dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d_model, d_model))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * d_model))
        self.out_proj = nn.Linear(d_model, d_model)
        # same initialisation as nn.MultiheadAttention._reset_parameters
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        B, Lq, d = query.shape
        Lk = key.shape[1]
        w_q, w_k, w_v = self.in_proj_weight.chunk(3)
        b_q, b_k, b_v = self.in_proj_bias.chunk(3)
        h = self.nhead
        q = F.linear(query, w_q, b_q).view(B, Lq, h, d // h).transpose(1, 2)
        k = F.linear(key, w_k, b_k).view(B, Lk, h, d // h).transpose(1, 2)
        v = F.linear(value, w_v, b_v).view(B, Lk, h, d // h).transpose(1, 2)
        attn_mask = None
        if key_padding_mask is not None:
            attn_mask = (~key_padding_mask.bool())[:, None, None, :]  # True = attend
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask,
                                             dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(out.transpose(1, 2).reshape(B, Lq, d))


def _activation(name: str):
    if name == "gelu":
        return F.gelu
    if name == "relu":
        return F.relu
    raise ValueError(f"unsupported activation {name!r} (gelu | relu)")


class TransformerEncoderLayer(nn.Module):
    """Post-norm (``normalize_before=False``, the official default) or pre-norm encoder layer.

    src ``[B, L, d]`` -> ``[B, L, d]``. Parameter names follow the official DETR layer.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 1024, dropout: float = 0.1,
                 activation: str = "gelu", normalize_before: bool = False) -> None:
        super().__init__()
        self.d_model = d_model
        self.self_attn = MultiheadAttention(d_model, nhead, dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.act = _activation(activation)
        self.normalize_before = normalize_before

    def _ff(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(self.dropout(self.act(self.linear1(x))))

    def forward(self, src: torch.Tensor, src_key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        if self.normalize_before:
            y = self.norm1(src)
            src = src + self.dropout1(self.self_attn(y, y, y, src_key_padding_mask))
            return src + self.dropout2(self._ff(self.norm2(src)))
        src = self.norm1(src + self.dropout1(self.self_attn(src, src, src, src_key_padding_mask)))
        return self.norm2(src + self.dropout2(self._ff(src)))


class TransformerDecoderLayer(nn.Module):
    """Self-attention over the queries, cross-attention to ``memory``, feed-forward.

    tgt ``[B, Lt, d]``, memory ``[B, Lm, d]`` -> ``[B, Lt, d]``.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 1024, dropout: float = 0.1,
                 activation: str = "gelu", normalize_before: bool = False) -> None:
        super().__init__()
        self.d_model = d_model
        self.self_attn = MultiheadAttention(d_model, nhead, dropout)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)
        self.act = _activation(activation)
        self.normalize_before = normalize_before

    def forward(self, tgt: torch.Tensor, memory: torch.Tensor, tgt_key_padding_mask: torch.Tensor | None = None,
                memory_key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        ff = lambda x: self.linear2(self.dropout(self.act(self.linear1(x))))  # noqa: E731
        if self.normalize_before:
            y = self.norm1(tgt)
            tgt = tgt + self.dropout1(self.self_attn(y, y, y, tgt_key_padding_mask))
            tgt = tgt + self.dropout2(self.multihead_attn(self.norm2(tgt), memory, memory, memory_key_padding_mask))
            return tgt + self.dropout3(ff(self.norm3(tgt)))
        tgt = self.norm1(tgt + self.dropout1(self.self_attn(tgt, tgt, tgt, tgt_key_padding_mask)))
        tgt = self.norm2(tgt + self.dropout2(self.multihead_attn(tgt, memory, memory, memory_key_padding_mask)))
        return self.norm3(tgt + self.dropout3(ff(tgt)))


def _clones(module: nn.Module, n: int) -> nn.ModuleList:
    return nn.ModuleList(copy.deepcopy(module) for _ in range(n))


class _SkipStack(nn.Module):
    """U-Net-like layer stack with long skip connections (official ``SkipTransformer*``)."""

    def __init__(self, layer: nn.Module, num_layers: int, norm: nn.Module | None) -> None:
        super().__init__()
        if num_layers % 2 != 1:
            raise ValueError(f"a skip-connected stack needs an odd layer count, got {num_layers}")
        d = layer.d_model
        nb = (num_layers - 1) // 2
        self.d_model, self.num_layers = d, num_layers
        self.input_blocks = _clones(layer, nb)
        self.middle_block = copy.deepcopy(layer)
        self.output_blocks = _clones(layer, nb)
        self.linear_blocks = _clones(nn.Linear(2 * d, d), nb)
        self.norm = norm
        for p in self.parameters():  # official _reset_parameters
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def _run(self, x: torch.Tensor, call) -> torch.Tensor:
        skips = []
        for block in self.input_blocks:
            x = call(block, x)
            skips.append(x)
        x = call(self.middle_block, x)
        for block, linear in zip(self.output_blocks, self.linear_blocks):
            x = call(block, linear(torch.cat([x, skips.pop()], dim=-1)))
        return self.norm(x) if self.norm is not None else x


class SkipTransformerEncoder(_SkipStack):
    """src ``[B, L, d]`` -> ``[B, L, d]`` through the skip-connected encoder stack."""

    def forward(self, src: torch.Tensor, src_key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self._run(src, lambda blk, x: blk(x, src_key_padding_mask))


class SkipTransformerDecoder(_SkipStack):
    """tgt ``[B, Lt, d]`` attending to memory ``[B, Lm, d]`` -> ``[B, Lt, d]``."""

    def forward(self, tgt: torch.Tensor, memory: torch.Tensor, tgt_key_padding_mask: torch.Tensor | None = None,
                memory_key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self._run(tgt, lambda blk, x: blk(x, memory, tgt_key_padding_mask, memory_key_padding_mask))


class TransformerEncoder(nn.Module):
    """Plain stack (the no-skip ablation; official uses ``nn.TransformerEncoder``: keys ``layers.i.*``)."""

    def __init__(self, layer: nn.Module, num_layers: int, norm: nn.Module | None = None) -> None:
        super().__init__()
        self.layers = _clones(layer, num_layers)
        self.norm = norm

    def forward(self, src: torch.Tensor, src_key_padding_mask: torch.Tensor | None = None) -> torch.Tensor:
        for layer in self.layers:
            src = layer(src, src_key_padding_mask)
        return self.norm(src) if self.norm is not None else src


class TransformerDecoder(nn.Module):
    """Plain decoder stack + final norm (the denoiser's cross-attention ablation, ``trans_dec``)."""

    def __init__(self, layer: nn.Module, num_layers: int, norm: nn.Module | None = None) -> None:
        super().__init__()
        self.layers = _clones(layer, num_layers)
        self.norm = norm

    def forward(self, tgt: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            tgt = layer(tgt, memory)
        return self.norm(tgt) if self.norm is not None else tgt


class LearnedPositionalEncoding(nn.Module):
    """Learned absolute positions added to the input (official ``PositionEmbeddingLearned1D``).

    x ``[B, L, d]`` -> ``x + pe[:L]``; the table keeps the official shape ``[max_len, 1, d]``.
    """

    def __init__(self, d_model: int, max_len: int = 500) -> None:
        super().__init__()
        self.pe = nn.Parameter(torch.rand(max_len, 1, d_model))  # official: uniform_ init

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] > self.pe.shape[0]:
            raise ValueError(f"sequence of {x.shape[1]} exceeds the positional table ({self.pe.shape[0]})")
        return x + self.pe[: x.shape[1], 0][None]


def lengths_to_mask(lengths: torch.Tensor | list[int], max_len: int | None = None,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """Valid-frame mask ``[B, T]`` (True = real frame) from per-sample lengths."""
    lengths = torch.as_tensor(lengths, device=device)
    T = int(max_len if max_len is not None else lengths.max())
    return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]
