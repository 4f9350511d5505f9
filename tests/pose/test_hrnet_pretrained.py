"""ImageNet HRNet weights: MMPose's ``hrnet_w32-36af842e.pth`` and timm's ``hrnet_w32`` layouts load
strictly into the pose backbone; bad files are refused naming the keys; no file -> scratch provenance.

The checkpoints are random state dicts whose key names and shapes are generated here from the
HRNet ImageNet classifier's definition (HRNet-Image-Classification ``cls_hrnet.py``; timm
``hrnet.py`` keeps the same module names): stem, layer1 Bottlenecks, transitions, stages with ALL
fuse layers (the classifier is multi-scale to the end), and the classification head
(incre_modules / downsamp_modules / final_layer / classifier).
"""

from __future__ import annotations

import hashlib
import logging
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import save_file

from evaluators.core.config import load_config
from methods import get_method
from methods.common.hrnet import HRNet
from methods.common.hrnet_weights import PretrainedLayoutError, convert_imagenet_state, load_imagenet

WIDTHS = {"w32": [32, 64, 128, 256], "w48": [48, 96, 192, 384]}


def _bn(out, p, c):
    out.update({f"{p}.weight": (c,), f"{p}.bias": (c,), f"{p}.running_mean": (c,), f"{p}.running_var": (c,),
                f"{p}.num_batches_tracked": ()})


def _bottleneck(out, p, cin, planes, down):
    out[f"{p}.conv1.weight"] = (planes, cin, 1, 1)
    _bn(out, f"{p}.bn1", planes)
    out[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
    _bn(out, f"{p}.bn2", planes)
    out[f"{p}.conv3.weight"] = (planes * 4, planes, 1, 1)
    _bn(out, f"{p}.bn3", planes * 4)
    if down:
        out[f"{p}.downsample.0.weight"] = (planes * 4, cin, 1, 1)
        _bn(out, f"{p}.downsample.1", planes * 4)


def classifier_layout(arch: str = "w32") -> dict[str, tuple]:
    """Key -> shape of the HRNet ImageNet classifier (HRNetV1 W32/W48: 1/4/3 modules, 4 blocks)."""
    w = WIDTHS[arch]
    out: dict[str, tuple] = {"conv1.weight": (64, 3, 3, 3), "conv2.weight": (64, 64, 3, 3)}
    _bn(out, "bn1", 64)
    _bn(out, "bn2", 64)
    for b in range(4):
        _bottleneck(out, f"layer1.{b}", 64 if b == 0 else 256, 64, b == 0)
    pre = [256]
    for s, n_mod in zip((2, 3, 4), (1, 4, 3)):
        cur = w[: s]
        for i, c in enumerate(cur):  # transition{s-1}: changed width -> conv-bn-relu; new branch -> strided chain
            if i < len(pre):
                if pre[i] != c:
                    out[f"transition{s - 1}.{i}.0.weight"] = (c, pre[i], 3, 3)
                    _bn(out, f"transition{s - 1}.{i}.1", c)
            else:
                out[f"transition{s - 1}.{i}.0.0.weight"] = (c, pre[-1], 3, 3)
                _bn(out, f"transition{s - 1}.{i}.0.1", c)
        for m in range(n_mod):
            p = f"stage{s}.{m}"
            for br, c in enumerate(cur):
                for k in range(4):
                    out[f"{p}.branches.{br}.{k}.conv1.weight"] = (c, c, 3, 3)
                    _bn(out, f"{p}.branches.{br}.{k}.bn1", c)
                    out[f"{p}.branches.{br}.{k}.conv2.weight"] = (c, c, 3, 3)
                    _bn(out, f"{p}.branches.{br}.{k}.bn2", c)
            for i in range(len(cur)):
                for j in range(len(cur)):
                    if j > i:
                        out[f"{p}.fuse_layers.{i}.{j}.0.weight"] = (cur[i], cur[j], 1, 1)
                        _bn(out, f"{p}.fuse_layers.{i}.{j}.1", cur[i])
                    elif j < i:
                        for k in range(i - j):
                            cout = cur[i] if k == i - j - 1 else cur[j]
                            out[f"{p}.fuse_layers.{i}.{j}.{k}.0.weight"] = (cout, cur[j], 3, 3)
                            _bn(out, f"{p}.fuse_layers.{i}.{j}.{k}.1", cout)
        pre = cur
    head = [32, 64, 128, 256]
    for i, c in enumerate(w):
        _bottleneck(out, f"incre_modules.{i}.0", c, head[i], True)
    for i in range(3):
        out[f"downsamp_modules.{i}.0.weight"] = (head[i + 1] * 4, head[i] * 4, 3, 3)
        out[f"downsamp_modules.{i}.0.bias"] = (head[i + 1] * 4,)
        _bn(out, f"downsamp_modules.{i}.1", head[i + 1] * 4)
    out["final_layer.0.weight"], out["final_layer.0.bias"] = (2048, 1024, 1, 1), (2048,)
    _bn(out, "final_layer.1", 2048)
    out["classifier.weight"], out["classifier.bias"] = (1000, 2048), (1000,)
    return out


def random_state(arch="w32", seed=0, with_nbt=True) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: (torch.randint(0, 1000, (), generator=g) if k.endswith("num_batches_tracked")
                else torch.randn(shape, generator=g)) for k, shape in classifier_layout(arch).items()
            if with_nbt or not k.endswith("num_batches_tracked")}


@pytest.fixture(scope="module")
def w32_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("imagenet")
    mm = d / "hrnet_w32-36af842e.pth"
    torch.save(random_state(seed=1), mm)  # the authors' / MMPose file: a plain state dict
    timm_file = d / "model.safetensors"  # timm hrnet_w32 (HF hub); older exports lack num_batches_tracked
    save_file({k: v.contiguous() for k, v in random_state(seed=2, with_nbt=False).items()}, str(timm_file))
    wrapped = d / "wrapped.pth"  # an mmengine-style {"state_dict": {"backbone." ...}} wrapper
    torch.save({"state_dict": {"backbone." + k: v for k, v in random_state(seed=3).items()}, "meta": {}}, wrapped)
    return {"mmpose": (mm, 1, True), "timm": (timm_file, 2, False), "wrapped": (wrapped, 3, True)}


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
@pytest.mark.parametrize("layout", ["mmpose", "timm", "wrapped"])
def test_imagenet_layouts_load_every_backbone_tensor(w32_files, layout):
    path, seed, nbt = w32_files[layout]
    cfg = load_config("method", "heatmap_baseline", "paper", [f"backbone.pretrained={path}"])
    m = get_method("heatmap_baseline")(cfg, seed=0)
    ref = random_state(seed=seed, with_nbt=nbt)
    own = m.net.backbone.state_dict()
    n = 0
    for k, v in own.items():
        if k in ref:
            assert torch.equal(v, ref[k]), k
            n += 1
        else:
            assert k.endswith("num_batches_tracked") and not nbt, k
    assert n == (len(own) if nbt else len([k for k in own if not k.endswith("num_batches_tracked")]))
    prov = m.provenance()["backbone_init"]
    assert prov["id"] == "imagenet" and prov["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert ("timm" if layout == "timm" else "mmpose") in prov["label"]


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_layout_errors_name_missing_unexpected_and_mismatched_keys(tmp_path):
    bb = HRNet("w32")
    state = random_state()
    _, dropped = convert_imagenet_state(state, bb)
    assert "classifier.weight" in dropped and "stage4.2.fuse_layers.3.2.0.0.weight" in dropped
    bad = dict(state)
    del bad["stage3.1.branches.2.3.conv2.weight"]
    bad["stage3.1.branches.2.9.conv1.weight"] = torch.zeros(3)
    with pytest.raises(PretrainedLayoutError, match=r"missing 1 \(stage3.1.branches.2.3.conv2.weight\).*"
                                                    r"unexpected 1 \(stage3.1.branches.2.9.conv1.weight\)"):
        convert_imagenet_state(bad, bb, "f.pth")
    path = tmp_path / "hrnet_w48.pth"
    torch.save(random_state("w48"), path)
    with pytest.raises(PretrainedLayoutError, match=r"hrnet_w48.pth: .*shape mismatch .*transition1.0.0.weight: "
                                                    r"file \(48, 256, 3, 3\) vs backbone \(32, 256, 3, 3\)"):
        load_imagenet(bb, path)
    with pytest.raises(FileNotFoundError, match="backbone.pretrained"):
        load_imagenet(bb, tmp_path / "absent.pth")


def test_paper_scale_without_weights_warns_once_and_says_scratch(caplog):
    m = get_method("heatmap_baseline")(load_config("method", "heatmap_baseline", "paper"), seed=0)
    assert m.provenance()["backbone_init"]["id"] == "scratch"
    no_train = SimpleNamespace(fmt="coco", name="x", splits={"val": None})
    with caplog.at_level(logging.WARNING), pytest.raises(ValueError, match="no train split"):
        m.fit(no_train)
    lines = [r for r in caplog.records if "scratch" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.WARNING
