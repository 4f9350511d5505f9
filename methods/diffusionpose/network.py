"""The DiffusionPose network (training loss + sampler).

It shares :class:`~methods.common.hrnet.HRNet` and the 1x1 conv head with the heatmap baseline
(``methods/heatmap_baseline/network.py``) and adds the structure condition (masks + SC-CA) and
the SGDD decoder (``model.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from evaluators.datasets.pose2d.transforms import refine_quarter_offset
from methods.common.hrnet import HeatmapHead, HRNet, heatmap_mse
from methods.diffusionpose.model import (
    SGDD,
    StructureCondition,
    cosine_gammas,
    ddim_step_x0,
    draw_masks,
    noisy_to_pixels,
    q_sample,
    render_heatmaps,
    to_unit,
)


def soft_decode(hm: torch.Tensor) -> torch.Tensor:
    """Argmax + quarter-pixel refinement of ``[B, K, H, W]`` -> ``[B, K, 2]`` (x, y) heatmap pixels."""
    b, k, h, w = hm.shape
    idx = hm.flatten(2).argmax(-1)
    xy = torch.stack([idx % w, torch.div(idx, w, rounding_mode="floor")], -1).to(hm.dtype)
    return refine_quarter_offset(xy, hm)


class DiffusionPoseNet(nn.Module):
    """DiffusionPose: backbone features x_fea, coarse head conv(x_fea), structure condition, SGDD.

    Heatmaps live at ``heatmap_size`` (w, h) = input / s; when s != 4 the stride-4 features and
    the coarse heatmap are resized to it (the high-resolution SGDD variant).
    """

    def __init__(self, num_keypoints: int, limbs: list[tuple[int, int]], arch: str = "w32",
                 heatmap_size=(48, 64), sigma: float = 2.0, zeta: float = 2.0, timesteps: int = 1000,
                 delta_kps: float = 3.0, delta_ske: float = 1.5, width: int = 64, mults=(1, 1, 2, 2),
                 blocks: int = 2, heads: int = 4, window: int = 7):
        super().__init__()
        self.backbone = HRNet(arch)
        c = self.backbone.out_channels
        self.head = HeatmapHead(c, num_keypoints)
        self.condition = StructureCondition(c, heads, window)
        self.decoder = SGDD(num_keypoints, 2 * c, width, tuple(mults), blocks)
        self.limbs, self.size = [tuple(x) for x in limbs], tuple(heatmap_size)
        self.sigma, self.zeta, self.T = sigma, zeta, timesteps
        self.delta_kps, self.delta_ske = delta_kps, delta_ske
        self.register_buffer("gammas", cosine_gammas(timesteps), persistent=False)

    def features(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fea = self.backbone(img)
        coarse = self.head(fea)
        w, h = self.size
        if fea.shape[-2:] != (h, w):
            fea = F.interpolate(fea, size=(h, w), mode="bilinear", align_corners=False)
            coarse = F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
        return fea, coarse

    def denoise(self, fea: torch.Tensor, y_pix: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """One SGDD call: render phi(y, sigma) and the masks from keypoints ``[B, K, 2]`` -> clean heatmap."""
        hm_t = render_heatmaps(y_pix, self.size, self.sigma)
        m_kps, m_ske = draw_masks(y_pix, self.limbs, self.size, self.delta_kps, self.delta_ske)
        return self.decoder(hm_t, self.condition(fea, m_kps, m_ske), t)

    def loss(self, batch: dict, gen: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
        """L = ||D(y_t^hm, x_c) - y_0^hm||^2 + ||conv(x_fea) - y_0^hm||^2 (target-weighted MSE)."""
        img, target, weight = batch["img"], batch["target"], batch["target_weight"]
        b, k = target.shape[:2]
        fea, coarse = self.features(img)
        y0 = to_unit(batch["keypoints_hm"].to(img.dtype), self.size)
        # joints without a label get a random position (DiffusionDet pads missing boxes randomly)
        rand = torch.rand(y0.shape, generator=gen, device=img.device) * 2 - 1
        y0 = torch.where((weight > 0).unsqueeze(-1), y0.clamp(-1, 1), rand)
        t = torch.randint(0, self.T, (b,), generator=gen, device=img.device)
        eps = torch.randn(y0.shape, generator=gen, device=img.device)
        y_pix = noisy_to_pixels(q_sample(y0, t, self.gammas, self.zeta, eps), self.zeta, self.size)
        pred = self.denoise(fea, y_pix, t)
        l_dec, l_hm = heatmap_mse(pred, target, weight), heatmap_mse(coarse, target, weight)
        return l_dec + l_hm, {"loss_dec": l_dec.item(), "loss_hm": l_hm.item()}

    def timesteps_for(self, steps: int) -> list[int]:
        """DDIM skip-step schedule: ``steps`` evenly spaced timesteps from T-1 down to 0."""
        return torch.linspace(self.T - 1, 0, steps).round().long().tolist()

    @torch.inference_mode()
    def heatmaps(self, img: torch.Tensor, steps: int | None = 1) -> torch.Tensor:
        """Reverse process: y from conv(x_fea); each step redraws masks from the current y, SGDD
        predicts the clean heatmap, and a deterministic DDIM update (eta = 0) in keypoint space
        gives the next y. ``steps=0`` returns the coarse conv heatmap (the initialisation)."""
        fea, coarse = self.features(img)
        if not steps:
            return coarse
        ts = self.timesteps_for(int(steps))
        y_pix = soft_decode(coarse)
        yt = self.zeta * to_unit(y_pix, self.size)  # the initial estimate, at signal scale
        hm0 = coarse
        for i, t in enumerate(ts):
            tt = torch.full((img.shape[0],), t, device=img.device, dtype=torch.long)
            hm0 = self.denoise(fea, noisy_to_pixels(yt, self.zeta, self.size), tt)
            if i == len(ts) - 1:
                break
            y0 = to_unit(soft_decode(hm0), self.size).clamp(-1, 1) * self.zeta
            yt = ddim_step_x0(yt, y0, self.gammas[t], self.gammas[ts[i + 1]])
        return hm0
