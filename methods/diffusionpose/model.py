"""DiffusionPose modules: keypoint forward diffusion, heatmap/mask rendering, SC-CA, SGDD U-Net.

Specification: the DiffusionPose paper note (``shared/seeds/002_*``; arXiv 2306.17074) —
no official code exists. Where the note is silent the choice and its source are stated:

- keypoints are normalised to [-1, 1] over the heatmap grid and scaled by zeta before noising,
  then clamped to [-zeta, zeta] and mapped back, as DiffusionDet does for boxes (the note calls
  zeta a DiffusionDet-style signal scale); cosine gamma schedule with T = 1000 (DiffusionDet);
- masks are binary: a disc of radius delta_kps around every keypoint (union over joints) and
  a band of half-width delta_ske around every limb segment, single channel broadcast over the
  feature channels;
- SC-CA = channel attention + window spatial attention (DaViT), both as cross-attention with
  Q from x_kps and K = V from x_ske, via ``scaled_dot_product_attention``;
- SGDD: residual blocks with a sinusoidal timestep embedding (DDPM U-Net convention), widths
  C*mults, down to H/8 and back with skip connections; outputs the clean heatmap (x0).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


# -- forward process ---------------------------------------------------------------------------
def cosine_gammas(T: int = 1000) -> torch.Tensor:
    """gamma_t (= alphas_cumprod) of the cosine schedule, from diffusers' ``squaredcos_cap_v2``."""
    # lazy: diffusers costs ~1.7 CPU-s to import (torch._dynamo, sympy); planning a run needs none
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=T, beta_schedule="squaredcos_cap_v2").alphas_cumprod.float()


def to_unit(xy: torch.Tensor, size_wh: tuple[int, int]) -> torch.Tensor:
    """Heatmap pixels ``[..., 2]`` -> [-1, 1] (pixel 0 -> -1, pixel W-1 -> 1)."""
    s = xy.new_tensor([max(size_wh[0] - 1, 1), max(size_wh[1] - 1, 1)])
    return xy / s * 2 - 1


def from_unit(u: torch.Tensor, size_wh: tuple[int, int]) -> torch.Tensor:
    s = u.new_tensor([max(size_wh[0] - 1, 1), max(size_wh[1] - 1, 1)])
    return (u + 1) / 2 * s


def q_sample(y0: torch.Tensor, t: torch.Tensor, gammas: torch.Tensor, zeta: float, noise: torch.Tensor) -> torch.Tensor:
    """y_t = sqrt(gamma_t) (zeta y0) + sqrt(1 - gamma_t) eps; y0 ``[B, K, 2]`` in [-1, 1], t ``[B]``."""
    g = gammas.to(y0.device)[t].view(-1, 1, 1)
    return g.sqrt() * (zeta * y0) + (1 - g).sqrt() * noise


def ddim_step_x0(yt: torch.Tensor, y0: torch.Tensor, g: torch.Tensor, g_next: torch.Tensor,
                 eps_floor: float = 1e-4) -> torch.Tensor:
    """Deterministic DDIM update (eta = 0) from a clean-sample prediction ``y0`` (Song et al. Eq. 12):
    ``eps = (y_t - sqrt(g) y0) / sqrt(1 - g)``, ``y_next = sqrt(g') y0 + sqrt(1 - g') eps``.
    ``eps_floor`` (ours) bounds ``sqrt(1 - g)`` away from 0 at t = 0."""
    eps = (yt - g.sqrt() * y0) / (1 - g).sqrt().clamp_min(eps_floor)
    return g_next.sqrt() * y0 + (1 - g_next).sqrt() * eps


def noisy_to_pixels(yt: torch.Tensor, zeta: float, size_wh: tuple[int, int]) -> torch.Tensor:
    """Clamp a noisy scaled keypoint to [-zeta, zeta] and map it to heatmap pixels (DiffusionDet)."""
    return from_unit(yt.clamp(-zeta, zeta) / zeta, size_wh)


def render_heatmaps(xy: torch.Tensor, size_wh: tuple[int, int], sigma: float) -> torch.Tensor:
    """phi(y, sigma): Gaussians (peak 1) at continuous positions ``[B, K, 2]`` -> ``[B, K, H, W]``."""
    w, h = size_wh
    xs = torch.arange(w, device=xy.device, dtype=xy.dtype)
    ys = torch.arange(h, device=xy.device, dtype=xy.dtype)
    gx = torch.exp(-((xs.view(1, 1, -1) - xy[..., :1]) ** 2) / (2 * sigma ** 2))  # [B, K, W]
    gy = torch.exp(-((ys.view(1, 1, -1) - xy[..., 1:]) ** 2) / (2 * sigma ** 2))  # [B, K, H]
    return gy.unsqueeze(-1) * gx.unsqueeze(-2)


def draw_masks(xy: torch.Tensor, limbs: list[tuple[int, int]], size_wh: tuple[int, int], delta_kps: float,
               delta_ske: float) -> tuple[torch.Tensor, torch.Tensor]:
    """varphi(y, delta_kps, delta_ske): keypoint and skeleton masks ``[B, 1, H, W]`` (0/1).

    M_kps(p) = 1 iff some keypoint lies within ``delta_kps`` pixels of p; M_ske(p) = 1 iff p
    is within ``delta_ske`` of some limb segment (a, b).
    """
    w, h = size_wh
    gy, gx = torch.meshgrid(torch.arange(h, device=xy.device, dtype=xy.dtype),
                            torch.arange(w, device=xy.device, dtype=xy.dtype), indexing="ij")
    p = torch.stack([gx, gy], -1).view(1, 1, h * w, 2)
    d_kps = (p - xy.unsqueeze(2)).norm(dim=-1).amin(dim=1)  # [B, HW]
    m_kps = (d_kps <= delta_kps).to(xy.dtype).view(-1, 1, h, w)
    a = xy[:, [i for i, _ in limbs]].unsqueeze(2)  # [B, L, 1, 2]
    b = xy[:, [j for _, j in limbs]].unsqueeze(2)
    ab = b - a
    tt = (((p - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp_min(1e-6)).clamp(0, 1)
    d_ske = (p - (a + tt.unsqueeze(-1) * ab)).norm(dim=-1).amin(dim=1)
    m_ske = (d_ske <= delta_ske).to(xy.dtype).view(-1, 1, h, w)
    return m_kps, m_ske


# -- SC-CA -------------------------------------------------------------------------------------
class SCCrossAttention(nn.Module):
    """A(Q, K, V) = A_c(Q, K, V) + A_s(Q, K, V) on feature maps ``[B, C, H, W]``.

    A_c: DaViT channel attention (channel groups per head attend over channels; the dot
    product runs over the spatial positions). A_s: DaViT spatial window multi-head attention
    (non-overlapping ``window`` x ``window`` windows, zero-padded at the border).
    """

    def __init__(self, dim: int, heads: int = 4, window: int = 7):
        super().__init__()
        self.heads, self.window = heads, window
        self.norm_q, self.norm_kv = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.q_c, self.kv_c, self.proj_c = nn.Linear(dim, dim), nn.Linear(dim, 2 * dim), nn.Linear(dim, dim)
        self.q_s, self.kv_s, self.proj_s = nn.Linear(dim, dim), nn.Linear(dim, 2 * dim), nn.Linear(dim, dim)

    def channel(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        b, n, c = q.shape
        hd = c // self.heads
        qh = self.q_c(q).view(b, n, self.heads, hd).permute(0, 2, 3, 1)  # [B, h, d, N]
        k, v = self.kv_c(kv).view(b, n, 2, self.heads, hd).permute(2, 0, 3, 4, 1)
        out = F.scaled_dot_product_attention(qh, k, v)  # channels attend to channels
        return self.proj_c(out.permute(0, 3, 1, 2).reshape(b, n, c))

    def spatial(self, q: torch.Tensor, kv: torch.Tensor, h: int, w: int) -> torch.Tensor:
        b, n, c = q.shape
        ws = self.window
        ph, pw = (-h) % ws, (-w) % ws

        def windows(x):
            cx = x.shape[-1]
            x = F.pad(x.view(b, h, w, cx), (0, 0, 0, pw, 0, ph))
            hh, ww = (h + ph) // ws, (w + pw) // ws
            return x.view(b, hh, ws, ww, ws, cx).permute(0, 1, 3, 2, 4, 5).reshape(b * hh * ww, ws * ws, cx)

        qw, kvw = windows(self.q_s(q)), windows(self.kv_s(kv))
        nw = qw.shape[0]
        hd = c // self.heads
        qh = qw.view(nw, -1, self.heads, hd).transpose(1, 2)
        k, v = kvw.view(nw, -1, 2, self.heads, hd).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qh, k, v).transpose(1, 2).reshape(nw, ws * ws, c)
        hh, ww = (h + ph) // ws, (w + pw) // ws
        out = out.view(b, hh, ww, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, h + ph, w + pw, c)
        return self.proj_s(out[:, :h, :w].reshape(b, n, c))

    def forward(self, q: torch.Tensor, kv: torch.Tensor) -> torch.Tensor:
        b, c, h, w = q.shape
        qs = self.norm_q(q.flatten(2).transpose(1, 2))
        kvs = self.norm_kv(kv.flatten(2).transpose(1, 2))
        out = self.channel(qs, kvs) + self.spatial(qs, kvs, h, w)
        return out.transpose(1, 2).reshape(b, c, h, w)


class StructureCondition(nn.Module):
    """x_c = concat(x_kps + A(x_kps, x_ske, x_ske), x_fea) with x_kps = x_fea * M_kps, x_ske = x_fea * M_ske."""

    def __init__(self, dim: int, heads: int = 4, window: int = 7):
        super().__init__()
        self.attn = SCCrossAttention(dim, heads, window)

    def forward(self, fea: torch.Tensor, m_kps: torch.Tensor, m_ske: torch.Tensor) -> torch.Tensor:
        x_kps, x_ske = fea * m_kps, fea * m_ske
        return torch.cat([x_kps + self.attn(x_kps, x_ske), fea], dim=1)


# -- SGDD ----------------------------------------------------------------------------------------
def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding ``[B, dim]`` of integer timesteps (DDPM / diffusers convention)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, tdim: int):
        super().__init__()
        self.n1, self.c1 = nn.GroupNorm(min(8, cin), cin), nn.Conv2d(cin, cout, 3, 1, 1)
        self.t = nn.Linear(tdim, cout)
        self.n2, self.c2 = nn.GroupNorm(min(8, cout), cout), nn.Conv2d(cout, cout, 3, 1, 1)
        self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x, temb):
        h = self.c1(F.silu(self.n1(x))) + self.t(temb)[:, :, None, None]
        return self.skip(x) + self.c2(F.silu(self.n2(h)))


class SGDD(nn.Module):
    """Structure-guided diffusion decoder: (noisy heatmap ``[B, K, H, W]``, x_c ``[B, Cx, H, W]``, t) -> heatmap.

    Resolution levels H, H/2, H/4, H/8 with widths ``C * mults`` (default 1, 1, 2, 2, so the
    bottleneck is 2C x H/8 x W/8 as in the paper), ``blocks`` residual blocks per level.
    """

    def __init__(self, num_keypoints: int, cond_channels: int, width: int = 64, mults=(1, 1, 2, 2), blocks: int = 2):
        super().__init__()
        self.tdim = width * 4
        self.temb = nn.Sequential(nn.Linear(width, self.tdim), nn.SiLU(), nn.Linear(self.tdim, self.tdim))
        self.inp = nn.Conv2d(num_keypoints + cond_channels, width, 3, 1, 1)
        chans = [width * m for m in mults]
        self.down, self.pool = nn.ModuleList(), nn.ModuleList()
        c = width
        for i, ch in enumerate(chans):
            self.down.append(nn.ModuleList([ResBlock(c if b == 0 else ch, ch, self.tdim) for b in range(blocks)]))
            c = ch
            self.pool.append(nn.Conv2d(ch, ch, 3, 2, 1) if i < len(chans) - 1 else nn.Identity())
        self.mid = ResBlock(c, c, self.tdim)
        self.up = nn.ModuleList()
        for ch in reversed(chans):
            self.up.append(nn.ModuleList([ResBlock(c + ch if b == 0 else ch, ch, self.tdim) for b in range(blocks)]))
            c = ch
        self.out = nn.Sequential(nn.GroupNorm(min(8, c), c), nn.SiLU(), nn.Conv2d(c, num_keypoints, 3, 1, 1))
        self.width = width

    def forward(self, hm: torch.Tensor, cond: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.temb(timestep_embedding(t, self.width).to(hm.dtype))  # bf16 sampling copy: follow the input
        x = self.inp(torch.cat([hm, cond], 1))
        skips = []
        for blocks, pool in zip(self.down, self.pool):
            for blk in blocks:
                x = blk(x, temb)
            skips.append(x)
            x = pool(x)
        x = self.mid(x, temb)
        for blocks in self.up:
            s = skips.pop()
            if x.shape[-2:] != s.shape[-2:]:
                x = F.interpolate(x, size=s.shape[-2:], mode="nearest")
            x = torch.cat([x, s], 1)
            for blk in blocks:
                x = blk(x, temb)
        return self.out(x)
