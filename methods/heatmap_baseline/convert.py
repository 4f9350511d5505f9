"""Convert released HRNet top-down pose checkpoints to our state-dict layout.

Accepted layouts (keys of the stored ``state_dict``):

- official ``deep-high-resolution-net.pytorch`` (``pose_hrnet_w32_256x192.pth``): backbone keys
  at the top level (``conv1.weight``, ``stage2.0.branches...``) and ``final_layer.*``;
- MMPose 0.x: ``backbone.*`` and ``keypoint_head.final_layer.*``;
- MMPose 1.x: ``backbone.*`` and ``head.final_layer.*`` (our layout already).

Ours: ``backbone.*`` (same names, see ``methods/diffusionpose/backbone.py``) and ``head.final_layer.*``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from evaluators.core.safe_load import load_checkpoint_file


def is_official_layout(state: Mapping) -> bool:
    return any(k in state for k in ("conv1.weight", "module.conv1.weight", "backbone.conv1.weight"))


def convert_official(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official / MMPose HRNet pose keys -> ``HeatmapNet`` keys."""
    out = {}
    for k, v in state.items():
        k = k.removeprefix("module.")
        if k.startswith("keypoint_head.final_layer.") or k.startswith("head.final_layer."):
            out["head.final_layer." + k.split("final_layer.", 1)[1]] = v
        elif k.startswith("final_layer."):
            out["head." + k] = v
        elif k.startswith("backbone."):
            out[k] = v
        elif k.split(".", 1)[0] in {"conv1", "bn1", "conv2", "bn2", "layer1"} or k.startswith(("transition", "stage")):
            out["backbone." + k] = v
    return out


def load_official(path: str) -> dict[str, torch.Tensor]:
    """Read a released checkpoint file and return our keys."""
    obj = load_checkpoint_file(path)
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else obj
    if not is_official_layout(state):
        raise ValueError(f"{path}: not an HRNet pose checkpoint (no conv1.weight / backbone.conv1.weight key)")
    return convert_official(state)
