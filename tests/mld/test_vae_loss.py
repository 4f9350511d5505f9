"""MLD VAE loss as the authors train it (SmoothL1 features + SmoothL1 joints + KL), the paper's MSE
as a named variant; checked against a direct computation with torch's smooth_l1_loss, the
HumanML3D ``recover_from_ric`` joints and torch.distributions' KL."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from evaluators.core.config import load_config
from evaluators.datasets.motion.humanml3d import recover_from_ric
from methods import get_method

TINY_VAE = {"latent_dim": 16, "ff_size": 32, "num_layers": 1, "num_heads": 2, "dropout": 0.0}


def _method(dim: int, **vae):
    cfg = load_config("method", "mld", "smoke")
    cfg["vae"] = {**cfg["vae"], **TINY_VAE, **vae}
    cfg["nfeats"] = dim
    m = get_method("mld")(cfg, seed=0)
    rng = np.random.default_rng(1)
    m.set_normalization(rng.normal(0, 0.3, dim).astype(np.float32), rng.uniform(0.2, 1.5, dim).astype(np.float32))
    m.vae.eval()  # no dropout: the two computations see the same decoder output
    return m


def _batch(dim: int):
    g = torch.Generator().manual_seed(0)
    lengths = torch.tensor([9, 6, 4])
    x = torch.randn(3, 9, dim, generator=g)
    x = x * (torch.arange(9)[None] < lengths[:, None])[..., None]  # zero padding, as the collate does
    return x, lengths


def _forward(m, x, lengths):
    torch.manual_seed(3)  # the posterior sample
    return m.vae(x, lengths)


def _kl(mu, logvar):
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    return torch.distributions.kl_divergence(q, torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))).mean()


def test_authors_loss_is_the_default_of_the_paper_experiments():
    from evaluators.runner.run import compose, load_plugins, plan

    load_plugins()
    for exp in ("mld_humanml3d", "mld_kit"):
        v = plan(compose([f"+experiment={exp}", "scale=paper"]), [], check_data=False).method_cfg["vae"]
        assert (v["rec_loss"], v["lambda_rec"], v["lambda_joint"], v["kl_weight"]) == ("smooth_l1_joints", 1.0, 1.0, 1e-4)
    v = plan(compose(["+experiment=mld_humanml3d", "+ablation=mld_vae_mse", "scale=paper"]), [],
             check_data=False).method_cfg["vae"]
    assert v["rec_loss"] == "mse"


@pytest.mark.parametrize("dim,joints", [(263, 22), (251, 21)])
def test_authors_vae_loss_equals_direct_computation(dim, joints):
    m = _method(dim)
    x, lengths = _batch(dim)
    torch.manual_seed(3)
    loss, logs = m.vae_step_loss(x, lengths)
    x_hat, mu, logvar = _forward(m, x, lengths)
    mean, std = m.mean, m.std
    j_hat, j_ref = recover_from_ric(x_hat * std + mean, joints), recover_from_ric(x * std + mean, joints)
    assert j_ref.shape == (3, 9, joints, 3)
    direct = F.smooth_l1_loss(x_hat, x) + F.smooth_l1_loss(j_hat, j_ref) + 1e-4 * _kl(mu, logvar)
    assert float(loss.detach()) == pytest.approx(float(direct), rel=1e-6)
    assert logs["joint"] == pytest.approx(float(F.smooth_l1_loss(j_hat, j_ref)), rel=1e-6) and logs["joint"] > 0
    loss.backward()  # the joint term is differentiable through recover_from_ric
    assert all(p.grad is not None for p in m.vae.final_layer.parameters())


def test_paper_mse_variant_and_weights():
    dim = 263
    x, lengths = _batch(dim)
    m = _method(dim, rec_loss="mse")
    torch.manual_seed(3)
    loss, _ = m.vae_step_loss(x, lengths)
    x_hat, mu, logvar = _forward(m, x, lengths)
    valid = (torch.arange(9)[None] < lengths[:, None])
    direct = F.mse_loss(x_hat[valid], x[valid]) + 1e-4 * _kl(mu, logvar)
    assert float(loss.detach()) == pytest.approx(float(direct), rel=1e-6)
    assert m.provenance()["vae_loss"]["id"] == "mse"
    m2 = _method(dim, lambda_rec=2.0, lambda_joint=0.5, kl_weight=1e-3)
    torch.manual_seed(3)
    loss2, _ = m2.vae_step_loss(x, lengths)
    x_hat, mu, logvar = _forward(m2, x, lengths)
    j = lambda f: recover_from_ric(f * m2.std + m2.mean, 22)  # noqa: E731
    direct2 = 2.0 * F.smooth_l1_loss(x_hat, x) + 0.5 * F.smooth_l1_loss(j(x_hat), j(x)) + 1e-3 * _kl(mu, logvar)
    assert float(loss2) == pytest.approx(float(direct2), rel=1e-6)
    assert m2.provenance()["vae_loss"] == {"id": "smooth_l1_joints", "recipe": True,
                                           "label": "SmoothL1 features + SmoothL1 joints + KL (authors' code)"}


def test_joint_loss_refuses_features_it_cannot_turn_into_joints():
    m = _method(40)
    x, lengths = _batch(40)
    with pytest.raises(ValueError, match="rec_loss"):
        m.vae_step_loss(x, lengths)
