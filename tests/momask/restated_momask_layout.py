"""OUR restatement of the official MoMask module layout (key names, shapes, stock-layer numerics).

NOT evidence of parity with the authors' code: it was written by us from reading their
module definitions, so it shares our reading of them. What it does check: the state-dict key names
and shapes we expect in the released files, and that our hand-written attention/encoder layers give
the same numbers as stock ``torch.nn.TransformerEncoder`` layers arranged that way. Parity with the
authors' modules themselves was checked once OUTSIDE the project (with the same
random weights every logit and the RVQ encode/decode agreed; the Gumbel sampler did not, and was
fixed). The distribution tests of the samplers are in ``tests/samplers/``.

Built from stock ``torch.nn`` layers in the structure of EricGuo5513/momask-codes
(``models/mask_transformer/transformer.py``: seq-first ``nn.TransformerEncoder`` with
``activation='gelu'``, condition token prepended, PE on motion tokens only; residual
transformer with ``--share_weight``), and the official RVQVAE key/shape list
(``models/vq/{encdec,resnet,residual_vq,quantizer}.py``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _pe(d: int, max_len: int = 5000) -> torch.Tensor:
    pos = torch.arange(max_len, dtype=torch.float)[:, None]
    div = torch.exp(torch.arange(0, d, 2).float() * (-math.log(10000.0) / d))
    pe = torch.zeros(max_len, d)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * div), torch.cos(pos * div)
    return pe[:, None, :]


class _Holder(nn.Module):
    pass


def _head(latent: int, out: int) -> nn.Module:
    h = _Holder()
    h.dense, h.LayerNorm, h.poseFinal = nn.Linear(latent, latent), nn.LayerNorm(latent, eps=1e-12), nn.Linear(latent, out)
    return h


class RestatedMaskTransformer(nn.Module):
    def __init__(self, num_tokens=512, code_dim=512, latent=384, ff=1024, layers=8, heads=6, dropout=0.2, clip_dim=512):
        super().__init__()
        self.input_process = _Holder()
        self.input_process.poseEmbedding = nn.Linear(code_dim, latent)
        self.position_enc = _Holder()
        self.position_enc.register_buffer("pe", _pe(latent))
        layer = nn.TransformerEncoderLayer(latent, heads, ff, dropout, activation="gelu")
        self.seqTransEncoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.cond_emb = nn.Linear(clip_dim, latent)
        self.output_process = _head(latent, num_tokens)
        self.token_emb = nn.Embedding(num_tokens + 2, code_dim)

    def trans_forward(self, ids, cond, padding_mask):
        """ids [B, N], cond [B, Dc], padding_mask [B, N] True = pad -> logits [B, N, K]."""
        x = self.input_process.poseEmbedding(self.token_emb(ids).permute(1, 0, 2))
        c = self.cond_emb(cond)[None]
        x = x + self.position_enc.pe[: x.shape[0]]
        pm = torch.cat([torch.zeros_like(padding_mask[:, :1]), padding_mask], 1)
        out = self.seqTransEncoder(torch.cat([c, x], 0), src_key_padding_mask=pm)[1:]
        o = self.output_process
        return o.poseFinal(o.LayerNorm(F.gelu(o.dense(out)))).permute(1, 0, 2)


class RestatedResidualTransformer(nn.Module):
    def __init__(self, num_tokens=512, nq=6, code_dim=512, latent=384, ff=1024, layers=8, heads=6, dropout=0.2,
                 clip_dim=512):
        super().__init__()
        self.nq = nq
        self.input_process = _Holder()
        self.input_process.poseEmbedding = nn.Linear(code_dim, latent)
        self.position_enc = _Holder()
        self.position_enc.register_buffer("pe", _pe(latent))
        layer = nn.TransformerEncoderLayer(latent, heads, ff, dropout, activation="gelu")
        self.seqTransEncoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.quant_emb = nn.Linear(nq, latent)
        self.cond_emb = nn.Linear(clip_dim, latent)
        self.output_process = _head(latent, code_dim)
        v = num_tokens + 1
        self.embed_proj_shared_weight = nn.Parameter(torch.randn(nq - 2, v, code_dim) * 0.02)
        self.token_embed_weight_ = nn.Parameter(torch.randn(1, v, code_dim) * 0.02)
        self.output_proj_weight_ = nn.Parameter(torch.randn(1, v, code_dim) * 0.02)

    def trans_forward(self, history, qids, cond, padding_mask):
        """history [B, N, C], qids [B] -> logits [B, N, K+1] (share_weight output projection)."""
        x = self.input_process.poseEmbedding(history.permute(1, 0, 2))
        q = self.quant_emb(F.one_hot(qids, self.nq).float())[None]
        c = self.cond_emb(cond)[None]
        x = x + self.position_enc.pe[: x.shape[0]]
        pm = torch.cat([torch.zeros_like(padding_mask[:, :2]), padding_mask], 1)
        out = self.seqTransEncoder(torch.cat([c, q, x], 0), src_key_padding_mask=pm)[2:]
        o = self.output_process
        h = o.poseFinal(o.LayerNorm(F.gelu(o.dense(out)))).permute(1, 2, 0)  # [B, C, N]
        w = torch.cat([self.embed_proj_shared_weight, self.output_proj_weight_])[qids - 1]
        return torch.einsum("bvc,bcn->bnv", w, h)


def restated_rvq_shapes(d_in=263, nb_code=512, code_dim=512, down_t=2, width=512, depth=3, nq=6) -> dict:
    """Key -> shape of the official RVQVAE state dict (``net_best_fid.tar['vq_model']``)."""
    s: dict[str, tuple] = {}

    def conv(prefix, cout, cin, k):
        s[prefix + ".weight"], s[prefix + ".bias"] = (cout, cin, k), (cout,)

    def resnet(prefix):
        for k in range(depth):
            conv(f"{prefix}.model.{k}.conv1", width, width, 3)
            conv(f"{prefix}.model.{k}.conv2", width, width, 1)

    conv("encoder.model.0", width, d_in, 3)
    for i in range(down_t):
        conv(f"encoder.model.{2 + i}.0", width, width, 4)
        resnet(f"encoder.model.{2 + i}.1")
    conv(f"encoder.model.{2 + down_t}", code_dim, width, 3)
    conv("decoder.model.0", width, code_dim, 3)
    for i in range(down_t):
        resnet(f"decoder.model.{2 + i}.0")
        conv(f"decoder.model.{2 + i}.2", width, width, 3)
    conv(f"decoder.model.{2 + down_t}", width, width, 3)
    conv(f"decoder.model.{4 + down_t}", d_in, width, 3)
    for q in range(nq):
        s[f"quantizer.layers.{q}.codebook"] = (nb_code, code_dim)
    return s
