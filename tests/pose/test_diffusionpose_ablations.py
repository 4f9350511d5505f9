"""DiffusionPose ablation configs (configs/ablation/diffusionpose_*.yaml) compose with the COCO
experiment and reach the built model: heatmap stride s in {1, 2, 8} (high-resolution SGDD) and
the HRNet-W48 backbone."""

from __future__ import annotations

import pytest
import torch

from methods import get_method


def _method_cfg(ablation: str | None, scale: str = "smoke", experiment: str = "diffusionpose_coco") -> dict:
    from evaluators.run import compose, load_plugins, plan

    load_plugins()
    extra = [f"+ablation={ablation}"] if ablation else []
    return plan(compose([f"+experiment={experiment}", *extra, f"scale={scale}"]), [], check_data=False)["method_cfg"]


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


def test_baseline_refuses_a_heatmap_stride_its_head_cannot_produce():
    from methods.common.config import load_config

    with pytest.raises(ValueError, match="heatmap_stride"):
        get_method("heatmap_baseline")(load_config("method", "heatmap_baseline", "smoke", ["heatmap_stride=2"]))
