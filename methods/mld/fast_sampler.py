"""The whole CFG-DDIM reverse loop of MLD's denoiser on PyTorch's fused encoder-layer kernel (ours, for speed).

At batch 1 a guided step is ~93 MFLOP over ~3 tokens x 2 rows: the eager denoiser spends more
time dispatching ~60 small ops per layer from Python than multiplying (profile in
``benchmarks/test_side_by_side_mld.py``). This sampler does the same math with far fewer calls:

- every encoder layer is ONE call of ``torch._transformer_encoder_layer_fwd`` (the C++ inference
  fast path of ``nn.TransformerEncoderLayer``: in-projection, SDPA, out-projection, add & norm,
  feed-forward, add & norm). The MLD layer has exactly its structure (DETR post-norm layer,
  ``mld/models/operator/cross_attention.py``; ``methods/mld/layers.py``), so the weights are used as is;
- what does not change across the loop is computed once per call: the condition tokens
  ``emb_proj(τ(c))`` and the time embeddings of all S timesteps (one batched
  ``TimestepEmbedding``), each with its learned position added;
- CFG and the DDIM update are two fused ops per step (``lerp`` + ``add``).

With ``onednn`` (``diffusion.onednn_linear``) the layers run as separate ops instead, their products
on oneDNN's packed linear (:mod:`methods.common.onednn_linear`): more calls, each product faster on
CPUs where oneMKL, which the fused kernel calls, does not use the widest vectors.

The eager :func:`methods.mld.diffusion.ddim_sample` stays the reference:
``tests/mld/test_fast_sampler.py`` checks this loop against it on fixed seeds (1e-5). Only the
default MLD denoiser (``trans_enc`` with skip connections, post-norm, GELU/ReLU, fp32, eval mode,
no padding) has this structure; :func:`fast_sampler_for` returns None for anything else, and the
caller warns once and runs eagerly.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F

from methods.common import onednn_linear
from methods.common.ddim import DDIMCoefficients
from methods.common.encoder_layer_ops import layer_by_ops
from methods.mld.denoiser import LatentDenoiser
from methods.mld.layers import SkipTransformerEncoder, TransformerEncoderLayer

log = logging.getLogger(__name__)


def encoder_unsupported(enc, module: torch.nn.Module, name: str) -> str | None:
    """Why the skip-connected stack ``enc`` of ``module`` (called ``name``) cannot run as
    :func:`encoder_forward` does (None: it can)."""
    if not isinstance(enc, SkipTransformerEncoder):
        return f"{name} without a skip-connected transformer encoder"
    if module.training:
        return f"{name} in training mode (dropout)"
    layers = [*enc.input_blocks, enc.middle_block, *enc.output_blocks]
    for layer in layers:
        if not isinstance(layer, TransformerEncoderLayer) or layer.normalize_before:
            return "pre-norm layers (the fused kernel's norm_first path is not the DETR layer)"
        if layer.act not in (F.gelu, F.relu):
            return "activation other than gelu/relu"
        if layer.norm1.eps != layer.norm2.eps:
            return "norm1/norm2 with different eps"
    if any(p.dtype != torch.float32 for p in module.parameters()):
        return "weights not float32"
    return None


def unsupported_reason(denoiser: LatentDenoiser) -> str | None:
    """Why ``denoiser`` cannot run on the fused loop (None: it can)."""
    if denoiser.arch != "trans_enc" or not isinstance(getattr(denoiser, "encoder", None), SkipTransformerEncoder):
        return f"arch={denoiser.arch!r} without the skip-connected encoder"
    return encoder_unsupported(denoiser.encoder, denoiser, "denoiser")


def _layer_args(layer: TransformerEncoderLayer) -> tuple:
    """Everything but the input of one ``torch._transformer_encoder_layer_fwd`` call, read once per
    sampling call (not per step: nn.Module attribute lookups are a visible share of a batch-1 step)."""
    a = layer.self_attn
    return (a.d_model, a.nhead, a.in_proj_weight, a.in_proj_bias, a.out_proj.weight, a.out_proj.bias,
            layer.act is F.gelu, False, layer.norm1.eps, layer.norm1.weight, layer.norm1.bias,
            layer.norm2.weight, layer.norm2.bias, layer.linear1.weight, layer.linear1.bias,
            layer.linear2.weight, layer.linear2.bias, None, None)


def encoder_plan(enc: SkipTransformerEncoder) -> tuple:
    """The skip-connected stack as plain tensors: (input-block args, middle args, output-block args,
    skip-linear (weight, bias) pairs, final norm or None)."""
    norm = None if enc.norm is None else (enc.norm.normalized_shape, enc.norm.weight, enc.norm.bias, enc.norm.eps)
    return ([_layer_args(b) for b in enc.input_blocks], _layer_args(enc.middle_block),
            [_layer_args(b) for b in enc.output_blocks], [(m.weight, m.bias) for m in enc.linear_blocks], norm)


def encoder_forward(plan: tuple, x: torch.Tensor, keep: int | None = None, lin=None,
                    attn_mask: torch.Tensor | None = None) -> torch.Tensor:
    """``SkipTransformerEncoder.forward``. ``lin`` None: one fused call per layer (no padding mask);
    else every layer as separate ops with its products through ``lin``
    (:func:`methods.common.encoder_layer_ops.layer_by_ops`; ``attn_mask``: SDPA's, True = attend).
    ``keep``: only the first ``keep`` tokens are returned, and only they go through the last layer's
    per-token parts and the final LayerNorm (measured per layer at 6, 16 and 64 rows of 3 tokens,
    1 thread: 1.4-1.7x faster than the fused call on all tokens)."""
    if attn_mask is not None and lin is None:
        raise ValueError("encoder_forward: a padding mask needs the separate-ops path (lin)")
    if lin is None:
        fwd = torch._transformer_encoder_layer_fwd
    else:
        def fwd(x, *args):
            return layer_by_ops(args, x, None, lin, attn_mask)
    ins, mid, outs, linears, norm = plan
    skips = []
    for args in ins:
        x = fwd(x, *args)
        skips.append(x)
    x = fwd(x, *mid)
    short = keep is not None and len(outs) > 0
    for j, (args, (w, b)) in enumerate(zip(outs, linears)):
        x = (lin or F.linear)(torch.cat([x, skips.pop()], dim=-1), w, b)
        x = layer_by_ops(args, x, keep, lin or F.linear, attn_mask) if short and j == len(outs) - 1 else fwd(x, *args)
    if keep is not None:
        x = x[:, :keep]
    return x if norm is None else F.layer_norm(x, *norm)


class FusedSampler:
    """``(cond, uncond | None, z_T) -> z_0``: CFG DDIM over ``denoiser`` with the fused layer kernel.

    Same inputs and result as :func:`methods.mld.diffusion.ddim_sample` with ``eta = 0`` (the only
    case it takes: the η > 0 noise stream is the eager loop's).

    ``onednn``: every product through oneDNN's packed linear (:mod:`methods.common.onednn_linear`;
    ``diffusion.onednn_linear``) with the layers as separate ops, instead of the fused kernel's
    oneMKL products: more calls per layer, each product faster where oneMKL does not use the CPU's
    widest vectors. Weights are packed at the first call and again only when they change.
    """

    def __init__(self, denoiser: LatentDenoiser, coeffs: DDIMCoefficients, guidance_scale: float,
                 onednn: bool = False) -> None:
        reason = unsupported_reason(denoiser) or (onednn_linear.unavailable() if onednn else None)
        if reason is not None:
            raise ValueError(f"FusedSampler: {reason}")
        if coeffs.eta != 0:
            raise ValueError(f"FusedSampler: only eta = 0 (got {coeffs.eta})")
        self.den, self.coeffs, self.guidance = denoiser, coeffs, float(guidance_scale)
        self.cx, self.ce = coeffs.c_x.tolist(), coeffs.c_eps.tolist()
        self.onednn = onednn
        self._packs: onednn_linear.PackedWeights | None = None

    def __call__(self, cond: torch.Tensor, uncond: torch.Tensor | None, z_T: torch.Tensor) -> torch.Tensor:
        den = self.den
        cfg = uncond is not None and self.guidance > 1.0
        both = torch.cat([uncond, cond], dim=0) if cfg else cond  # official order: unconditional first
        with torch.inference_mode():
            x = z_T
            B, n, _ = x.shape
            rows = 2 * B if cfg else B
            ts = self.coeffs.timesteps.to(x.device)
            # constant over the loop: time embeddings of all steps [S, 1, d] and condition tokens [rows, m, d]
            time_emb = den.time_embedding(den.time_proj(ts).to(x.dtype))[:, None, :]
            cond_tok = den.embed_condition(both)
            L = n + 1 + cond_tok.shape[1]
            if L > den.query_pos.pe.shape[0]:
                raise ValueError(f"sequence of {L} exceeds the positional table ({den.query_pos.pe.shape[0]})")
            pe = den.query_pos.pe[:L, 0]
            # [S, rows, 1 + m, d]: time token + condition tokens with their positions, per step
            tail = torch.cat([time_emb[:, None].expand(-1, rows, -1, -1),
                              cond_tok[None].expand(len(ts), -1, -1, -1)], dim=2) + pe[n:]
            pe_x, plan = pe[:n], encoder_plan(den.encoder)
            if self.onednn and self._packs is None:
                self._packs = onednn_linear.PackedWeights(rows * L)
            lin = self._packs.linear if self.onednn else None
            for i in range(len(ts)):
                xs = x + pe_x
                tokens = torch.cat([torch.cat([xs, xs], dim=0) if cfg else xs, tail[i]], dim=1)
                eps = encoder_forward(plan, tokens, keep=n, lin=lin)
                if cfg:
                    eps = torch.lerp(eps[:B], eps[B:], self.guidance)  # ε_u + s (ε_c − ε_u)
                x = torch.add(x * self.cx[i], eps, alpha=self.ce[i])
            return x


def fast_sampler_for(denoiser: LatentDenoiser, coeffs: DDIMCoefficients, guidance_scale: float,
                     name: str = "mld", onednn: bool = False) -> FusedSampler | None:
    """A :class:`FusedSampler`, or None (logged once per call site's caller) when the denoiser's
    structure or the schedule does not allow it. ``onednn`` where this PyTorch cannot: one warning,
    and the fused kernel's products."""
    reason = unsupported_reason(denoiser) or (f"eta={coeffs.eta} > 0" if coeffs.eta != 0 else None)
    if reason is not None:
        log.warning("%s: fast sampler unavailable (%s); running the eager loop", name, reason)
        return None
    why_not = onednn_linear.unavailable() if onednn else None
    if why_not is not None:
        log.warning("%s: oneDNN linear unavailable (%s); the fast sampler keeps oneMKL's products", name, why_not)
    return FusedSampler(denoiser, coeffs, guidance_scale, onednn=onednn and why_not is None)
