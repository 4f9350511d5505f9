"""MLD ablation configs (configs/ablation/mld_*.yaml) compose with the HumanML3D experiment and
reach the built model: MLD-7 latent, cross-attention conditioning, no skip connections."""

from __future__ import annotations

import pytest

from methods.mld.layers import SkipTransformerEncoder
from methods.mld.method import MLD

CASES = {
    "mld_latent7": lambda m: m.vae.latent_size == 7 and m.denoiser.latent_size == 7,
    "mld_crossattn": lambda m: m.denoiser.arch == "trans_dec",
    "mld_noskip": lambda m: m.denoiser.arch == "trans_enc"
    and not isinstance(m.denoiser.encoder, SkipTransformerEncoder),
}


@pytest.mark.parametrize("ablation", sorted(CASES))
def test_ablation_composes_and_changes_the_model(ablation):
    from evaluators.runner.run import compose, load_plugins, plan

    load_plugins()
    p = plan(compose(["+experiment=mld_humanml3d", f"+ablation={ablation}", "scale=smoke"]), [],
             check_data=False)
    cfg = dict(p.method_cfg, nfeats=12, text_encoder={"kind": "clip", "dim": 8})  # no encoder load
    assert CASES[ablation](MLD(cfg, seed=0))
    base = plan(compose(["+experiment=mld_humanml3d", "scale=smoke"]), [], check_data=False).method_cfg
    assert not CASES[ablation](MLD(dict(base, nfeats=12, text_encoder={"kind": "clip", "dim": 8}), seed=0))
