"""MacDiff networks: the semantic encoder (masked ViT) and the AdaLN-modulated denoising decoder.

Shapes (paper scale, NTU): skeleton window ``[N, T=120, V=25, C=3]`` per person -> patch
embedding (Conv2d, kernel = stride = 4 frames x 1 joint) -> grid ``[N, TP=30, VP=25, D=256]``
-> 750 tokens ordered ``tp * VP + vp``. Each token's target is the 4x1x3 = 12 values of its
patch, flattened in (frame, joint, xyz) order as the official ``patchify`` does.

Module layout and numerics follow the official ``model/transformer_macdiff.py``
(``Wenrui-Shen/MacDiff@692888f``): pre-LN ViT blocks with qkv bias, GELU MLP ratio 4,
separate learned temporal ``[1, TP, 1, D]`` and joint ``[1, 1, VP, D]`` embeddings (trunc-normal
0.02), xavier-uniform linears; the decoder replaces every LayerNorm of its blocks by a
feature-modulation layer ``zs * (ts * LN(x) + tb) + zb`` with (zs, zb) from the per-token
condition and (ts, tb) from a 64-d sinusoidal timestep embedding. Attention runs through
``scaled_dot_product_attention`` (same math as the official explicit softmax, scale
``head_dim ** -0.5``). Parameter names differ from the official ones only by the
``encoder.`` / ``decoder.`` prefixes (see ``convert.py``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class DropPath(nn.Module):
    """Stochastic depth per sample (used only by the fine-tuning copy of the encoder)."""

    def __init__(self, p: float = 0.0) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Attention(nn.Module):
    """Multi-head self-attention ``[B, L, D] -> [B, L, D]`` via SDPA."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    """Pre-LN transformer block of the encoder."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, drop_path: float = 0.0) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class FeatureModulation(nn.Module):
    """AdaLN of the decoder: ``zs * (ts * LN(x) + tb) + zb``; z ``[B, L, D]``, t_emb ``[B, Dt]``.

    Per-layer condition masking (official ``FeatureModulation.forward``,
    ``model/transformer_macdiff.py:127`` at 692888f): with probability ``layer_mask_ratio`` ONE
    draw per call replaces the condition of the whole batch by zeros. The official draw has no
    train/eval check, so it also acts while sampling; ``layer_mask_train_only`` limits it to
    training (our switch, off by default).
    """

    def __init__(self, dim: int, dim_t: int, layer_mask_ratio: float = 0.0, layer_mask_train_only: bool = False) -> None:
        super().__init__()
        self.dim = dim
        self.fc_z = nn.Linear(dim, dim * 2)
        self.fc_t = nn.Linear(dim_t, dim * 2)
        self.norm = nn.LayerNorm(dim)
        self.layer_mask_ratio, self.layer_mask_train_only = float(layer_mask_ratio), bool(layer_mask_train_only)

    def forward(self, x: torch.Tensor, z: torch.Tensor, t_emb: torch.Tensor) -> torch.Tensor:
        if self.layer_mask_ratio > 0 and (self.training or not self.layer_mask_train_only):
            if float(torch.rand(())) < self.layer_mask_ratio:  # one draw for the whole batch
                z = torch.zeros_like(z)
        zs, zb = self.fc_z(z).chunk(2, dim=-1)
        ts, tb = self.fc_t(t_emb)[:, None].chunk(2, dim=-1)
        return zs * (ts * self.norm(x) + tb) + zb


class DecoderBlock(nn.Module):
    def __init__(self, dim: int, num_heads: int, dim_t: int, mlp_ratio: float = 4.0, layer_mask_ratio: float = 0.0,
                 layer_mask_train_only: bool = False) -> None:
        super().__init__()
        self.norm1 = FeatureModulation(dim, dim_t, layer_mask_ratio, layer_mask_train_only)
        self.attn = Attention(dim, num_heads)
        self.norm2 = FeatureModulation(dim, dim_t, layer_mask_ratio, layer_mask_train_only)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, z: torch.Tensor, t_emb: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x, z, t_emb))
        return x + self.mlp(self.norm2(x, z, t_emb))


class SkeleEmbed(nn.Module):
    """``[N, T, V, C] -> [N, TP, VP, D]`` by a strided Conv2d over (frames, joints)."""

    def __init__(self, dim_in: int, dim: int, t_patch: int, patch: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(dim_in, dim, kernel_size=(t_patch, patch), stride=(t_patch, patch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding ``[B] -> [B, dim]``, cos half first (guided-diffusion convention)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    return torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1) if dim % 2 else emb


def _init_weights(m: nn.Module) -> None:
    # official _init_weights: xavier-uniform linears with zero bias, LayerNorm (1, 0); conv keeps torch default
    if isinstance(m, nn.Linear):
        nn.init.xavier_uniform_(m.weight)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm) and m.weight is not None:
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


class MacDiffEncoder(nn.Module):
    """Semantic encoder: patch embedding + ViT; visible tokens in, ``[N, L_vis, D]`` latent out."""

    def __init__(self, *, dim_in: int = 3, dim_feat: int = 256, depth: int = 8, num_heads: int = 8,
                 mlp_ratio: float = 4.0, num_frames: int = 120, num_joints: int = 25, t_patch_size: int = 4,
                 patch_size: int = 1, drop_path: float = 0.0, **_: object) -> None:
        super().__init__()
        if num_frames % t_patch_size or num_joints % patch_size:
            raise ValueError(f"num_frames={num_frames}/num_joints={num_joints} not divisible by the patch size")
        self.dim_feat, self.num_frames, self.num_joints = dim_feat, num_frames, num_joints
        self.tp, self.vp = num_frames // t_patch_size, num_joints // patch_size
        self.joints_embed = SkeleEmbed(dim_in, dim_feat, t_patch_size, patch_size)
        dpr = torch.linspace(0, drop_path, depth).tolist()
        self.blocks = nn.ModuleList(Block(dim_feat, num_heads, mlp_ratio, dpr[i]) for i in range(depth))
        self.norm = nn.LayerNorm(dim_feat)
        self.temp_embed = nn.Parameter(torch.zeros(1, self.tp, 1, dim_feat))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1, self.vp, dim_feat))
        nn.init.trunc_normal_(self.temp_embed, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.apply(_init_weights)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised skeletons ``[N, T, V, C]`` -> position-embedded tokens ``[N, L, D]``."""
        n, t, v, _ = x.shape
        if t != self.num_frames or v != self.num_joints:
            raise ValueError(f"encoder expects {self.num_frames} frames x {self.num_joints} joints, got {t} x {v}")
        tok = self.joints_embed(x) + self.pos_embed + self.temp_embed
        return tok.reshape(n, self.tp * self.vp, self.dim_feat)

    def forward_tokens(self, tok: torch.Tensor) -> torch.Tensor:
        for blk in self.blocks:
            tok = blk(tok)
        return self.norm(tok)

    def forward_masked(self, x: torch.Tensor, mask_ratio: float, generator: torch.Generator | None = None,
                       noise: torch.Tensor | None = None):
        """Random masking as the official ``random_masking`` (argsort of uniform noise).

        ``noise [N, L]`` (optional) replaces the uniform noise: the tokens with the largest
        values are masked (:func:`motion_aware_noise` gives the official motion-aware rule).
        Returns ``latent [N, L_keep, D]``, ``mask [N, L]`` (1 = masked), ``ids_restore [N, L]``.
        """
        tok = self.embed(x)
        n, length, d = tok.shape
        keep = round(length * (1 - mask_ratio))
        if noise is None:
            noise = torch.rand(n, length, device=x.device, generator=generator)
        elif noise.shape != (n, length):
            raise ValueError(f"masking noise must be [{n}, {length}], got {tuple(noise.shape)}")
        ids_shuffle = noise.argsort(dim=1)
        ids_restore = ids_shuffle.argsort(dim=1)
        kept = torch.gather(tok, 1, ids_shuffle[:, :keep, None].expand(-1, -1, d))
        mask = torch.ones(n, length, device=x.device)
        mask[:, :keep] = 0
        mask = torch.gather(mask, 1, ids_restore)
        return self.forward_tokens(kept), mask, ids_restore

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Unmasked features ``[N, T, V, C] -> [N, TP, VP, D]`` (downstream use)."""
        return self.forward_tokens(self.embed(x)).reshape(x.shape[0], self.tp, self.vp, self.dim_feat)


class MacDiffDecoder(nn.Module):
    """Denoiser ``(x_t [N, T, V, C], t [N], z [N, L, D]) -> eps patches [N, L, t_patch * patch * C]``."""

    def __init__(self, *, dim_in: int = 3, dim_feat: int = 256, decoder_depth: int = 5, num_heads: int = 8,
                 mlp_ratio: float = 4.0, num_frames: int = 120, num_joints: int = 25, t_patch_size: int = 4,
                 patch_size: int = 1, dim_t_embed: int = 64, layer_mask_ratio: float = 0.0,
                 layer_mask_train_only: bool = False, **_: object) -> None:
        super().__init__()
        self.dim_feat, self.dim_t = dim_feat, dim_t_embed
        self.tp, self.vp = num_frames // t_patch_size, num_joints // patch_size
        self.embed = SkeleEmbed(dim_in, dim_feat, t_patch_size, patch_size)
        self.blocks = nn.ModuleList(DecoderBlock(dim_feat, num_heads, dim_t_embed, mlp_ratio, layer_mask_ratio,
                                                 layer_mask_train_only) for _ in range(decoder_depth))
        self.norm = nn.LayerNorm(dim_feat)
        self.temp_embed = nn.Parameter(torch.zeros(1, self.tp, 1, dim_feat))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1, self.vp, dim_feat))
        nn.init.trunc_normal_(self.temp_embed, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.pred = nn.Linear(dim_feat, t_patch_size * patch_size * dim_in)
        self.apply(_init_weights)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        n = x_t.shape[0]
        h = (self.embed(x_t) + self.pos_embed + self.temp_embed).reshape(n, self.tp * self.vp, self.dim_feat)
        t_emb = timestep_embedding(t, self.dim_t).to(h.dtype)  # bf16 sampling copy: follow the weights
        for blk in self.blocks:
            h = blk(h, z, t_emb)
        return self.pred(self.norm(h))


def motion_aware_noise(x_raw: torch.Tensor, t_patch: int, patch: int, tau: float,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """Masking noise of the official ``motion_aware_random_masking`` (``model/transformer_macdiff.py``
    lines 404-447 at 692888f; MAMP's rule): ``[N, T, V, C]`` CLEAN raw skeletons -> ``[N, L]``.

    Motion of token ``(tp, vp)`` = mean over its patch values of ``|patch(tp) - patch(tp-1)|``
    (token 0 copies token 1), divided by ``tau * max`` over the sample; ``p = softmax`` over
    the tokens and ``noise = log p + Gumbel``. Sorting ascending and masking the largest values
    masks ``L - keep`` tokens drawn without replacement with probabilities ``p``: high-motion
    tokens are masked more often. The official code computes this from ``x_orig``, the clean
    sequence before ``self_shift`` and normalisation.
    """
    n, t, v, c = x_raw.shape
    pt = patchify(x_raw.float(), t_patch, patch).reshape(n, t // t_patch, v // patch, -1)
    motion = torch.zeros_like(pt)
    motion[:, 1:] = (pt[:, 1:] - pt[:, :-1]).abs()
    motion[:, 0] = motion[:, 1]
    motion = motion.mean(dim=-1).reshape(n, -1)
    motion = motion / (motion.max(dim=-1, keepdim=True).values * tau + 1e-10)
    prob = F.softmax(motion, dim=-1)
    u = torch.rand(prob.shape, generator=generator, device=prob.device if generator is None else generator.device)
    u = u.to(prob.device)
    return torch.log(prob) - torch.log(-torch.log(u + 1e-10) + 1e-10)


def build_condition(latent: torch.Tensor, ids_restore: torch.Tensor, fusion: bool = True) -> torch.Tensor:
    """Per-token condition ``[N, L, D]`` from the visible latent ``[N, L_keep, D]``.

    Local-global fusion (paper, official ``forward_decoder``): visible positions keep their own
    token, masked positions get the mean of the visible tokens; tokens go back to the original
    order. ``fusion=False`` (ablation; our reading of "w/o fusion") gives every position the
    global (mean) token.
    """
    n, keep, d = latent.shape
    length = ids_restore.shape[1]
    glob = latent.mean(dim=1, keepdim=True)
    if not fusion:
        return glob.expand(n, length, d).contiguous()
    z = torch.cat([latent, glob.expand(n, length - keep, d)], dim=1)
    return torch.gather(z, 1, ids_restore[..., None].expand(-1, -1, d))


def token_uniformity_loss(tokens: torch.Tensor) -> torch.Tensor:
    """Mean squared cosine similarity between all token pairs of each sample (incl. self pairs).

    ``tokens [N, L, D]``; official ``model/util.py::token_uniformity_loss`` (normalize=True).
    """
    f = F.normalize(tokens, dim=-1)
    return (f @ f.transpose(1, 2)).pow(2).mean()


def patchify(x: torch.Tensor, t_patch: int, patch: int = 1) -> torch.Tensor:
    """``[N, T, V, C] -> [N, TP * VP, t_patch * patch * C]`` (official element order)."""
    n, t, v, c = x.shape
    x = x.reshape(n, t // t_patch, t_patch, v // patch, patch, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(n, (t // t_patch) * (v // patch), t_patch * patch * c)


def unpatchify(p: torch.Tensor, t_patch: int, num_joints: int, patch: int = 1, c: int = 3) -> torch.Tensor:
    """Inverse of :func:`patchify`: ``[N, L, t_patch * patch * C] -> [N, T, V, C]``."""
    n, length, _ = p.shape
    vp = num_joints // patch
    tp = length // vp
    x = p.reshape(n, tp, vp, t_patch, patch, c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(n, tp * t_patch, vp * patch, c)
