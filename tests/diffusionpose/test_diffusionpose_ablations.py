"""DiffusionPose ablation configs (configs/ablation/diffusionpose_*.yaml) compose with the COCO
experiment and reach the built model: heatmap stride s in {1, 2, 8} (high-resolution SGDD) and
the HRNet-W48 backbone."""

from __future__ import annotations

import pytest
import torch

from evaluators.core.config import load_config
from evaluators.datasets.pose2d.transforms import gaussian_heatmaps
from evaluators.runner.run import compose, load_plugins, plan
from methods import get_method
from methods.diffusionpose.model import draw_masks, render_heatmaps


def _method_cfg(ablation: str | None, scale: str = "smoke", experiment: str = "diffusionpose_coco") -> dict:
    load_plugins()
    extra = [f"+ablation={ablation}"] if ablation else []
    return plan(compose([f"+experiment={experiment}", *extra, f"scale={scale}"]), [], check_data=False).method_cfg


@pytest.mark.parametrize("stride", [1, 2, 8])
def test_heatmap_stride_ablation_changes_the_heatmap_resolution(stride):
    m = get_method("diffusionpose")(_method_cfg(f"diffusionpose_stride{stride}"), seed=0)
    w, h = m.input_size
    with torch.inference_mode():
        out = m.net.heatmaps(torch.randn(1, 3, h, w), 1)
    assert tuple(out.shape[-2:]) == (h // stride, w // stride)
    assert get_method("diffusionpose")(_method_cfg(None), seed=0).heatmap_size == (w // 4, h // 4)


@pytest.mark.parametrize("experiment", ["diffusionpose_coco", "heatmap_baseline_coco"])
def test_w48_ablation_builds_the_w48_backbone(experiment):
    cfg = _method_cfg("diffusionpose_w48", "paper", experiment)
    assert cfg["arch"] == "w48" and _method_cfg(None, "paper", experiment)["arch"] == "w32"
    m = get_method(experiment.rsplit("_", 1)[0])(cfg, seed=0)
    widths = {mod.out_channels for mod in m.net.backbone.modules() if isinstance(mod, torch.nn.Conv2d)}
    assert {48, 96, 192, 384} <= widths and 32 not in widths


def _tiny_cfg(stride: int) -> dict:
    return load_config("method", "diffusionpose", "smoke", [f"heatmap_stride={stride}", "input_size=[64,64]",
                                                           "sigma=2.0", "delta_kps=3.0", "delta_ske=1.5"])


def test_sigma_and_mask_widths_are_fixed_in_image_pixels_across_strides():
    """sigma = 2 / delta_kps = 3 / delta_ske = 1.5 heatmap px at stride 4 are 8 / 12 / 6 IMAGE px at
    every stride s in {1, 2, 4, 8}: measured on what the model renders (the Gaussian's standard
    deviation from its second moment, and the farthest / nearest in-mask / out-of-mask pixel),
    mapped to image pixels by x_img = s * x_hm (the codec's ``kin / stride``)."""
    for s in (1, 2, 4, 8):
        m = get_method("diffusionpose")(_tiny_cfg(s), seed=0)
        net = m.net
        w, h = net.size
        xy_img = torch.tensor([[[32.0, 32.0], [32.0, 32.0]]])  # one keypoint (twice: a zero-length limb)
        xy = xy_img / s
        grid_x = torch.arange(w, dtype=torch.float64) * s  # image-px position of each heatmap column
        for hm in (render_heatmaps(xy.double(), net.size, net.sigma)[0, 0],  # SGDD's noisy-heatmap input
                   torch.from_numpy(gaussian_heatmaps(net.size, xy[0].numpy(), [1, 1], m.sigma_hm)[0][0]).double()):
            row = hm[int(xy[0, 0, 1])]  # the row through the keypoint
            mu = (row * grid_x).sum() / row.sum()
            std_img = ((row * (grid_x - mu) ** 2).sum() / row.sum()).sqrt()
            assert float(std_img) == pytest.approx(8.0, rel=0.03), s
        gy, gx = torch.meshgrid(torch.arange(h) * s, torch.arange(w) * s, indexing="ij")
        dist = ((gx - 32.0) ** 2 + (gy - 32.0) ** 2).sqrt()
        m_kps, m_ske = draw_masks(xy, [(0, 1)], net.size, net.delta_kps, net.delta_ske)
        for mask, delta_img in ((m_kps[0, 0], 12.0), (m_ske[0, 0], 6.0)):
            on, off = dist[mask > 0], dist[mask == 0]
            assert float(on.max()) <= delta_img + 1e-6 < float(off.min()), s
            assert float(on.max()) > delta_img - s  # the disc reaches the last grid ring inside delta
