"""Residual VQ-VAE motion tokenizer (MoMask Sec. 3.1).

1D-conv encoder/decoder with ``down_t`` stride-2 levels (2 levels = 4x temporal
downsampling, one token per 4 frames), ``depth`` dilated residual blocks per level
(dilation ``rate**k``, applied in reverse order as in the official ``Resnet1D`` default),
ReLU, no norm, dropout 0.2 inside the residual blocks. Module nesting mirrors
``models/vq/{encdec,resnet,model}.py`` of EricGuo5513/momask-codes so the official
``net_best_fid.tar`` keys (``encoder.model.2.1.model.0.conv1.weight`` ...) load as is.

Shapes: motion ``[B, T, D]`` (normalised features) -> tokens ``[B, T/4, Q]``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from methods.momask.quantizer import ResidualVQ


class ResBlock1D(nn.Module):
    """``x + Dropout(Conv1x1(ReLU(Conv3_dil(ReLU(x)))))`` on ``[B, C, T]``."""

    def __init__(self, width: int, dilation: int, dropout: float = 0.2) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.Identity(), nn.Identity()
        self.activation1, self.activation2 = nn.ReLU(), nn.ReLU()
        self.conv1 = nn.Conv1d(width, width, 3, 1, dilation, dilation)
        self.conv2 = nn.Conv1d(width, width, 1, 1, 0)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.activation1(self.norm1(x)))
        h = self.conv2(self.activation2(self.norm2(h)))
        return x + self.dropout(h)


class Resnet1D(nn.Module):
    """``depth`` residual blocks with dilations ``rate**k``, largest first (official default)."""

    def __init__(self, width: int, depth: int, rate: int) -> None:
        super().__init__()
        blocks = [ResBlock1D(width, rate ** k) for k in range(depth)][::-1]
        self.model = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def build_encoder(d_in: int, code_dim: int, down_t: int, width: int, depth: int, rate: int) -> nn.Module:
    """``[B, D, T]`` -> ``[B, code_dim, T / 2**down_t]``; wrapped as ``.model`` (official keys)."""
    blocks: list[nn.Module] = [nn.Conv1d(d_in, width, 3, 1, 1), nn.ReLU()]
    for _ in range(down_t):
        blocks.append(nn.Sequential(nn.Conv1d(width, width, 4, 2, 1), Resnet1D(width, depth, rate)))
    blocks.append(nn.Conv1d(width, code_dim, 3, 1, 1))
    enc = nn.Module()
    enc.model = nn.Sequential(*blocks)
    return enc


def build_decoder(d_in: int, code_dim: int, down_t: int, width: int, depth: int, rate: int) -> nn.Module:
    """``[B, code_dim, N]`` -> ``[B, D, N * 2**down_t]`` (nearest upsampling + conv)."""
    blocks: list[nn.Module] = [nn.Conv1d(code_dim, width, 3, 1, 1), nn.ReLU()]
    for _ in range(down_t):
        blocks.append(nn.Sequential(Resnet1D(width, depth, rate), nn.Upsample(scale_factor=2, mode="nearest"),
                                    nn.Conv1d(width, width, 3, 1, 1)))
    blocks += [nn.Conv1d(width, width, 3, 1, 1), nn.ReLU(), nn.Conv1d(width, d_in, 3, 1, 1)]
    dec = nn.Module()
    dec.model = nn.Sequential(*blocks)
    return dec


class RVQVAE(nn.Module):
    """Encoder + residual VQ + decoder (official ``models/vq/model.py::RVQVAE``)."""

    def __init__(self, d_in: int = 263, nb_code: int = 512, code_dim: int = 512, down_t: int = 2,
                 width: int = 512, depth: int = 3, dilation_growth_rate: int = 3, num_quantizers: int = 6,
                 quantize_dropout_prob: float = 0.2, mu: float = 0.99) -> None:
        super().__init__()
        self.d_in, self.nb_code, self.code_dim, self.down_t = d_in, nb_code, code_dim, down_t
        self.num_quantizers = num_quantizers
        self.encoder = build_encoder(d_in, code_dim, down_t, width, depth, dilation_growth_rate)
        self.decoder = build_decoder(d_in, code_dim, down_t, width, depth, dilation_growth_rate)
        self.quantizer = ResidualVQ(num_quantizers, nb_code, code_dim, mu, quantize_dropout_prob)

    @property
    def unit_length(self) -> int:
        return 2 ** self.down_t

    def forward(self, x: torch.Tensor, num_layers: int | None = None):
        """Training pass: ``x [B, T, D]`` -> ``(x_hat [B, T, D], commit_loss, perplexity)``.

        Codes are picked with Gumbel noise at temperature 0.5 in training, as the
        official ``RVQVAE.forward`` does (``sample_codebook_temp=0.5``).
        """
        z = self.encoder.model(x.permute(0, 2, 1).float())
        zq, _, commit, perp = self.quantizer(z, sample_codebook_temp=0.5, num_layers=num_layers)
        return self.decoder.model(zq).permute(0, 2, 1), commit, perp

    @torch.no_grad()
    def encode(self, x: torch.Tensor, num_layers: int | None = None) -> torch.Tensor:
        """``x [B, T, D]`` -> token ids ``[B, T / unit, Q]`` (nearest codes, deterministic)."""
        z = self.encoder.model(x.permute(0, 2, 1).float())
        idx, _ = self.quantizer.quantize(z, num_layers=num_layers)
        return idx

    def decode(self, idx: torch.Tensor) -> torch.Tensor:
        """Token ids ``[B, N, q]`` (-1 = absent layer/pad) -> motion ``[B, N * unit, D]``."""
        z = self.quantizer.get_codes_from_indices(idx).sum(0).permute(0, 2, 1)
        return self.decoder.model(z).permute(0, 2, 1)


def tokenizer_losses(model: RVQVAE, x: torch.Tensor, joints_num: int, w_explicit: float = 0.5,
                     w_commit: float = 0.02, num_layers: int | None = None) -> tuple[torch.Tensor, dict]:
    """Official RVQ objective (``models/vq/vq_trainer.py``).

    smooth-L1 reconstruction + ``w_explicit`` x smooth-L1 on the local joint positions
    (features ``4 : 4 + 3 (J-1)``; the official code names it ``loss_vel`` although it is
    on positions) + ``w_commit`` x commitment. ``x [B, T, D]`` normalised.
    """
    x_hat, commit, perp = model(x, num_layers=num_layers)
    rec = F.smooth_l1_loss(x_hat, x)
    sl = slice(4, 4 + 3 * (joints_num - 1))
    explicit = F.smooth_l1_loss(x_hat[..., sl], x[..., sl])
    loss = rec + w_explicit * explicit + w_commit * commit
    return loss, {"rec": float(rec.detach()), "explicit": float(explicit.detach()), "commit": float(commit.detach()),
                  "ppl": float(perp)}
