"""The heatmap baseline's network: HRNet + 1x1 conv head (SimpleBaseline-style regression of Gaussian heatmaps)."""

from __future__ import annotations

import torch
from torch import nn

from methods.common.hrnet import HeatmapHead, HRNet, heatmap_mse


class HeatmapNet(nn.Module):
    """HRNet + 1x1 conv heatmap head (SimpleBaseline-style regression of Gaussian heatmaps)."""

    def __init__(self, num_keypoints: int, arch: str = "w32"):
        super().__init__()
        self.backbone = HRNet(arch)
        self.head = HeatmapHead(self.backbone.out_channels, num_keypoints)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(img))

    def loss(self, batch: dict, gen: torch.Generator | None = None) -> tuple[torch.Tensor, dict]:
        loss = heatmap_mse(self(batch["img"]), batch["target"], batch["target_weight"])
        return loss, {"loss_hm": loss.item()}

    @torch.inference_mode()
    def heatmaps(self, img: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        return self(img)
