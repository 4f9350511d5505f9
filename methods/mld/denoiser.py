"""MLD latent denoiser ε_θ(z_t, t, τ(c)) (paper Sec. 3.2-3.3).

Follows ``mld/models/architectures/mld_denoiser.py`` (``MldDenoiser``) of the official code:

- time: sinusoidal ``Timesteps`` (flip_sin_to_cos, shift 0) of width ``text_encoded_dim`` for
  text (``latent_dim`` for actions) -> ``TimestepEmbedding`` (Linear-SiLU-Linear) to ``d``.
- text condition: the frozen encoder's pooled embedding ``[B, m, text_encoded_dim]`` goes
  through ``emb_proj = ReLU -> Linear(text_encoded_dim, d)`` (absent when the widths match).
  Action condition: a learnable class table ``emb_proj.action_embedding [nclasses, d]``;
  the null action is the zero vector (official ``EmbedAction.mask_cond``).
- ``arch="trans_enc"`` (paper default, "concatenation"): tokens ``[z_t ; time ; cond]`` plus
  learned positions through a skip-connected transformer encoder; the first ``n`` outputs
  are the predicted noise. ``arch="trans_dec"`` (the cross-attention ablation): ``z_t`` (+
  positions) attends to ``[time ; cond]`` (+ positions) in a transformer decoder.
- ``skip_connect=False`` uses a plain encoder stack (the skip-connection ablation).

Shapes: sample ``[B, n, d]``, timestep ``[]`` or ``[B]``, output ``[B, n, d]``.
"""

from __future__ import annotations

import torch
from torch import nn

from methods.mld.layers import (
    LearnedPositionalEncoding,
    SkipTransformerEncoder,
    TransformerDecoder,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)


class ActionEmbedding(nn.Module):
    """Learnable action table τ^a; index ``-1`` is the empty condition (zero vector).

    actions ``[B]`` long -> ``[B, 1, d]``.
    """

    def __init__(self, nclasses: int, latent_dim: int) -> None:
        super().__init__()
        self.action_embedding = nn.Parameter(torch.empty(nclasses, latent_dim))
        nn.init.xavier_uniform_(self.action_embedding)  # official _reset_parameters

    def forward(self, actions: torch.Tensor) -> torch.Tensor:
        actions = actions.long().reshape(-1)
        if int(actions.max()) >= self.action_embedding.shape[0]:
            raise ValueError(f"action id {int(actions.max())} >= nclasses {self.action_embedding.shape[0]}")
        null = actions < 0
        out = self.action_embedding[actions.clamp_min(0)]
        out = out * (~null)[:, None].to(out.dtype)
        return out[:, None, :]


class LatentDenoiser(nn.Module):
    """ε-prediction transformer over the motion latent (see module docstring).

    Args:
        latent_size, latent_dim: latent shape ``n x d`` (paper MLD-1: 1 x 256).
        condition: ``"text"`` or ``"action"``.
        text_encoded_dim: width of the frozen text embedding (CLIP-L 768, MiniLM 384).
        nclasses: number of action classes (action condition only).
        arch: ``"trans_enc"`` (concatenation, default) or ``"trans_dec"`` (cross-attention).
        skip_connect: long skip connections in the encoder stack (paper default True).
    """

    def __init__(self, latent_size: int = 1, latent_dim: int = 256, condition: str = "text",
                 text_encoded_dim: int = 768, nclasses: int = 0, ff_size: int = 1024, num_layers: int = 9,
                 num_heads: int = 4, dropout: float = 0.1, activation: str = "gelu",
                 normalize_before: bool = False, arch: str = "trans_enc", skip_connect: bool = True,
                 flip_sin_to_cos: bool = True, freq_shift: float = 0.0, max_len: int = 500) -> None:
        super().__init__()
        # lazy: diffusers costs ~1.7 CPU-s to import (torch._dynamo, sympy); planning a run needs none
        from diffusers.models.embeddings import TimestepEmbedding, Timesteps

        d = latent_dim
        self.latent_size, self.latent_dim, self.condition, self.arch = latent_size, d, condition, arch
        self.text_encoded_dim = text_encoded_dim
        if condition == "text":
            self.time_proj = Timesteps(text_encoded_dim, flip_sin_to_cos, freq_shift)
            self.time_embedding = TimestepEmbedding(text_encoded_dim, d)
            if text_encoded_dim != d:  # official: ReLU before the projection ("todo debug why relu")
                self.emb_proj = nn.Sequential(nn.ReLU(), nn.Linear(text_encoded_dim, d))
        elif condition == "action":
            if nclasses <= 0:
                raise ValueError("denoiser.nclasses must be > 0 for the action condition")
            self.time_proj = Timesteps(d, flip_sin_to_cos, freq_shift)
            self.time_embedding = TimestepEmbedding(d, d)
            self.emb_proj = ActionEmbedding(nclasses, d)
        else:
            raise ValueError(f"denoiser.condition must be 'text' or 'action', got {condition!r}")
        self.query_pos = LearnedPositionalEncoding(d, max_len)
        self.mem_pos = LearnedPositionalEncoding(d, max_len)
        if arch == "trans_enc":
            layer = TransformerEncoderLayer(d, num_heads, ff_size, dropout, activation, normalize_before)
            self.encoder = (SkipTransformerEncoder(layer, num_layers, nn.LayerNorm(d)) if skip_connect
                            else TransformerEncoder(layer, num_layers))
        elif arch == "trans_dec":
            layer = TransformerDecoderLayer(d, num_heads, ff_size, dropout, activation, normalize_before)
            self.decoder = TransformerDecoder(layer, num_layers, nn.LayerNorm(d))
        else:
            raise ValueError(f"denoiser.arch must be 'trans_enc' or 'trans_dec', got {arch!r}")

    def embed_condition(self, cond: torch.Tensor) -> torch.Tensor:
        """Text ``[B, m, text_encoded_dim]`` or actions ``[B]`` -> condition tokens ``[B, m, d]``."""
        if self.condition == "action":
            return self.emb_proj(cond)
        if cond.dim() == 2:
            cond = cond[:, None, :]
        return self.emb_proj(cond) if hasattr(self, "emb_proj") else cond

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor | int, cond: torch.Tensor) -> torch.Tensor:
        B = sample.shape[0]
        t = torch.as_tensor(timestep, device=sample.device).reshape(-1).expand(B)
        time_emb = self.time_embedding(self.time_proj(t).to(sample.dtype))[:, None, :]  # [B, 1, d]
        emb = torch.cat([time_emb, self.embed_condition(cond)], dim=1)  # [B, 1 + m, d]
        if self.arch == "trans_enc":
            tokens = self.encoder(self.query_pos(torch.cat([sample, emb], dim=1)))
            return tokens[:, : sample.shape[1]]
        return self.decoder(self.query_pos(sample), self.mem_pos(emb))
