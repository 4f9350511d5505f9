"""Hard token mining (HGM3 Sec. 3.2), after Hard Patches Mining (Wang et al., CVPR 2023).

- :class:`LossPredictor` (teacher G): a bidirectional transformer that reads the
  *unmasked* layer-0 tokens and the text condition tokens and outputs one score per token;
  its scores are meant to order tokens by the student's reconstruction loss.
- :func:`ranking_loss`: for every pair (i, j) of masked, valid tokens with different true
  losses, binary cross-entropy of ``sigmoid(s_j - s_i)`` against ``1[l_j > l_i]``, averaged
  over the valid pairs (HPM ``models_mae_learn_loss.py`` relative loss; HGM3 Eq. 5 is a
  ranking objective per the reviews).
- :func:`hard_mask`: of the ``round(gamma(tau) * len)`` tokens to mask, ``round(alpha_t *
  count)`` are the highest predicted-loss tokens, the rest random among the others.
- :func:`alpha_at`: ``alpha_t = alpha_0 + (t / T) (alpha_T - alpha_0)`` (easy-to-hard).

HGM3's own predictor size, alpha endpoints and loss weight are not available (no PDF,
no code); defaults are documented in ``configs/method/hgm3.yaml`` and the README.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from methods.momask.transformer import Encoder, PositionalEncoding, _init_weights


class LossPredictor(nn.Module):
    """Teacher G: ``(ids [B, N], cond [B, Lc, Dc], pad [B, N], cond_pad) -> scores [B, N]``."""

    def __init__(self, num_tokens: int, code_dim: int, cond_dim: int, latent_dim: int = 384, ff_size: int = 1024,
                 num_layers: int = 4, num_heads: int = 6, dropout: float = 0.1) -> None:
        super().__init__()
        self.token_emb = nn.Embedding(num_tokens + 2, code_dim)
        self.in_proj = nn.Linear(code_dim, latent_dim)
        self.cond_emb = nn.Linear(cond_dim, latent_dim)
        self.position_enc = PositionalEncoding(latent_dim, dropout)
        self.encoder = Encoder(latent_dim, num_heads, ff_size, dropout, num_layers)
        self.head = nn.Sequential(nn.Linear(latent_dim, latent_dim), nn.GELU(), nn.Linear(latent_dim, 1))
        self.apply(_init_weights)

    def forward(self, ids, cond, pad, cond_pad=None) -> torch.Tensor:
        c, x = self.cond_emb(cond), self.in_proj(self.token_emb(ids))
        seq = self.position_enc(torch.cat([c, x], 1))
        cpad = torch.zeros(c.shape[:2], dtype=torch.bool, device=ids.device) if cond_pad is None else cond_pad
        h = self.encoder(seq, ~torch.cat([cpad, pad], 1))[:, c.shape[1]:]
        return self.head(h)[..., 0]


def ranking_loss(scores: torch.Tensor, losses: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Pairwise ranking BCE. ``scores, losses [B, N]``; ``valid [B, N]`` bool (tokens with a true loss)."""
    diff = scores[:, None, :] - scores[:, :, None]  # [b, i, j] = s_j - s_i
    target = (losses[:, None, :] > losses[:, :, None]).float()
    pair = valid[:, :, None] & valid[:, None, :] & (losses[:, None, :] != losses[:, :, None])
    if not bool(pair.any()):
        return scores.sum() * 0.0
    bce = F.binary_cross_entropy_with_logits(diff, target, reduction="none")
    return (bce * pair).sum() / pair.sum()


def alpha_at(progress: float, alpha_0: float, alpha_T: float) -> float:
    """Hard-token share at training progress ``t/T`` in [0, 1] (linear)."""
    p = min(max(float(progress), 0.0), 1.0)
    return alpha_0 + p * (alpha_T - alpha_0)


def hard_mask(pred: torch.Tensor, pad: torch.Tensor, ratio: torch.Tensor, alpha: float) -> torch.Tensor:
    """Mask ``[B, N]``: ``count = max(1, round(ratio * len))`` tokens per sample, of which
    ``round(alpha * count)`` are the predicted-hardest valid tokens, the rest random valid tokens."""
    lens = (~pad).sum(1)
    count = (ratio * lens).round().clamp(min=1)
    n_hard = (alpha * count).round().clamp(max=count)
    neg = torch.finfo(pred.dtype).min
    hard_rank = torch.where(pad, neg, pred).argsort(-1, descending=True).argsort(-1)
    hard = (hard_rank < n_hard[:, None]) & ~pad
    noise = torch.rand(pred.shape, device=pred.device).masked_fill(pad | hard, 2.0)
    rand_rank = noise.argsort(-1).argsort(-1)
    rest = (rand_rank < (count - n_hard)[:, None]) & ~pad & ~hard
    return hard | rest
