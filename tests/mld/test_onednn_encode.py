"""``denoiser.onednn_linear``: the frozen VAE encode of each denoiser step on oneDNN's packed linear
gives the eager encode's posterior (1e-5), reaches the training step, and falls back with one warning."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

import methods.mld.training as mld_training
from evaluators.core.config import load_config
from methods import get_method
from methods.common import onednn_linear
from methods.mld.vae import MotionVAE

needs_onednn = pytest.mark.skipif(onednn_linear.unavailable() is not None, reason="oneDNN linear unavailable")


@needs_onednn
@pytest.mark.parametrize("latent_size", [1, 2])
def test_packed_encode_gives_the_eager_posterior_on_padded_batches(latent_size):
    torch.manual_seed(0)
    vae = MotionVAE(12, latent_size, 32, ff_size=64, num_layers=3, num_heads=4).eval()
    x = torch.randn(4, 20, 12)
    lengths = torch.tensor([20, 13, 7, 20])
    packs = onednn_linear.PackedWeights(rows=88)
    with torch.no_grad():
        want = vae.encode(x, lengths, generator=torch.Generator().manual_seed(1))
        got = vae.encode(x, lengths, generator=torch.Generator().manual_seed(1), lin=packs.linear)
        frames_beyond = vae.encode(torch.where(torch.arange(20)[None, :, None] < lengths[:, None, None], x, 5.0),
                                   lengths, sample=False, lin=packs.linear)[1]
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(frames_beyond, want[1], rtol=1e-5, atol=1e-5)  # padding is masked out


def test_packed_encode_refuses_a_vae_in_training_mode():
    vae = MotionVAE(12, 1, 32, ff_size=64, num_layers=3, num_heads=4).train()
    with pytest.raises(ValueError, match="the VAE in training mode"):
        vae.encode(torch.randn(2, 5, 12), torch.tensor([5, 3]), lin=onednn_linear.PackedWeights(1).linear)


def _mld(onednn: bool):
    cfg = load_config("method", "mld", "smoke")
    cfg.update(condition="action", nclasses=3, nfeats=12)
    cfg["denoiser"] = {**cfg["denoiser"], "onednn_linear": onednn}
    m = get_method("mld")(cfg, seed=0)
    m.set_normalization(np.zeros(12, np.float32), np.ones(12, np.float32))
    m.vae.eval()
    return m


@needs_onednn
def test_the_denoiser_stage_encodes_on_onednn_only_when_configured():
    assert _mld(False).frozen_encode_linear() is None
    lin = _mld(True).frozen_encode_linear()
    assert lin is not None and isinstance(lin.__self__, onednn_linear.PackedWeights)


def test_without_onednn_the_stage_keeps_the_eager_encode_with_a_warning(monkeypatch, caplog):
    monkeypatch.setattr(mld_training.onednn_linear, "unavailable", lambda: "no oneDNN in this build")
    with caplog.at_level(logging.WARNING, logger=mld_training.__name__):
        assert _mld(True).frozen_encode_linear() is None
    assert [r.getMessage() for r in caplog.records] == [
        "mld: denoiser.onednn_linear: no oneDNN in this build; the frozen VAE encodes on its eager modules"]


@needs_onednn
@pytest.mark.parametrize("onednn", [False, True])
def test_a_denoiser_training_step_encodes_where_configured(monkeypatch, onednn):
    from torch.profiler import ProfilerActivity, profile

    m = _mld(onednn)
    seen = {}
    monkeypatch.setattr(m, "_train", lambda module, sc, view, step_fn, name: seen.setdefault("step", step_fn))
    m._fit_denoiser(view=[])
    batch = {"motion": torch.randn(2, 16, 12), "length": torch.tensor([16, 9]), "cond": torch.tensor([0, 2])}
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        loss, logs = seen["step"](batch, 0)
    assert torch.isfinite(loss) and "eps_mse" in logs
    assert any(e.name == "mkldnn::_linear_pointwise" for e in prof.events()) is onednn
