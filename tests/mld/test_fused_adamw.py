"""``vae.fused_adamw`` / ``denoiser.fused_adamw``: the stage's optimiser is torch's fused AdamW only when asked."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import methods.mld.training as mld_training
from evaluators.core.config import load_config
from methods import get_method


@pytest.mark.parametrize("fused", [False, True])
def test_stage_optimizer_is_fused_only_when_configured(monkeypatch, fused):
    cfg = load_config("method", "mld", "smoke")
    cfg.update(condition="action", nclasses=3, nfeats=12)
    cfg["denoiser"] = {**cfg["denoiser"], "fused_adamw": fused}
    m = get_method("mld")(cfg, seed=0)
    m.set_normalization(np.zeros(12, np.float32), np.ones(12, np.float32))
    seen = {}

    def fake_train(*, optimizer, **kwargs):
        seen["opt"] = optimizer
        return type("State", (), {"step": 0, "logs": {}})()

    monkeypatch.setattr(mld_training, "train", fake_train)
    m._train(m.denoiser, dict(m.cfg["denoiser"]), view=[], step_fn=None, name="denoiser")
    opt = seen["opt"]
    assert isinstance(opt, torch.optim.AdamW)
    assert bool(opt.defaults["fused"]) is fused
    assert opt.defaults["lr"] == pytest.approx(float(cfg["denoiser"]["lr"]))
