"""An official fine-tuned MacDiff checkpoint (encoder + ``head.*``) is usable as it was released:
``finetuned_classifier()`` carries the authors' head (``head.*`` is kept, not dropped)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from methods import get_method
from tests.macdiff.test_model import TINY, macdiff_cfg, official_shapes


def _official_finetuned(num_classes: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    """Random tensors in the layout of ``transformer_downstream.py`` with ``ActionHeadFinetune``
    (``fc1`` [2048, VP*D], ``bn`` BatchNorm1d(2048), ``fc2`` [classes, 2048]); no decoder."""
    sd = {k: torch.randn(s, generator=g) * 0.1 for k, s in official_shapes(TINY).items() if not k.startswith("decoder")}
    d = TINY["dim_feat"] * TINY["num_joints"]
    sd.update({"head.fc1.weight": torch.randn(2048, d, generator=g) * 0.02, "head.fc1.bias": torch.randn(2048, generator=g),
               "head.bn.weight": torch.rand(2048, generator=g) + 0.5, "head.bn.bias": torch.randn(2048, generator=g),
               "head.bn.running_mean": torch.randn(2048, generator=g),
               "head.bn.running_var": torch.rand(2048, generator=g) + 0.5,
               "head.bn.num_batches_tracked": torch.tensor(1234),
               "head.fc2.weight": torch.randn(num_classes, 2048, generator=g) * 0.02,
               "head.fc2.bias": torch.randn(num_classes, generator=g)})
    return sd


def test_finetuned_checkpoint_loads_head_and_classifies_as_the_official_head(tmp_path):
    g = torch.Generator().manual_seed(0)
    sd = _official_finetuned(7, g)
    torch.save({"model": {f"module.{k}": v for k, v in sd.items()}, "epoch": 99}, tmp_path / "best.pth")
    m = get_method("macdiff")(macdiff_cfg({"model": TINY}))
    m.load_checkpoint(tmp_path / "best.pth")
    clf = m.finetuned_classifier()
    assert not clf.training
    x = torch.randn(2, 3, 16, 25, 2, generator=g)  # [N, C, T, V, M] as the official feeder gives
    with torch.no_grad():
        logits = clf(x)
        n, c, t, v, mm = x.shape
        rows = x.permute(0, 4, 2, 3, 1).reshape(n * mm, t, v, c)
        if clf.self_shift:
            rows = rows - rows.mean(dim=(1, 2), keepdim=True)
        feat = clf.encoder((rows - clf.mean) / clf.std)  # [N*M, TP, VP, D]
        # the official ActionHeadFinetune in eval mode, written with the checkpoint's own tensors
        f = feat.reshape(n, mm, *feat.shape[1:]).mean(2).reshape(n, mm, -1).mean(1)
        h = F.linear(f, sd["head.fc1.weight"], sd["head.fc1.bias"])
        h = F.batch_norm(h, sd["head.bn.running_mean"], sd["head.bn.running_var"], sd["head.bn.weight"],
                         sd["head.bn.bias"], training=False, eps=1e-5)
        ref = F.linear(F.relu(h), sd["head.fc2.weight"], sd["head.fc2.bias"])
    assert logits.shape == (2, 7)
    torch.testing.assert_close(logits, ref, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(clf.encoder.norm.weight, sd["norm.weight"])


def test_finetuned_classifier_needs_a_finetune_head(tmp_path):
    m = get_method("macdiff")(macdiff_cfg({"model": TINY}))
    with pytest.raises(ValueError, match="no classification head loaded"):
        m.finetuned_classifier()
    g = torch.Generator().manual_seed(1)
    sd = {k: v for k, v in _official_finetuned(3, g).items() if not k.startswith("head.")}
    sd.update({"head.fc.weight": torch.zeros(3, 32), "head.fc.bias": torch.zeros(3)})  # a linear-probe head
    torch.save({"model": sd}, tmp_path / "probe.pth")
    m.load_checkpoint(tmp_path / "probe.pth")
    with pytest.raises(ValueError, match="linear-probe head"):
        m.finetuned_classifier()
