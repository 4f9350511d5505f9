"""Weights for the HRNet pose networks: ImageNet backbone files and released pose checkpoints.

Shared by DiffusionPose and heatmap_baseline through :class:`~methods.common.pose_estimation.TopDownPoseMethod`.

ImageNet classifier files (:func:`load_imagenet`, from a LOCAL file only; nothing is downloaded):
MMPose's ``hrnet_w32-36af842e.pth`` (= the HRNet authors' ImageNet file) and timm ``hrnet_w32``
(``model.safetensors`` / ``pytorch_model.bin``); see :func:`convert_imagenet_state`.

Released top-down pose checkpoints (:func:`convert_official`), by the keys of the stored ``state_dict``:

- official ``deep-high-resolution-net.pytorch`` (``pose_hrnet_w32_256x192.pth``): backbone keys
  at the top level (``conv1.weight``, ``stage2.0.branches...``) and ``final_layer.*``;
- MMPose 0.x: ``backbone.*`` and ``keypoint_head.final_layer.*``;
- MMPose 1.x: ``backbone.*`` and ``head.final_layer.*`` (our layout already).

Ours: ``backbone.*`` (the official names, see :mod:`methods.common.hrnet`) and ``head.final_layer.*``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import load_file

from evaluators.core.safe_load import load_checkpoint_file
from methods.common.hrnet import HRNet

log = logging.getLogger(__name__)


# Parts of the ImageNet HRNet classifier that the pose backbone does not have: the classification
# head (HRNet-Image-Classification ``cls_hrnet.py`` / timm ``hrnet.py`` ``_make_head``: incre_modules,
# downsamp_modules, final_layer, classifier) and, in the last stage-4 module, the fuse layers for the
# three lower-resolution outputs (the classifier keeps all four branches; the pose network only the first).
CLASSIFICATION_PREFIXES = ("incre_modules.", "downsamp_modules.", "final_layer.", "classifier.")


class PretrainedLayoutError(ValueError):
    """An ImageNet HRNet file whose tensors do not fit the backbone (names the file and the keys)."""


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":  # timm / Hugging Face hub ``model.safetensors``
        return dict(load_file(str(path)))
    obj = load_checkpoint_file(path, what="backbone checkpoint")
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict"):  # mmengine / timm train.py wrappers
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(torch.is_tensor(v) for v in obj.values()):
        raise PretrainedLayoutError(f"{path}: not a state dict of tensors")
    return obj


def convert_imagenet_state(state: dict[str, torch.Tensor], backbone: HRNet, source: str = "state dict"
                           ) -> tuple[dict[str, torch.Tensor], list[str]]:
    """ImageNet HRNet classifier keys -> our backbone keys, strictly.

    Accepted layouts (all three use the HRNet authors' module names, which ours follow):
    MMPose's ``pretrain_models/hrnet_w32-36af842e.pth`` (= the HRNet authors'
    ``models/pytorch/imagenet/hrnet_w32-36af842e.pth``: a plain state dict), timm ``hrnet_w32``
    (``model.safetensors`` / ``pytorch_model.bin``), each optionally wrapped in ``state_dict`` and
    prefixed ``module.`` / ``backbone.``. Classification-only tensors are dropped (returned as the
    second value); a missing backbone tensor, an unknown key or a shape mismatch raises
    :class:`PretrainedLayoutError`. BatchNorm ``num_batches_tracked`` may be absent (older files).
    """
    own = backbone.state_dict()
    last4 = f"stage4.{len(backbone.stage4) - 1}.fuse_layers."
    out, dropped, unexpected, bad_shape = {}, [], [], []
    for k, v in state.items():
        k = k.removeprefix("module.").removeprefix("backbone.")
        if k in own:
            if tuple(v.shape) != tuple(own[k].shape):
                bad_shape.append(f"{k}: file {tuple(v.shape)} vs backbone {tuple(own[k].shape)}")
            else:
                out[k] = v
        elif k.startswith(CLASSIFICATION_PREFIXES) or (k.startswith(last4) and k[len(last4):].split(".")[0] != "0"):
            dropped.append(k)
        else:
            unexpected.append(k)
    missing = sorted(k for k in own if k not in out and not k.endswith("num_batches_tracked"))
    if missing or unexpected or bad_shape:
        def show(xs):
            return f"{len(xs)} ({', '.join(xs[:4])}{', ...' if len(xs) > 4 else ''})"
        raise PretrainedLayoutError(f"{source}: does not fit HRNet (width {backbone.out_channels}): missing {show(missing)}; "
                                    f"unexpected {show(sorted(unexpected))}; shape mismatch {show(bad_shape)}")
    return out, sorted(dropped)


def load_imagenet(backbone: HRNet, path: str | Path) -> dict[str, str]:
    """Load ImageNet-pretrained HRNet weights from a LOCAL file (never downloaded) into ``backbone``.

    See :func:`convert_imagenet_state` for the layouts. Returns provenance
    ``{"id": "imagenet", "label", "sha256", "path"}`` of the file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"backbone.pretrained: ImageNet weights {path} not found (they are never downloaded; "
                                "point `pretrained=` at a local hrnet_w32-36af842e.pth or timm hrnet_w32 file)")
    state, dropped = convert_imagenet_state(_read_state(path), backbone, str(path))
    missing, unexpected = backbone.load_state_dict(state, strict=False)
    assert not unexpected and all(m.endswith("num_batches_tracked") for m in missing), (missing, unexpected)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    log.info("loaded %d backbone tensors from %s (%d classification-only tensors dropped)", len(state), path, len(dropped))
    layout = "timm" if path.suffix == ".safetensors" or path.name == "pytorch_model.bin" else "mmpose"
    return {"id": "imagenet", "label": f"ImageNet HRNet-W{backbone.out_channels} ({layout}: {path.name})",
            "sha256": sha, "path": str(path)}


# -- released pose checkpoints -----------------------------------------------------------------
def is_official_layout(state: Mapping) -> bool:
    """Whether ``state`` holds an HRNet pose backbone in one of the layouts above."""
    return any(k in state for k in ("conv1.weight", "module.conv1.weight", "backbone.conv1.weight"))


def convert_official(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official / MMPose HRNet pose keys -> our ``backbone.*`` / ``head.final_layer.*`` keys."""
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
