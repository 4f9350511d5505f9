"""MLD motion VAE: transformer encoder/decoder with long skip connections (paper Sec. 3.1).

Follows ``mld/models/architectures/mld_vae.py`` (``MldVae``, ``arch=encoder_decoder``,
``PE_TYPE=mld``, ``MLP_DIST=False``) of the official code:

- encoder: ``2n`` learnable distribution tokens (``global_motion_token``, the first ``n`` give
  μ, the last ``n`` give log σ²) are prepended to the embedded frames (``skel_embedding``);
  learned positions are added to the whole sequence; a skip-connected transformer encoder
  with padding masked; z = μ + σ·ε (``latent [B, n, d]``; MLD-n has ``n`` latent tokens).
- decoder: ``T`` zero queries plus learned positions attend to the latent ``z`` (memory) in a
  skip-connected transformer decoder, so any output length can be produced; ``final_layer``
  maps back to the feature width; padded frames are set to zero.

Key names equal the official ones (prefix ``vae.`` in the Lightning checkpoint).
"""

from __future__ import annotations

import torch
from torch import nn

from methods.mld.fast_sampler import encoder_forward, encoder_plan, encoder_unsupported
from methods.mld.layers import (
    LearnedPositionalEncoding,
    SkipTransformerDecoder,
    SkipTransformerEncoder,
    TransformerDecoderLayer,
    TransformerEncoderLayer,
    lengths_to_mask,
)


class MotionVAE(nn.Module):
    """features ``[B, T, nfeats]`` + lengths <-> latent ``[B, n, d]``.

    Args:
        nfeats: per-frame feature width (263 HumanML3D, 251 KIT).
        latent_size: number of latent tokens ``n`` (MLD-1: 1, MLD-7: 7).
        latent_dim: token width ``d`` (256 in the paper).
        ff_size, num_layers, num_heads, dropout, activation, normalize_before: transformer sizes
            (paper: 1024, 9, 4, 0.1, gelu, post-norm).
        max_len: size of the learned positional tables (official 500).
    """

    def __init__(self, nfeats: int, latent_size: int = 1, latent_dim: int = 256, ff_size: int = 1024,
                 num_layers: int = 9, num_heads: int = 4, dropout: float = 0.1, activation: str = "gelu",
                 normalize_before: bool = False, max_len: int = 500) -> None:
        super().__init__()
        self.nfeats, self.latent_size, self.latent_dim = nfeats, latent_size, latent_dim
        d = latent_dim
        self.query_pos_encoder = LearnedPositionalEncoding(d, max_len)
        self.query_pos_decoder = LearnedPositionalEncoding(d, max_len)
        enc_layer = TransformerEncoderLayer(d, num_heads, ff_size, dropout, activation, normalize_before)
        self.encoder = SkipTransformerEncoder(enc_layer, num_layers, nn.LayerNorm(d))
        dec_layer = TransformerDecoderLayer(d, num_heads, ff_size, dropout, activation, normalize_before)
        self.decoder = SkipTransformerDecoder(dec_layer, num_layers, nn.LayerNorm(d))
        self.global_motion_token = nn.Parameter(torch.randn(2 * latent_size, d))
        self.skel_embedding = nn.Linear(nfeats, d)
        self.final_layer = nn.Linear(d, nfeats)

    def encode_dist(self, features: torch.Tensor, lengths, lin=None) -> tuple[torch.Tensor, torch.Tensor]:
        """features ``[B, T, nfeats]`` -> (mu, logvar), each ``[B, n, d]``. ``lin``: a packed linear
        (:meth:`methods.common.onednn_linear.PackedWeights.linear`) for every product, the layers as
        separate ops and the last one on the distribution tokens only (inference; same math, other
        rounding); None: the eager modules."""
        B, T, _ = features.shape
        mask = lengths_to_mask(lengths, T, features.device)
        x = self.skel_embedding(features) if lin is None else lin(features, self.skel_embedding.weight,
                                                                  self.skel_embedding.bias)
        dist = self.global_motion_token[None].expand(B, -1, -1)
        xseq = self.query_pos_encoder(torch.cat([dist, x], dim=1))
        pad = torch.cat([torch.zeros(B, dist.shape[1], dtype=torch.bool, device=x.device), ~mask], dim=1)
        if lin is None:
            out = self.encoder(xseq, src_key_padding_mask=pad)[:, : dist.shape[1]]
        else:
            why = encoder_unsupported(self.encoder, self, "the VAE")
            if why is not None:
                raise ValueError(f"MotionVAE.encode_dist on packed products: {why}")
            out = encoder_forward(encoder_plan(self.encoder), xseq, keep=dist.shape[1], lin=lin,
                                  attn_mask=~pad[:, None, None, :])
        return out[:, : self.latent_size], out[:, self.latent_size:]

    def encode(self, features: torch.Tensor, lengths, sample: bool = True,
               generator: torch.Generator | None = None, lin=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> (z, mu, logvar) ``[B, n, d]``; ``sample=False`` returns z = mu (deterministic); ``lin``
        as in :meth:`encode_dist`."""
        mu, logvar = self.encode_dist(features, lengths, lin)
        if not sample:
            return mu, mu, logvar
        std = (0.5 * logvar).exp()
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + std * eps, mu, logvar

    def decode(self, z: torch.Tensor, lengths, max_len: int | None = None) -> torch.Tensor:
        """latent ``[B, n, d]`` -> features ``[B, T, nfeats]`` (T = max(lengths)), zero beyond each length."""
        lengths_t = torch.as_tensor(lengths, device=z.device)
        T = int(max_len if max_len is not None else lengths_t.max())
        mask = lengths_to_mask(lengths_t, T, z.device)
        queries = self.query_pos_decoder(torch.zeros(z.shape[0], T, self.latent_dim, device=z.device, dtype=z.dtype))
        out = self.final_layer(self.decoder(queries, z, tgt_key_padding_mask=~mask))
        return out * mask[..., None].to(out.dtype)

    def forward(self, features: torch.Tensor, lengths) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruction pass for training: -> (x_hat ``[B, T, nfeats]``, mu, logvar)."""
        z, mu, logvar = self.encode(features, lengths)
        return self.decode(z, lengths, max_len=features.shape[1]), mu, logvar


REC_LOSSES = ("smooth_l1_joints", "mse", "smooth_l1")


def vae_loss(x_hat: torch.Tensor, x: torch.Tensor, lengths, mu: torch.Tensor, logvar: torch.Tensor,
             kl_weight: float = 1e-4, rec_loss: str = "smooth_l1_joints", joints_fn=None,
             lambda_rec: float = 1.0, lambda_joint: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
    """VAE training loss: reconstruction + λ_KL · KL(N(mu, σ²) || N(0, I)).

    ``rec_loss``:

    - ``smooth_l1_joints`` (default; the authors' training): ``λ_rec · SmoothL1(x_hat, x) +
      λ_joint · SmoothL1(J(x_hat), J(x))``, both ``SmoothL1Loss(reduction='mean')`` over the whole
      zero-padded batch as in ``mld/models/losses/mld.py:79-82, 93-94, 101-104`` (``recons_feature``
      weighted by LAMBDA_REC, ``recons_joints`` by LAMBDA_JOINT) on the tensors of
      ``mld/models/modeltype/mld.py:476-520`` (``train_vae_forward``: joints from ``feats2joints`` =
      de-normalise + ``recover_from_ric``, padded frames included). ``joints_fn`` maps normalised
      features ``[B, T, D]`` to joints ``[B, T, J, 3]``.
    - ``mse`` (the paper's "MSE-loss and KL-loss"; a named variant): squared error averaged over
      valid frames only, no joint term.
    - ``smooth_l1``: the authors' feature term alone, averaged over valid frames.

    The KL is averaged over latent elements, as ``KLLoss``: ``kl_divergence(q, p).mean()``
    (``mld/models/losses/mld.py:155-162``).
    """
    if rec_loss not in REC_LOSSES:
        raise ValueError(f"vae.rec_loss must be one of {list(REC_LOSSES)}, got {rec_loss!r}")
    logs: dict[str, float] = {}
    if rec_loss == "smooth_l1_joints":
        if joints_fn is None:
            raise ValueError("vae.rec_loss=smooth_l1_joints needs joints_fn (features -> joint positions)")
        rec = torch.nn.functional.smooth_l1_loss(x_hat, x)
        joint = torch.nn.functional.smooth_l1_loss(joints_fn(x_hat), joints_fn(x))
        rec_total = lambda_rec * rec + lambda_joint * joint
        logs["joint"] = float(joint.detach())
    else:
        mask = lengths_to_mask(lengths, x.shape[1], x.device)[..., None].to(x.dtype)
        if rec_loss == "mse":
            err = (x_hat - x) ** 2
        else:
            err = torch.nn.functional.smooth_l1_loss(x_hat, x, reduction="none")
        rec = (err * mask).sum() / (mask.sum() * x.shape[-1]).clamp_min(1)
        rec_total = rec
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).mean()
    loss = rec_total + kl_weight * kl
    return loss, {"rec": float(rec.detach()), **logs, "kl": float(kl.detach())}
