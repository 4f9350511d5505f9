"""The registered heatmap baseline (``get_method("heatmap_baseline")``): HRNet + 1x1 conv head.

The SimpleBaseline / HRNet top-down recipe (Gaussian heatmap MSE, flip test, quarter-offset
decoding), sharing the backbone and head (``methods/common/hrnet.py``), training loop and inference code
(``methods/common/pose_estimation.py``) with DiffusionPose, so that the two differ only in the
diffusion decoder.
"""

from __future__ import annotations

from torch import nn

from methods.common.pose_estimation import TopDownPoseMethod
from methods.heatmap_baseline.network import HeatmapNet
from methods.registry import register_method


@register_method("heatmap_baseline")
class HeatmapBaseline(TopDownPoseMethod):
    """HRNet-W32/W48 heatmap regression (Sun et al. 2019), the DiffusionPose baseline."""

    default_steps = None

    def build_net(self) -> nn.Module:
        if self.stride != 4:  # the 1x1 head reads HRNet's 1/4-resolution branch; no upsampling here
            raise ValueError(f"heatmap_baseline: heatmap_stride must be 4 (HRNet's 1/4 head), got {self.stride}; "
                             "the high-resolution stride ablation is DiffusionPose's (SGDD)")
        return HeatmapNet(self.num_keypoints, arch=self.cfg["arch"])
