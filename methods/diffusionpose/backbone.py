"""HRNet backbone (W32 / W48 / a tiny smoke variant) and the plain convolutional heatmap head.

Written here because timm / torchvision cannot be installed in this suite. Architecture of
Sun et al., "Deep High-Resolution Representation Learning for Human Pose Estimation"
(CVPR 2019), as in the official ``deep-high-resolution-net.pytorch`` ``pose_hrnet.py`` and
MMPose ``backbones/hrnet.py``: a stride-4 stem, stage 1 of 4 Bottlenecks (64 -> 256
channels), then stages 2-4 with 2/3/4 parallel branches of BasicBlocks (widths C, 2C, 4C,
8C; 1/4/3 modules, 4 blocks per branch) exchanging information through fuse layers; the
last module returns only the highest-resolution branch ``[B, C, H/4, W/4]``. With the
SimpleBaseline final 1x1 conv this is the 28.5M-parameter HRNet-W32 pose network
(W48: 63.6M) of the HRNet paper's Table 1.

The parameter names follow the official layout (``conv1``, ``layer1``, ``transition1``,
``stage2.0.branches.0.0.conv1`` ...), so an ImageNet checkpoint from the HRNet authors loads
with :func:`load_imagenet` (from a local file only; nothing is downloaded).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import torch
from torch import nn

from evaluators.core.safe_load import load_checkpoint_file

log = logging.getLogger(__name__)

HRNET_CONFIGS = {
    # stem width, stage-1 blocks, branch widths, modules per stage, blocks per branch
    "w32": {"stem": 64, "stage1_blocks": 4, "widths": [32, 64, 128, 256], "modules": [1, 4, 3], "blocks": 4},
    "w48": {"stem": 64, "stage1_blocks": 4, "widths": [48, 96, 192, 384], "modules": [1, 4, 3], "blocks": 4},
    # CPU smoke variant: same topology, tiny widths and depth
    "tiny": {"stem": 16, "stage1_blocks": 1, "widths": [16, 32, 64, 128], "modules": [1, 1, 1], "blocks": 1},
}


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, momentum=0.1)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = _bn(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = _bn(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        res = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + res)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = _bn(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = _bn(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = _bn(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        res = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + res)


def _make_layer(block, cin: int, planes: int, n: int) -> nn.Sequential:
    down = None
    if cin != planes * block.expansion:
        down = nn.Sequential(nn.Conv2d(cin, planes * block.expansion, 1, bias=False), _bn(planes * block.expansion))
    layers = [block(cin, planes, 1, down)] + [block(planes * block.expansion, planes) for _ in range(n - 1)]
    return nn.Sequential(*layers)


class HighResolutionModule(nn.Module):
    """Parallel branches of BasicBlocks followed by all-to-all fusion (official ``HighResolutionModule``)."""

    def __init__(self, widths: list[int], blocks: int, multi_scale_output: bool = True):
        super().__init__()
        nb = len(widths)
        self.branches = nn.ModuleList([_make_layer(BasicBlock, w, w, blocks) for w in widths])
        self.fuse_layers = nn.ModuleList()
        self.relu = nn.ReLU(inplace=True)
        for i in range(nb if multi_scale_output else 1):
            row = nn.ModuleList()
            for j in range(nb):
                if j > i:  # lower resolution -> 1x1 conv, nearest upsampling
                    row.append(nn.Sequential(nn.Conv2d(widths[j], widths[i], 1, bias=False), _bn(widths[i]),
                                             nn.Upsample(scale_factor=2 ** (j - i), mode="nearest")))
                elif j == i:
                    row.append(nn.Identity())
                else:  # higher resolution -> chain of stride-2 3x3 convs
                    convs = []
                    for k in range(i - j):
                        last = k == i - j - 1
                        cout = widths[i] if last else widths[j]
                        seq = [nn.Conv2d(widths[j], cout, 3, 2, 1, bias=False), _bn(cout)]
                        if not last:
                            seq.append(nn.ReLU(inplace=True))
                        convs.append(nn.Sequential(*seq))
                    row.append(nn.Sequential(*convs))
            self.fuse_layers.append(row)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [b(x) for b, x in zip(self.branches, xs)]
        out = []
        for row in self.fuse_layers:
            y = None
            for j, f in enumerate(row):
                z = f(xs[j])
                y = z if y is None else _add(y, z)
            out.append(self.relu(y))
        return out


def _add(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if a.shape[-2:] != b.shape[-2:]:  # inputs whose size is not a multiple of 32
        b = nn.functional.interpolate(b, size=a.shape[-2:], mode="nearest")
    return a + b


class HRNet(nn.Module):
    """HRNet feature extractor: image ``[B, 3, H, W]`` -> ``[B, C, H/4, W/4]`` (highest branch)."""

    def __init__(self, arch: str = "w32"):
        super().__init__()
        if arch not in HRNET_CONFIGS:
            raise ValueError(f"unknown HRNet arch {arch!r}; known: {sorted(HRNET_CONFIGS)}")
        cfg = HRNET_CONFIGS[arch]
        s, w = cfg["stem"], cfg["widths"]
        self.out_channels = w[0]
        self.conv1 = nn.Conv2d(3, s, 3, 2, 1, bias=False)
        self.bn1 = _bn(s)
        self.conv2 = nn.Conv2d(s, s, 3, 2, 1, bias=False)
        self.bn2 = _bn(s)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = _make_layer(Bottleneck, s, s, cfg["stage1_blocks"])
        pre = [s * Bottleneck.expansion]
        for k, n_mod in enumerate(cfg["modules"]):
            cur = w[: k + 2]
            setattr(self, f"transition{k + 1}", self._transition(pre, cur))
            last_stage = k == len(cfg["modules"]) - 1
            mods = [HighResolutionModule(cur, cfg["blocks"], multi_scale_output=not (last_stage and m == n_mod - 1))
                    for m in range(n_mod)]
            setattr(self, f"stage{k + 2}", nn.ModuleList(mods))
            pre = cur

    @staticmethod
    def _transition(pre: list[int], cur: list[int]) -> nn.ModuleList:
        layers = nn.ModuleList()
        for i, c in enumerate(cur):
            if i < len(pre):
                layers.append(nn.Identity() if pre[i] == c else nn.Sequential(
                    nn.Conv2d(pre[i], c, 3, 1, 1, bias=False), _bn(c), nn.ReLU(inplace=True)))
            else:
                convs = []
                for j in range(i + 1 - len(pre)):
                    cin = pre[-1]
                    cout = c if j == i - len(pre) else cin
                    convs.append(nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1, bias=False), _bn(cout), nn.ReLU(inplace=True)))
                layers.append(nn.Sequential(*convs))
        return layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        xs = [self.layer1(x)]
        for k in range(1, 4):
            trans = getattr(self, f"transition{k}")
            # new branches start from the lowest-resolution output of the previous stage
            xs = [t(xs[i] if i < len(xs) else xs[-1]) for i, t in enumerate(trans)]
            for mod in getattr(self, f"stage{k + 1}"):
                xs = mod(xs)
        return xs[0]


class HeatmapHead(nn.Module):
    """SimpleBaseline/HRNet final layer: 1x1 conv from backbone features to ``K`` heatmaps."""

    def __init__(self, cin: int, num_keypoints: int):
        super().__init__()
        self.final_layer = nn.Conv2d(cin, num_keypoints, 1)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.final_layer(feats)


# Parts of the ImageNet HRNet classifier that the pose backbone does not have: the classification
# head (HRNet-Image-Classification ``cls_hrnet.py`` / timm ``hrnet.py`` ``_make_head``: incre_modules,
# downsamp_modules, final_layer, classifier) and, in the last stage-4 module, the fuse layers for the
# three lower-resolution outputs (the classifier keeps all four branches; the pose network only the first).
CLASSIFICATION_PREFIXES = ("incre_modules.", "downsamp_modules.", "final_layer.", "classifier.")


class PretrainedLayoutError(ValueError):
    """An ImageNet HRNet file whose tensors do not fit the backbone (names the file and the keys)."""


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":  # timm / Hugging Face hub ``model.safetensors``
        from safetensors.torch import load_file  # lazy: needed only for a .safetensors ImageNet file

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
