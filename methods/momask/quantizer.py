"""Residual vector quantizer with EMA codebooks and dead-code reset (MoMask RVQ).

Written here instead of using ``vector_quantize_pytorch.ResidualVQ`` because that
library cannot be set to the official numerics exactly (source: MoMask
``models/vq/quantizer.py::QuantizeEMAReset`` and ``models/vq/residual_vq.py``):

- the codebook is initialised from the *first training batch* of encoder outputs
  (tiled with 0.01/sqrt(C) noise when the batch has fewer vectors than codes), not by
  k-means or a random normal;
- EMA of code sums and counts with decay ``mu`` and **no** Laplace smoothing;
- every step, every code whose EMA count falls below 1.0 is replaced by a random
  (tiled) encoder output of the current batch (the library resets with a threshold on
  a Laplace-smoothed cluster size and samples differently);
- during training the nearest code is chosen with Gumbel noise on ``-distance`` at
  temperature 0.5 (``RVQVAE.forward`` passes ``sample_codebook_temp=0.5``);
- commitment loss is ``mse(x, sg(q))`` per layer, averaged over the layers used; no
  codebook loss (EMA replaces it);
- quantizer dropout: with probability ``p`` the layers after a random index in
  ``[0, Q)`` are skipped for the whole batch (their indices are -1).

State-dict keys match the official module (``layers.{i}.codebook``); the EMA
statistics are extra buffers (``code_sum``, ``code_count``, ``initted``) so that our
checkpoints resume exactly; :mod:`methods.momask.convert` fills them when loading an
official checkpoint (which stores only ``codebook``).
"""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F
from torch import nn

from methods.common.sampling import check_finite, gumbel_argmax


def _gumbel_argmax(logits: torch.Tensor, temperature: float, stochastic: bool) -> torch.Tensor:
    """argmax of ``logits/temperature + Gumbel`` when stochastic, plain argmax otherwise."""
    if stochastic and temperature > 0:
        return gumbel_argmax(logits, temperature, name="-code_distance")
    return check_finite("-code_distance", logits).argmax(dim=-1)


class EMAResetQuantizer(nn.Module):
    """One codebook ``[K, C]`` updated by EMA with dead-code reset.

    forward: ``x [B, C, N]`` -> ``(x_q [B, C, N] straight-through, idx [B, N], commit, perplexity)``.
    """

    def __init__(self, nb_code: int, code_dim: int, mu: float = 0.99) -> None:
        super().__init__()
        self.nb_code, self.code_dim, self.mu = nb_code, code_dim, mu
        self.register_buffer("codebook", torch.zeros(nb_code, code_dim))
        self.register_buffer("code_sum", torch.zeros(nb_code, code_dim))
        self.register_buffer("code_count", torch.zeros(nb_code))
        self.register_buffer("initted", torch.zeros((), dtype=torch.bool))

    def _tile(self, x: torch.Tensor) -> torch.Tensor:
        """At least ``nb_code`` rows: repeat ``x [M, C]`` with small noise when M < K (official)."""
        m = x.shape[0]
        if m >= self.nb_code:
            return x
        reps = (self.nb_code + m - 1) // m
        out = x.repeat(reps, 1)
        return out + torch.randn_like(out) * (0.01 / self.code_dim ** 0.5)

    @torch.no_grad()
    def _init(self, x: torch.Tensor) -> None:
        cb = self._tile(x)[: self.nb_code]
        self.codebook.copy_(cb)
        self.code_sum.copy_(cb)
        self.code_count.fill_(1.0)
        self.initted.fill_(True)

    def nearest(self, x: torch.Tensor, temperature: float = 0.0) -> torch.Tensor:
        """Code index per row of ``x [M, C]`` (Gumbel-perturbed during training)."""
        dist = (x.pow(2).sum(-1, keepdim=True) - 2 * x @ self.codebook.t()
                + self.codebook.pow(2).sum(-1)[None])
        return _gumbel_argmax(-dist, temperature, stochastic=self.training)

    def dequantize(self, idx: torch.Tensor) -> torch.Tensor:
        """``idx [...]`` -> code vectors ``[..., C]``."""
        return F.embedding(idx, self.codebook)

    @torch.no_grad()
    def _ema_update(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        onehot = F.one_hot(idx, self.nb_code).to(x.dtype)  # [M, K]
        code_sum = onehot.t() @ x
        code_count = onehot.sum(0)
        rand = self._tile(x)[: self.nb_code]
        self.code_sum.mul_(self.mu).add_((1 - self.mu) * code_sum)
        self.code_count.mul_(self.mu).add_((1 - self.mu) * code_count)
        usage = (self.code_count >= 1.0).to(x.dtype)[:, None]
        updated = self.code_sum / self.code_count[:, None].clamp(min=1e-12)
        self.codebook.copy_(usage * updated + (1 - usage) * rand)
        return _perplexity(code_count)

    def forward(self, x: torch.Tensor, temperature: float = 0.0):
        b, c, n = x.shape
        flat = x.permute(0, 2, 1).reshape(-1, c)
        if self.training and not bool(self.initted):
            self._init(flat.detach())
        idx = self.nearest(flat, temperature)
        xd = self.dequantize(idx)
        if self.training:
            perplexity = self._ema_update(flat.detach(), idx)
        else:
            perplexity = _perplexity(torch.bincount(idx, minlength=self.nb_code).to(x.dtype))
        commit = F.mse_loss(flat, xd.detach())
        xd = flat + (xd - flat).detach()  # straight-through estimator
        return xd.view(b, n, c).permute(0, 2, 1).contiguous(), idx.view(b, n), commit, perplexity


def _perplexity(counts: torch.Tensor) -> torch.Tensor:
    prob = counts / counts.sum().clamp(min=1e-12)
    return torch.exp(-(prob * torch.log(prob + 1e-7)).sum())


class ResidualVQ(nn.Module):
    """``Q`` quantizers applied to successive residuals (MoMask Sec. 3.1 / Eq. 1).

    forward: ``x [B, C, N]`` -> ``(sum of quantized [B, C, N], idx [B, N, Q] (-1 = dropped),
    mean commitment loss, mean perplexity)``.
    """

    def __init__(self, num_quantizers: int, nb_code: int, code_dim: int, mu: float = 0.99,
                 quantize_dropout_prob: float = 0.2, quantize_dropout_cutoff_index: int = 0) -> None:
        super().__init__()
        self.num_quantizers = num_quantizers
        self.layers = nn.ModuleList(EMAResetQuantizer(nb_code, code_dim, mu) for _ in range(num_quantizers))
        self.quantize_dropout_prob = quantize_dropout_prob
        self.quantize_dropout_cutoff_index = quantize_dropout_cutoff_index

    @property
    def codebooks(self) -> torch.Tensor:
        """``[Q, K, C]``."""
        return torch.stack([layer.codebook for layer in self.layers])

    def get_codes_from_indices(self, idx: torch.Tensor) -> torch.Tensor:
        """``idx [B, N, q<=Q]`` (-1 = absent) -> per-layer codes ``[Q, B, N, C]`` (zeros where absent)."""
        if idx.shape[-1] < self.num_quantizers:
            idx = F.pad(idx, (0, self.num_quantizers - idx.shape[-1]), value=-1)
        out = []
        for q, layer in enumerate(self.layers):
            iq = idx[..., q]
            code = layer.dequantize(iq.clamp(min=0))
            out.append(code.masked_fill((iq < 0)[..., None], 0.0))
        return torch.stack(out)

    def forward(self, x: torch.Tensor, sample_codebook_temp: float = 0.0, num_layers: int | None = None):
        """``num_layers`` forces the first ``num_layers`` layers only (ablation/tests)."""
        drop = self.training and random.random() < self.quantize_dropout_prob
        # official: layers with index > start are dropped (randrange(cutoff, Q)), so the
        # kept count is start+1 in [cutoff+1, Q]
        last = random.randrange(self.quantize_dropout_cutoff_index, self.num_quantizers) if drop \
            else self.num_quantizers - 1
        if num_layers is not None:
            last = num_layers - 1
        residual, total = x, torch.zeros_like(x)
        idxs, losses, perps = [], [], []
        for q, layer in enumerate(self.layers):
            if q > last:
                idxs.append(torch.full((x.shape[0], x.shape[-1]), -1, dtype=torch.long, device=x.device))
                continue
            xq, iq, loss, perp = layer(residual, sample_codebook_temp)
            residual = residual - xq.detach()
            total = total + xq
            idxs.append(iq)
            losses.append(loss)
            perps.append(perp)
        return total, torch.stack(idxs, -1), sum(losses) / len(losses), sum(perps) / len(perps)

    @torch.no_grad()
    def quantize(self, x: torch.Tensor, num_layers: int | None = None):
        """Deterministic encoding (all layers): ``x [B, C, N]`` -> ``(idx [B, N, Q], codes [Q, B, C, N])``."""
        residual, idxs, codes = x, [], []
        for q, layer in enumerate(self.layers):
            if num_layers is not None and q >= num_layers:
                idxs.append(torch.full((x.shape[0], x.shape[-1]), -1, dtype=torch.long, device=x.device))
                continue
            flat = residual.permute(0, 2, 1).reshape(-1, residual.shape[1])
            iq = layer.nearest(flat, 0.0).view(x.shape[0], x.shape[-1])  # temperature 0: argmin
            xq = layer.dequantize(iq).permute(0, 2, 1)
            residual = residual - xq
            idxs.append(iq)
            codes.append(xq)
        return torch.stack(idxs, -1), torch.stack(codes)
