"""MoMask masked transformer (base layer) and residual transformer (layers 1..V).

Reimplemented from the MoMask paper (Sec. 3.2-3.3) following the official module
layout of ``models/mask_transformer/transformer.py`` (EricGuo5513/momask-codes) so the
released ``t2m_transformer`` / ``res_transformer`` state dicts load with the same key
names. Differences in *code*, not in numerics:

- attention is :func:`torch.nn.functional.scaled_dot_product_attention` (our own
  post-norm GELU encoder layer with the parameter names of ``nn.TransformerEncoderLayer``);
- tensors are batch-first; logits are returned as ``[B, N, K]``;
- the condition may be a *sequence* of tokens ``[B, Lc, Dc]`` (HGM3's hierarchical
  graph tokens); MoMask uses ``Lc = 1`` (one CLIP sentence vector).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from methods.momask import native_encoder


@dataclass
class Guidance:
    """Per-generate-call buffers of a guided transformer forward (``MaskTransformer.guidance`` /
    ``ResidualTransformer.guidance``): kept resident across the decoding iterations."""

    c: torch.Tensor                   # embedded condition rows [rows x B, Lc, d]
    keep: torch.Tensor                # key mask [rows x B, Lc (+1) + N], True = real key
    rows: int                         # 2 = cond + uncond rows (CFG), 1 = one set
    scale: float                      # guidance scale
    offset: int                       # positional-encoding offset of the motion tokens
    quant: torch.Tensor | None = None              # residual: quant_emb of each layer id [Q, d]
    tables: tuple[torch.Tensor, torch.Tensor] | None = None  # residual: (input, output) embedding tables


class SelfAttention(nn.Module):
    """Multi-head self-attention with ``nn.MultiheadAttention``'s parameter names, via SDPA."""

    def __init__(self, d: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d, d))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * d))
        self.out_proj = nn.Linear(d, d)
        nn.init.xavier_uniform_(self.in_proj_weight)  # as nn.MultiheadAttention._reset_parameters

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        """``x [B, L, d]``; ``keep [B, L]`` True = real key (False = padding)."""
        b, n, d = x.shape
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (t.view(b, n, self.heads, d // self.heads).transpose(1, 2) for t in (q, k, v))
        mask = None if keep is None else keep[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                             dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(out.transpose(1, 2).reshape(b, n, d))


class EncoderLayer(nn.Module):
    """Post-norm transformer encoder layer, GELU FF (= ``nn.TransformerEncoderLayer(activation='gelu')``)."""

    def __init__(self, d: int, heads: int, ff: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = SelfAttention(d, heads, dropout)
        self.linear1, self.linear2 = nn.Linear(d, ff), nn.Linear(ff, d)
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.dropout, self.dropout1, self.dropout2 = nn.Dropout(dropout), nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        x = self.norm1(x + self.dropout1(self.self_attn(x, keep)))
        return self.norm2(x + self.dropout2(self.linear2(self.dropout(F.gelu(self.linear1(x))))))


class Encoder(nn.Module):
    """Stack of :class:`EncoderLayer` under ``.layers`` (official key ``seqTransEncoder.layers.i``).

    ``fused`` (set from ``sampler.fused_encoder`` by the sampler; false by default): at inference, every
    layer as one call of PyTorch's fused encoder-layer kernel (:mod:`methods.momask.native_encoder`).
    ``onednn`` (``sampler.onednn_linear``, false by default; takes precedence): the layers' products on
    oneDNN's packed linear."""

    def __init__(self, d: int, heads: int, ff: int, dropout: float, n_layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(d, heads, ff, dropout) for _ in range(n_layers))
        self.fused = False
        self.onednn = False

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        if self.fused or self.onednn:
            return native_encoder.forward(self, x, keep, self.eager, onednn=self.onednn)
        return self.eager(x, keep)

    def eager(self, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        """The layers one by one (the reference path)."""
        for layer in self.layers:
            x = layer(x, keep)
        return x


class PositionalEncoding(nn.Module):
    """Sinusoidal table ``pe [max_len, 1, d]`` (official buffer shape) + dropout."""

    def __init__(self, d: int, dropout: float, max_len: int = 5000) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        pos = torch.arange(max_len, dtype=torch.float)[:, None]
        div = torch.exp(torch.arange(0, d, 2).float() * (-math.log(10000.0) / d))
        pe = torch.zeros(max_len, d)
        pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * div), torch.cos(pos * div)
        self.register_buffer("pe", pe[:, None, :])

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """``x [B, L, d]`` + positions ``offset .. offset+L-1``."""
        return self.dropout(x + self.pe[offset:offset + x.shape[1], 0][None])


class _Linear(nn.Module):
    """Holds a Linear under an official attribute name (``input_process.poseEmbedding``)."""

    def __init__(self, name: str, d_in: int, d_out: int) -> None:
        super().__init__()
        setattr(self, name, nn.Linear(d_in, d_out))
        self._name = name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self, self._name)(x)


class OutputHead(nn.Module):
    """Dense -> GELU -> LayerNorm(eps 1e-12) -> Linear (official ``OutputProcess[_Bert]``)."""

    def __init__(self, d: int, out: int) -> None:
        super().__init__()
        self.dense, self.LayerNorm, self.poseFinal = nn.Linear(d, d), nn.LayerNorm(d, eps=1e-12), nn.Linear(d, out)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.poseFinal(self.LayerNorm(F.gelu(self.dense(h))))


def _init_weights(module: nn.Module) -> None:
    """Official init: Linear/Embedding N(0, 0.02), zero bias, LayerNorm (1, 0)."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        module.weight.data.normal_(0.0, 0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            module.bias.data.zero_()
    elif isinstance(module, nn.LayerNorm):
        module.weight.data.fill_(1.0)
        module.bias.data.zero_()


def drop_condition(cond: torch.Tensor, prob: float, training: bool, force: bool | torch.Tensor = False):
    """Zero the condition of whole samples: ``force`` (bool or ``[B]`` bool), or w.p. ``prob`` in training.

    ``cond [B, Lc, Dc]``; MoMask's CFG "unconditional" input is the zero vector.
    """
    b = cond.shape[0]
    drop = torch.zeros(b, dtype=torch.bool, device=cond.device)
    if isinstance(force, torch.Tensor):
        drop |= force
    elif force:
        drop |= True
    if training and prob > 0:
        drop |= torch.rand(b, device=cond.device) < prob
    return cond * (~drop).to(cond.dtype)[:, None, None]


class MaskTransformer(nn.Module):
    """Bidirectional transformer over layer-0 tokens with condition tokens prepended.

    Vocabulary: codes ``0..K-1``, ``mask_id = K``, ``pad_id = K+1``.
    """

    def __init__(self, num_tokens: int = 512, code_dim: int = 512, latent_dim: int = 384, ff_size: int = 1024,
                 num_layers: int = 8, num_heads: int = 6, dropout: float = 0.2, cond_dim: int = 512,
                 cond_drop_prob: float = 0.1, pe_over_condition: bool = False) -> None:
        super().__init__()
        self.num_tokens, self.mask_id, self.pad_id = num_tokens, num_tokens, num_tokens + 1
        self.cond_drop_prob, self.pe_over_condition = cond_drop_prob, pe_over_condition
        self.token_emb = nn.Embedding(num_tokens + 2, code_dim)
        self.input_process = _Linear("poseEmbedding", code_dim, latent_dim)
        self.position_enc = PositionalEncoding(latent_dim, dropout)
        self.seqTransEncoder = Encoder(latent_dim, num_heads, ff_size, dropout, num_layers)
        self.cond_emb = nn.Linear(cond_dim, latent_dim)
        self.output_process = OutputHead(latent_dim, num_tokens)
        self.apply(_init_weights)

    def hidden(self, ids: torch.Tensor, cond: torch.Tensor, pad: torch.Tensor, cond_pad: torch.Tensor | None = None,
               force_uncond: bool | torch.Tensor = False) -> torch.Tensor:
        """Final hidden states of the motion positions ``[B, N, latent]``.

        ``ids [B, N]``; ``cond [B, Lc, Dc]``; ``pad [B, N]`` True = padding;
        ``cond_pad [B, Lc]`` True = padded condition slot.
        """
        cond = drop_condition(cond, self.cond_drop_prob, self.training, force_uncond)
        c = self.cond_emb(cond)
        x = self.input_process(self.token_emb(ids))
        lc = c.shape[1]
        if self.pe_over_condition:  # HGM3: one positional encoding over [condition; motion]
            seq = self.position_enc(torch.cat([c, x], 1))
        else:  # MoMask: PE on the motion tokens only
            seq = torch.cat([c, self.position_enc(x)], 1)
        cpad = torch.zeros(c.shape[:2], dtype=torch.bool, device=ids.device) if cond_pad is None else cond_pad
        keep = ~torch.cat([cpad, pad], 1)
        return self.seqTransEncoder(seq, keep)[:, lc:]

    def forward(self, ids, cond, pad, cond_pad=None, force_uncond=False) -> torch.Tensor:
        """Logits ``[B, N, K]`` (one trans_forward of the official code)."""
        return self.output_process(self.hidden(ids, cond, pad, cond_pad, force_uncond))

    def guidance(self, cond: torch.Tensor, pad: torch.Tensor, cond_pad: torch.Tensor | None = None,
                 scale: float = 4.0, force_uncond: bool = False) -> Guidance:
        """Everything of a guided forward that does not depend on the token ids, computed ONCE per
        generate call (ours, for speed): the embedded condition rows (cond rows then zeroed rows when
        ``scale != 1``; one zeroed set with ``force_uncond``), with their positional encoding when
        it runs over [condition; motion], and the key mask of the doubled batch.
        """
        b = cond.shape[0]
        if force_uncond:
            rows, force, scale = 1, True, 1.0
        elif scale == 1:
            rows, force = 1, False
        else:
            rows = 2
            force = torch.cat([torch.zeros(b, dtype=torch.bool), torch.ones(b, dtype=torch.bool)]).to(cond.device)
        cond = cond.to(self.cond_emb.weight.dtype)  # a bf16 copy (sampler.precision) takes fp32 inputs
        cond_r = cond.repeat(rows, 1, 1) if rows > 1 else cond
        c = self.cond_emb(drop_condition(cond_r, self.cond_drop_prob, self.training, force))
        lc = c.shape[1]
        if self.pe_over_condition:  # HGM3: positions 0..Lc-1 on the condition, Lc.. on the motion
            c = self.position_enc(c)
        cpad = torch.zeros(c.shape[:2], dtype=torch.bool, device=c.device) if cond_pad is None \
            else (cond_pad.repeat(rows, 1) if rows > 1 else cond_pad)
        keep = ~torch.cat([cpad, pad.repeat(rows, 1) if rows > 1 else pad], 1)
        return Guidance(c=c, keep=keep, rows=rows, scale=float(scale), offset=lc if self.pe_over_condition else 0)

    def guided_logits(self, ids: torch.Tensor, g: Guidance) -> torch.Tensor:
        """Logits ``[B, N, K]`` of ``ids [B, N]`` under the prepared guidance ``g``: ONE forward over
        ``g.rows x B`` rows, then ``uncond + (cond - uncond) * scale`` (same numbers as
        :meth:`forward` on the repeated batch; tested)."""
        x = self.position_enc(self.input_process(self.token_emb(ids)), g.offset)  # [B, N, d], once for all rows
        if g.rows > 1:
            x = x.repeat(g.rows, 1, 1)
        h = self.seqTransEncoder(torch.cat([g.c, x], 1), g.keep)[:, g.c.shape[1]:]
        out = self.output_process(h).float()  # CFG mix in fp32 (also for a bf16 copy)
        if g.rows == 1:
            return out
        b = ids.shape[0]
        cond_l, uncond_l = out[:b], out[b:]
        return uncond_l + (cond_l - uncond_l) * g.scale

    def cfg_logits(self, ids, cond, pad, cond_pad=None, scale: float = 4.0) -> torch.Tensor:
        """``uncond + (cond - uncond) * scale`` from ONE batched forward (cond rows, then zeroed rows)."""
        return self.guided_logits(ids, self.guidance(cond, pad, cond_pad, scale))


class ResidualTransformer(nn.Module):
    """Predicts layer ``j`` tokens from the summed embeddings of layers ``0..j-1`` (MoMask Sec. 3.3).

    Layer-specific token embeddings (pad id = K); with ``share_weight`` the output
    projection of layer ``j`` is tied to the input embedding of layer ``j`` (official
    ``--share_weight``; last layer has its own projection).
    """

    def __init__(self, num_tokens: int = 512, num_quantizers: int = 6, code_dim: int = 512, latent_dim: int = 384,
                 ff_size: int = 1024, num_layers: int = 8, num_heads: int = 6, dropout: float = 0.2,
                 cond_dim: int = 512, cond_drop_prob: float = 0.2, share_weight: bool = True) -> None:
        super().__init__()
        if num_quantizers < 2:
            raise ValueError(f"ResidualTransformer needs num_quantizers >= 2, got {num_quantizers}")
        self.num_tokens, self.pad_id, self.nq = num_tokens, num_tokens, num_quantizers
        self.cond_drop_prob, self.share_weight = cond_drop_prob, share_weight
        self.input_process = _Linear("poseEmbedding", code_dim, latent_dim)
        self.position_enc = PositionalEncoding(latent_dim, dropout)
        self.seqTransEncoder = Encoder(latent_dim, num_heads, ff_size, dropout, num_layers)
        self.quant_emb = nn.Linear(num_quantizers, latent_dim)
        self.cond_emb = nn.Linear(cond_dim, latent_dim)
        self.output_process = OutputHead(latent_dim, code_dim)
        v = num_tokens + 1
        if share_weight:
            self.embed_proj_shared_weight = nn.Parameter(torch.randn(num_quantizers - 2, v, code_dim) * 0.02)
            self.token_embed_weight_ = nn.Parameter(torch.randn(1, v, code_dim) * 0.02)
            self.output_proj_weight_ = nn.Parameter(torch.randn(1, v, code_dim) * 0.02)
        else:
            self.token_embed_weight = nn.Parameter(torch.randn(num_quantizers - 1, v, code_dim) * 0.02)
            self.output_proj_weight = nn.Parameter(torch.randn(num_quantizers - 1, v, code_dim) * 0.02)
            self.output_proj_bias = nn.Parameter(torch.zeros(num_quantizers, v))
        self.apply(_init_weights)

    def embed_tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(input embeddings ``[Q-1, K+1, C]`` for layers 0..Q-2, output projections for layers 1..Q-1)."""
        if self.share_weight:
            return (torch.cat([self.token_embed_weight_, self.embed_proj_shared_weight]),
                    torch.cat([self.embed_proj_shared_weight, self.output_proj_weight_]))
        return self.token_embed_weight, self.output_proj_weight

    def forward(self, history: torch.Tensor, qids: torch.Tensor, cond: torch.Tensor, pad: torch.Tensor,
                force_uncond: bool | torch.Tensor = False) -> torch.Tensor:
        """Logits ``[B, N, K+1]`` for layer ``qids [B]`` from ``history [B, N, C]``; ``cond [B, Dc]``."""
        c = self.cond_emb(drop_condition(cond[:, None], self.cond_drop_prob, self.training, force_uncond))
        q = self.quant_emb(F.one_hot(qids, self.nq).to(self.quant_emb.weight.dtype))[:, None]
        x = self.position_enc(self.input_process(history))
        keep = ~torch.cat([torch.zeros(pad.shape[0], 2, dtype=torch.bool, device=pad.device), pad], 1)
        h = self.output_process(self.seqTransEncoder(torch.cat([c, q, x], 1), keep)[:, 2:])  # [B, N, C]
        _, out_w = self.embed_tables()
        logits = torch.einsum("bvc,bnc->bnv", out_w[qids - 1], h)
        if not self.share_weight:
            # official `output += output + bias` doubles the projection; kept for weight parity
            logits = 2 * logits + self.output_proj_bias[qids - 1][:, None, :]
        return logits

    def history(self, ids: torch.Tensor, upto: torch.Tensor) -> torch.Tensor:
        """Sum of layer embeddings ``0..upto-1``: ``ids [B, N, Q]`` (pad = K), ``upto [B]`` -> ``[B, N, C]``."""
        emb, _ = self.embed_tables()
        codes = torch.stack([emb[q][ids[..., q]] for q in range(self.nq - 1)], -1)  # [B, N, C, Q-1]
        csum = codes.cumsum(-1)
        return csum[torch.arange(ids.shape[0], device=ids.device), :, :, upto - 1]

    def guidance(self, cond: torch.Tensor, pad: torch.Tensor, scale: float) -> Guidance:
        """Id-independent part of the guided residual forward, computed ONCE per generate call:
        embedded condition rows (cond then zeroed when ``scale != 1``), the quantizer-id
        embeddings of every layer, the key mask of the doubled batch and the embedding tables."""
        b = cond.shape[0]
        rows = 1 if scale == 1 else 2
        force = False if rows == 1 else \
            torch.cat([torch.zeros(b, dtype=torch.bool), torch.ones(b, dtype=torch.bool)]).to(cond.device)
        cond = cond.to(self.cond_emb.weight.dtype)  # a bf16 copy (sampler.precision) takes fp32 inputs
        cond_r = cond.repeat(rows, 1) if rows > 1 else cond
        c = self.cond_emb(drop_condition(cond_r[:, None], self.cond_drop_prob, self.training, force))  # [R B, 1, d]
        q = self.quant_emb(torch.eye(self.nq, device=cond.device, dtype=cond.dtype))  # row j = quant_emb(one_hot(j))
        pad_r = pad.repeat(rows, 1) if rows > 1 else pad
        keep = ~torch.cat([torch.zeros(pad_r.shape[0], 2, dtype=torch.bool, device=pad.device), pad_r], 1)
        return Guidance(c=c, keep=keep, rows=rows, scale=float(scale), offset=0, quant=q,
                        tables=self.embed_tables())

    def guided_logits(self, history: torch.Tensor, qid: int, g: Guidance) -> torch.Tensor:
        """Guided logits ``[B, N, K+1]`` of layer ``qid`` from ``history [B, N, C]``: one forward over
        ``g.rows x B`` rows; the output projection of the layer is ONE matmul with its table
        (not a per-row gathered copy of it)."""
        x = self.position_enc(self.input_process(history.to(g.c.dtype)))
        if g.rows > 1:
            x = x.repeat(g.rows, 1, 1)
        r = x.shape[0]
        q = g.quant[qid][None, None].expand(r, 1, -1)
        h = self.output_process(self.seqTransEncoder(torch.cat([g.c, q, x], 1), g.keep)[:, 2:])  # [R B, N, C]
        logits = F.linear(h, g.tables[1][qid - 1])
        if not self.share_weight:
            logits = 2 * logits + self.output_proj_bias[qid - 1]  # official `output += output + bias`
        logits = logits.float()  # CFG mix in fp32 (also for a bf16 copy)
        if g.rows == 1:
            return logits
        b = history.shape[0]
        return logits[b:] + (logits[:b] - logits[b:]) * g.scale

    def cfg_logits(self, history, qid: int, cond, pad, scale: float) -> torch.Tensor:
        """Guided logits for layer ``qid`` from one batched (cond + uncond) forward."""
        return self.guided_logits(history, qid, self.guidance(cond, pad, scale))


class GuidedStep(nn.Module):
    """One decoding iteration of :meth:`MaskTransformer.cfg_logits` as a module (cond + uncond rows in
    one forward), so benchmarks can trace it with fvcore and time it (``MoMask.denoiser_example``)."""

    def __init__(self, mtrans: MaskTransformer, scale: float) -> None:
        super().__init__()
        self.mtrans, self.scale = mtrans, scale

    def forward(self, ids, cond, pad, cond_pad=None) -> torch.Tensor:
        return self.mtrans.cfg_logits(ids, cond, pad, cond_pad, self.scale)
