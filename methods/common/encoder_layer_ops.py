"""A post-norm transformer encoder layer at inference as separate ops, its products pluggable (ours, for speed).

MLD's denoiser layer (DETR post-norm, ``mld/models/operator/cross_attention.py``) and MoMask's
(``nn.TransformerEncoderLayer(activation='gelu')``) share one structure: in-projection, scaled
dot-product attention, out-projection, add & LayerNorm, feed-forward, add & LayerNorm. Their fast
paths call this one function with the layer's weights in the argument order of
``torch._transformer_encoder_layer_fwd`` (the first 17 entries), and pass the product they want:
``F.linear`` (oneMKL), or oneDNN's packed linear (:mod:`methods.common.onednn_linear`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def layer_by_ops(args: tuple, x: torch.Tensor, keep: int | None = None, lin=F.linear,
                 attn_mask: torch.Tensor | None = None) -> torch.Tensor:
    """The layer of ``args`` on ``x [B, L, d]``, its four products through ``lin`` (``F.linear``'s
    signature). ``keep``: computed for the first ``keep`` tokens only (queries, out-projection, norms
    and feed-forward are per token; keys and values still come from all tokens): the same values as
    the full layer's first ``keep`` rows, with a fraction of its FLOPs. ``attn_mask``: SDPA's boolean
    mask, True = attend (``[B, 1, 1, L]`` for key padding)."""
    d, h, w_in, b_in, w_out, b_out, use_gelu, _, eps, n1w, n1b, n2w, n2b, w1, b1, w2, b2 = args[:17]
    B, L, _ = x.shape
    if keep is None:
        q, k, v = lin(x, w_in, b_in).view(B, L, 3, h, d // h).permute(2, 0, 3, 1, 4)
        n = L
    else:
        q = lin(x[:, :keep], w_in[:d], b_in[:d]).view(B, keep, h, d // h).transpose(1, 2)
        k, v = lin(x, w_in[d:], b_in[d:]).view(B, L, 2, h, d // h).permute(2, 0, 3, 1, 4)
        x, n = x[:, :keep], keep
    att = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask).transpose(1, 2).reshape(B, n, d)
    y = F.layer_norm(x + lin(att, w_out, b_out), (d,), n1w, n1b, eps)
    ff = lin((F.gelu if use_gelu else F.relu)(lin(y, w1, b1)), w2, b2)
    return F.layer_norm(y + ff, (d,), n2w, n2b, eps)
