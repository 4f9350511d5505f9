"""``mask_transformer.onednn_linear`` / ``residual_transformer.onednn_linear``: a training step on
oneDNN's linear gives autograd's loss and gradients of the usual step (1e-5), and is off by default."""

from __future__ import annotations

import logging

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from evaluators.core.config import load_config
from methods import get_method
from methods.common import onednn_linear
from methods.momask import training


def _smoke(on: bool):
    cfg = load_config("method", "momask", "smoke", ["render.n=0", f"mask_transformer.onednn_linear={str(on).lower()}"])
    return get_method("momask")(cfg, seed=0)


def _loss_and_grads(m, ids, pad, caps):
    m.mtrans.train()
    torch.manual_seed(3)  # the same random mask and corruption on both sides
    with m.linear_mode("mask_transformer"):
        loss, _ = m.mask_loss(ids, pad, caps, 0)
    params = [p for p in m.mtrans.parameters() if p.requires_grad]
    return loss, torch.autograd.grad(loss, params, allow_unused=True)


@pytest.mark.skipif(onednn_linear.unavailable() is not None, reason="oneDNN linear unavailable in this torch")
def test_masked_transformer_step_on_onednn_matches_the_usual_step():
    usual, ours = _smoke(False), _smoke(True)
    ours.load_state_dict(usual.state_dict())
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, usual.mtrans.mask_id, (3, 12), generator=g)
    pad = torch.zeros(3, 12, dtype=torch.bool)
    pad[1, 9:] = True
    caps = ["a person walks forward", "someone jumps", "a man waves"]
    want, want_g = _loss_and_grads(usual, ids, pad, caps)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        got, got_g = _loss_and_grads(ours, ids, pad, caps)
    assert sum(e.name == "mkldnn::_linear_pointwise" for e in prof.events()) > 0  # the switch did route
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    for a, b in zip(got_g, want_g):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    assert isinstance(usual.linear_mode("mask_transformer"), type(training.contextlib.nullcontext()))


def test_without_onednn_the_step_keeps_the_usual_products_with_one_warning(monkeypatch, caplog):
    m = _smoke(True)
    monkeypatch.setattr(training, "_warned", set())
    monkeypatch.setattr(onednn_linear, "unavailable", lambda: "no oneDNN in this build")
    with caplog.at_level(logging.WARNING, logger=training.__name__):
        modes = [m.linear_mode("mask_transformer") for _ in range(2)]
    assert not any(isinstance(x, onednn_linear.LinearMode) for x in modes)
    assert [r.getMessage() for r in caplog.records] == [
        "mask_transformer.onednn_linear: no oneDNN in this build; training on the usual products"]
