"""MLD evaluated as the authors ran it: posterior SAMPLE in the VAE metrics, initial noise on the device.

References: the official ``mld/models/modeltype/mld.py`` (t2m_eval :654 ``vae.encode`` ->
``dist.rsample()`` in ``mld_vae.py:183``; ``_diffusion_reverse`` :303-307 ``torch.randn(...,
device=encoder_hidden_states.device)``), re-derived here with plain torch calls.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluators.core.config import load_config
from evaluators.protocols import RunContext, get_protocol
from methods.mld.method import MLD
from tests.networks._tiny import TinyT2M

TINY = {"condition": "action", "nclasses": 2, "nfeats": 264,  # action motions: [T, 88, 3]
        "vae": {"latent_dim": 16, "ff_size": 32, "num_layers": 1, "num_heads": 2, "dropout": 0.0},
        "denoiser": {"ff_size": 32, "num_layers": 1, "num_heads": 2, "dropout": 0.0},
        "diffusion": {"steps": 2}}


def _tiny(device="cpu"):
    m = MLD(load_config("method", "mld", "paper", patch={**TINY, "max_motion_len": None}), seed=0, device=device)
    m.set_normalization(np.zeros(264), np.ones(264))
    return m


def _capture_zT(m, monkeypatch):
    seen = {}
    orig = m.sample_latents

    def spy(cond, uncond, z_T, steps=None, **kw):
        seen["z_T"] = z_T.detach().clone()
        return orig(cond, uncond, z_T, steps, **kw)

    monkeypatch.setattr(m, "sample_latents", spy)
    return seen


def test_initial_noise_is_drawn_on_the_method_device(monkeypatch):
    m = _tiny()
    seen = _capture_zT(m, monkeypatch)
    devices = []
    real_randn = torch.randn

    def randn(*a, **kw):  # record where the sampler asks for its noise
        devices.append(kw.get("device"))
        return real_randn(*a, **kw)

    torch.manual_seed(123)
    monkeypatch.setattr(torch, "randn", randn)
    m.generate([0, 1, 0], [20, 16, 12])
    monkeypatch.setattr(torch, "randn", real_randn)
    assert devices and torch.device(devices[0]) == m.device  # before: drawn on the CPU whatever the device
    torch.manual_seed(123)
    want = torch.randn(3, m.vae.latent_size, m.vae.latent_dim, device=m.device)
    torch.testing.assert_close(seen["z_T"], want, rtol=0, atol=0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_initial_noise_equals_the_cuda_stream(monkeypatch):
    m = _tiny("cuda")
    seen = _capture_zT(m, monkeypatch)
    torch.manual_seed(7)
    m.generate([0, 1], [20, 16])
    torch.manual_seed(7)
    want = torch.randn(2, m.vae.latent_size, m.vae.latent_dim, device="cuda")
    torch.testing.assert_close(seen["z_T"], want, rtol=0, atol=0)


def test_reconstruct_posterior_sample_decodes_mu_plus_sigma_eps():
    m = _tiny()
    x = torch.randn(2, 24, 264)
    lengths = torch.tensor([24, 24])
    with torch.no_grad():
        mu, logvar = m.vae.encode_dist(x, lengths)
        torch.manual_seed(5)
        eps = torch.randn(mu.shape)
        want = m.vae.decode(mu + (0.5 * logvar).exp() * eps, lengths, max_len=24)
        want_mean = m.vae.decode(mu, lengths, max_len=24)
    torch.manual_seed(5)
    torch.testing.assert_close(m.reconstruct(x, [24, 24], posterior="sample"), want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(m.reconstruct(x, [24, 24]), want_mean, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="posterior"):
        m.reconstruct(x, posterior="mode")


class _Recorder:
    """Test-only VAE-like Reconstructor: records the posterior choice it is asked for."""

    def __init__(self):
        self.calls = []

    def reconstruct(self, x, posterior="mean"):
        self.calls.append(posterior)
        return x


@pytest.mark.parametrize("cfg,want,paper", [({}, "sample", True), ({"posterior": "mean"}, "mean", False)])
def test_reconstruction_protocol_decodes_a_sample_by_default_and_records_it(cfg, want, paper):
    rec = _Recorder()
    res = get_protocol("reconstruction").fn(rec, TinyT2M(n=8, k=2, seed=1),
                                           {"max_samples": 4, "fid": {"enabled": False}, **cfg}, RunContext(seed=0))
    assert rec.calls and set(rec.calls) == {want}  # before: the protocol never asked for a sample
    assert res.extra["posterior"] == want
    assert res.provenance["recipe.vae_posterior"]["paper"] is paper
