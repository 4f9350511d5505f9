"""The registered DiffusionPose method (``get_method("diffusionpose")``).

Builds :class:`~methods.diffusionpose.network.DiffusionPoseNet` from the method config and
inherits training, flip-test inference and checkpoints from
:class:`~methods.common.pose_estimation.TopDownPoseMethod`. ``predict(..., steps=S)``
runs S reverse (DDIM skip-step) iterations; ``steps=0`` returns the conv initialisation.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from evaluators.core.precision import LowPrecisionCache, check_precision
from methods.common.compile import compiled_view
from methods.common.pose_estimation import TopDownPoseMethod
from methods.diffusionpose.network import DiffusionPoseNet
from methods.registry import register_method


@register_method("diffusionpose")
class DiffusionPose(TopDownPoseMethod):
    """Structure-guided heatmap diffusion for top-down 2D pose (arXiv 2306.17074)."""

    precision_key = ("precision",)
    benchmark_steps = (1, 2, 5, 10)
    speed_targets = (None, 0.60)  # ours: fraction of the fp32 matmul peak to reach (paper scale, CPU; batch 32 only)

    @property
    def default_steps(self) -> int:  # type: ignore[override]
        return int(self.cfg["sample_steps"])

    def precision(self) -> str:
        """``precision``: ``fp32`` (default) or ``bf16`` for inference (the reverse process)."""
        return check_precision(self.cfg["precision"], "diffusionpose: precision")

    def sampler_settings(self) -> dict[str, Any]:
        """What a run record says about the reverse process."""
        return {"sampler": "ddim (keypoint space, eta 0)", "steps": self.default_steps,
                "timesteps": int(self.cfg["timesteps"]), "flip_test": bool(self.cfg["flip_test"]),
                "precision": self.precision(), "compile": bool(self.cfg["compile"])}

    def _sampling_net(self) -> nn.Module:
        """fp32: the network. bf16: a view of it whose backbone, coarse head, structure condition and
        SGDD decoder are cached copies with bf16 weights (cast once; rebuilt when the weights change),
        taking and returning fp32, so heatmap rendering, the masks, soft-argmax decoding and the DDIM
        update in keypoint space stay fp32 (bf16 keypoints would be off by up to 0.25 px at 64 px)."""
        net = self.net
        if self.precision() != "fp32":
            low = self.__dict__.setdefault("_low", LowPrecisionCache())
            # convolutions in NHWC (oneDNN's fast bf16 layout); the SC-CA condition keeps NCHW
            net = low.view("net", self.net, ("backbone", "head", "condition", "decoder"),
                           channels_last=("backbone", "head", "decoder"))
        if bool(self.cfg["compile"]):  # ours: the per-step networks compiled
            net = compiled_view(self.__dict__.setdefault("_compiled", {}), "diffusionpose", net,
                                ("condition", "decoder"))
        return net

    def build_net(self) -> nn.Module:
        c = self.cfg
        dec, sca = dict(c["decoder"]), dict(c["sca"])
        return DiffusionPoseNet(
            self.num_keypoints, self.skeleton, arch=c["arch"], heatmap_size=self.heatmap_size,
            sigma=self.sigma_hm, zeta=float(c["zeta"]), timesteps=int(c["timesteps"]),
            # mask widths in heatmap px at stride 4, scaled to the stride like sigma (TopDownPoseMethod.width_scale)
            delta_kps=float(c["delta_kps"]) * self.width_scale,
            delta_ske=float(c["delta_ske"]) * self.width_scale,
            width=int(dec["width"]), mults=tuple(dec["mults"]), blocks=int(dec["blocks"]),
            heads=int(sca["heads"]), window=int(sca["window"]))

    def gmac_examples(self) -> dict[str, tuple]:
        """Backbone + coarse head once, and one reverse step (masks -> SC-CA condition -> SGDD)."""
        w, h = self.heatmap_size
        c = self.net.backbone.out_channels
        fea = torch.zeros(1, c, h, w)
        y = torch.rand(1, self.num_keypoints, 2) * torch.tensor([w - 1.0, h - 1.0])
        step = (lambda f, yy: self.net.denoise(f, yy, torch.zeros(1, dtype=torch.long)), (fea, y))
        return {**super().gmac_examples(), "reverse_step": step}

    def denoiser_example(self, batch: int = 1):
        """The SGDD decoder (called once per reverse step) with example inputs, for benchmarks."""
        w, h = self.heatmap_size
        c = self.net.backbone.out_channels
        return self.net.decoder, (torch.zeros(batch, self.num_keypoints, h, w), torch.zeros(batch, 2 * c, h, w),
                                  torch.zeros(batch, dtype=torch.long))
