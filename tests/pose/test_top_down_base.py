"""The shared top-down pose base (methods/common: HRNet, its weights, TopDownPoseMethod) against
published sizes, hand-placed heatmap peaks and released checkpoint layouts; and its contract: the
base reads no file and computes no metric, the best-checkpoint score comes from the caller."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from evaluators.core.config import load_config
from evaluators.datasets import load_dataset
from evaluators.protocols import RunContext, get_protocol
from evaluators.protocols.pose import checkpoint_scorer
from methods import get_method
from methods.common.hrnet import HeatmapHead, HRNet
from tests.pose.oracle import Oracle

REPO = Path(__file__).resolve().parents[2]


def _cfg(**patch) -> dict:
    """The heatmap baseline's smoke config (every default from its YAML) with ``patch`` laid over it."""
    cfg = load_config("method", "heatmap_baseline", "smoke")
    for k, v in patch.items():
        cfg[k] = {**cfg[k], **v} if isinstance(v, dict) and isinstance(cfg.get(k), dict) else v
    return cfg


def test_hrnet_parameter_counts_match_the_paper():
    for arch, published in (("w32", 28.5e6), ("w48", 63.6e6)):
        net = HRNet(arch)
        n = sum(p.numel() for p in net.parameters()) + sum(p.numel() for p in HeatmapHead(net.out_channels, 17).parameters())
        assert abs(n - published) / published < 0.005, (arch, n)


def test_predict_maps_heatmap_peak_back_to_the_box_and_flip_shift():
    m = get_method("heatmap_baseline")(_cfg(arch="tiny", input_size=[48, 64], flip_test=False))
    hm = torch.zeros(1, 17, 16, 12)
    hm[..., 8, 6] = 1.0  # heatmap (6, 8) -> input (24, 32) = crop centre = box centre
    m.net.heatmaps = lambda x, steps=None: hm.expand(x.shape[0], -1, -1, -1)
    img = np.zeros((200, 300, 3), np.uint8)
    out = m.predict([img], np.array([[100.0, 50.0, 60.0, 80.0]]))
    np.testing.assert_allclose(out[0, :, :2].numpy(), np.tile([130.0, 90.0], (17, 1)), atol=1e-4)
    m.cfg["flip_test"] = True  # mirrored peak lands at x = 11 - 6 = 5; the 1-px shift puts it back at 6
    np.testing.assert_allclose(m.predict([img], np.array([[100.0, 50.0, 60.0, 80.0]]))[0, :, :2].numpy(),
                               out[0, :, :2].numpy(), atol=1e-4)


@pytest.mark.parametrize("layout", ["official", "mmpose0"])
def test_released_hrnet_layouts_load(tmp_path, layout):
    src = get_method("heatmap_baseline")(_cfg(arch="tiny"), seed=1)
    ours = src.net.state_dict()
    if layout == "official":  # deep-high-resolution-net.pytorch: top-level backbone keys + final_layer
        state = {k.removeprefix("backbone.").removeprefix("head."): v for k, v in ours.items()}
    else:
        state = {k.replace("head.final_layer", "keypoint_head.final_layer"): v for k, v in ours.items()}
    torch.save({"state_dict": state}, tmp_path / "w.pth")
    dst = get_method("heatmap_baseline")(_cfg(arch="tiny"), seed=2)
    dst.load_checkpoint(tmp_path / "w.pth")
    for k, v in dst.net.state_dict().items():
        assert torch.equal(v, ours[k]), k


# -- the contract: no file reading, no metric, no method importing another -----------------------------------
POSE_METHOD_FILES = [REPO / "methods/common/pose_estimation.py", REPO / "methods/common/hrnet.py",
                     REPO / "methods/common/hrnet_weights.py", *sorted((REPO / "methods/diffusionpose").glob("*.py")),
                     *sorted((REPO / "methods/heatmap_baseline").glob("*.py"))]


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            out.append((node.module or "", [a.name for a in node.names]))
    return out


@pytest.mark.parametrize("path", POSE_METHOD_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_pose_method_code_imports_no_metric_protocol_or_image_reader(path):
    for module, names in _imports(path):
        assert not module.startswith(("evaluators.metrics", "evaluators.protocols", "evaluators.runner")), (path, module)
        assert "read_image" not in names and module != "evaluators.datasets.pose2d.coco", (path, module, names)


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
@pytest.mark.parametrize("name,other", [("heatmap_baseline", "diffusionpose"), ("diffusionpose", "heatmap_baseline")])
def test_neither_pose_method_imports_the_other(name, other):
    code = f"import sys, methods.{name}; print(any(m.startswith('methods.{other}') for m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "False"


def test_fit_with_save_best_and_no_scorer_is_refused_before_training(tmp_path):
    m = get_method("heatmap_baseline")(_cfg(arch="tiny", train={"save_best": "coco/AP"}), workdir=tmp_path)
    data = SimpleNamespace(name="toy", fmt="coco", eval_split="val", splits={"train": [], "val": []})
    with pytest.raises(ValueError, match="validation scorer"):
        m.fit(data)  # SimpleNamespace has no top_down_dataset: reaching training would be an AttributeError
    assert not any(tmp_path.iterdir())


@pytest.fixture
def synth(tmp_path, monkeypatch):
    monkeypatch.setenv("MOTIONREPRO_CACHE", str(tmp_path / "cache"))
    cfg = {"seed": 2, "n_train": 2, "n_val": 6, "image_size": [128, 128]}
    return {n: load_dataset({"name": n, **cfg}) for n in ("synth_coco", "synth_mpii")}


def test_checkpoint_scorer_scores_as_the_pose_protocol_reports(synth, tmp_path):
    """The score the training keeps its best weights by equals the pose protocol's record on the
    same predictions: COCO AP on detection boxes, MPII PCKh@0.5 on GT boxes."""
    for name, proto, metric, key, boxes in (("synth_coco", "coco_ap", "coco/AP", "ap", ["det"]),
                                           ("synth_mpii", "mpii_pckh", "PCKh", "pckh_0.5", ["gt"])):
        data = synth[name]
        oracle = Oracle(data.instances(data.eval_split), data.skeleton, noise_per_step=6.0)

        def noisy(images, boxes, oracle=oracle):  # 2 px off: a score below the maximum
            return oracle.predict(images, boxes, steps=3)

        got = checkpoint_scorer(data)(noisy)
        (rec,) = get_protocol(proto).fn(oracle, data, {"boxes": boxes, "steps": 3, "overlays": 0},
                                        RunContext(workdir=tmp_path))
        assert got[0] == metric and got[1] == pytest.approx(rec.metrics[key], abs=1e-9)
        if name == "synth_coco":
            assert 0.0 < got[1] < 100.0
