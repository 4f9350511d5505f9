"""``precision: fp32 | bf16`` of every generator's sampler.

For each method, on an untrained smoke model and the same inputs / seed:

- bf16 output agrees with fp32 to a relative error (max |bf16 - fp32| / max |fp32|) below
  :data:`REL_TOL`. Why 5e-2: bf16 keeps 8 significant bits, so one rounding is off by up to
  2^-8 = 3.9e-3 relative; the weights and each layer's input are rounded (matmuls accumulate
  in fp32 on the CPU), and the error of a few-layer network grows roughly with the square root
  of the roundings on the way, giving measured errors of 0.5e-2 to 2e-2 here. A wrong cast, a
  stale copy or bf16 state in the sampler gives errors of order 1;
- bf16 really ran: a forward hook inside the cached copy sees bf16 inputs and bf16 weights,
  while the trained fp32 weights are untouched (a test that ignored ``precision`` would fail);
- ``sampler_settings()`` (and so the run record) carries ``precision``;
- changing the weights after sampling (``load_state_dict``, an optimiser step) rebuilds the copy.

Invalid values exit 2 through the CLI (see the ``cfg-precision-*`` rows of
``tests/safety/test_bad_inputs_table.py``).
"""

from __future__ import annotations

import pytest
import torch

from evaluators.core.config import load_config
from evaluators.core.precision import check_precision
from methods import get_method

REL_TOL = 5e-2


def rel_err(ref: torch.Tensor, x: torch.Tensor) -> float:
    return float((ref.float() - x.float()).abs().max() / ref.float().abs().max())


class DtypeSpy:
    """Forward pre-hook that records the dtype of the first tensor argument of ``module``."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.seen: list[torch.dtype] = []
        self.handle = module.register_forward_pre_hook(lambda m, a: self.seen.append(a[0].dtype))


# -- MoMask / HGM3 ---------------------------------------------------------------------------------------------------
def _token_method(name: str, precision: str, seed: int = 0):
    cfg = load_config("method", name, "smoke")
    cfg["sampler"] = {**cfg["sampler"], "precision": precision}
    return get_method(name)(cfg, seed=seed)


CAPS = ["a man walks forward", "a person jumps twice", "someone waves"]


@pytest.mark.parametrize("name", ["momask", "hgm3"])
def test_token_networks_bf16_close_to_fp32_and_really_bf16(name):
    a, b = _token_method(name, "fp32"), _token_method(name, "bf16")
    b.load_state_dict(a.state_dict())
    n, nq = 6, b.rtrans.nq
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, a.mtrans.num_tokens, (3, n, nq), generator=g)
    pad = torch.zeros(3, n, dtype=torch.bool)
    pad[2, 4:] = True
    with torch.inference_mode():
        for m in (a, b):
            for mod in m.components().values():
                mod.eval()
        mt_a, rt_a = a._sampling_modules()
        mt_b, rt_b = b._sampling_modules()
        assert mt_a is a.mtrans and rt_a is a.rtrans  # fp32: the trained modules themselves
        spy = DtypeSpy(mt_b.seqTransEncoder.layers[0].linear1)
        rspy = DtypeSpy(rt_b.seqTransEncoder.layers[0].linear1)
        # one guided decoding iteration per level (HGM3: three condition levels) and one residual layer
        for (ca, pa), (cb, pb) in zip(a.conditions(CAPS), b.conditions(CAPS)):
            la = mt_a.cfg_logits(ids[..., 0], ca, pad, pa, 4.0)
            lb = mt_b.cfg_logits(ids[..., 0], cb, pad, pb, 4.0)
            assert lb.dtype == torch.float32 and 0 < rel_err(la, lb) < REL_TOL, rel_err(la, lb)
        hist = a.rtrans.history(torch.where(pad[..., None], a.rtrans.pad_id, ids), torch.full((3,), 2))
        cond = a.text.encode(CAPS)
        ra = rt_a.cfg_logits(hist, 2, cond, pad, 5.0)
        rb = rt_b.cfg_logits(hist, 2, cond, pad, 5.0)
        assert rb.dtype == torch.float32 and 0 < rel_err(ra, rb) < REL_TOL, rel_err(ra, rb)
        # RVQ decoder on the same ids
        xa, xb = a._decode(ids), b._decode(ids)
        assert xb.dtype == torch.float32 and 0 < rel_err(xa, xb) < REL_TOL, rel_err(xa, xb)
    assert set(spy.seen) == {torch.bfloat16} and set(rspy.seen) == {torch.bfloat16}
    assert next(mt_b.parameters()).dtype == torch.bfloat16 and next(b._low["decoder"].parameters()).dtype == torch.bfloat16
    assert next(b.mtrans.parameters()).dtype == torch.float32  # the trained weights are untouched
    assert a.sampler_settings()["precision"] == "fp32" and b.sampler_settings()["precision"] == "bf16"


@pytest.mark.parametrize("name", ["momask", "hgm3"])
def test_token_generate_runs_the_bf16_copies(name):
    """Full generate() at bf16: finite fp32 motions, and the decoding loop called the bf16 copies."""
    m = _token_method(name, "bf16")
    mt, rt = m._sampling_modules()
    spy, rspy = DtypeSpy(mt.seqTransEncoder.layers[0].linear1), DtypeSpy(rt.seqTransEncoder.layers[0].linear1)
    torch.manual_seed(0)
    out = m.generate(CAPS, [24, 16, 12], steps=3)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert len(spy.seen) == 3 and set(spy.seen) == {torch.bfloat16}  # one guided pass per iteration
    assert len(rspy.seen) == rt.nq - 1 and set(rspy.seen) == {torch.bfloat16}
    assert m._sampling_modules()[0] is mt  # cached: cast once, not per call


def test_token_bf16_copy_follows_weight_changes():
    a, b = _token_method("momask", "bf16", seed=0), _token_method("momask", "fp32", seed=1)
    with torch.inference_mode():
        old, _ = a._sampling_modules()
    a.load_state_dict(b.state_dict())  # e.g. a checkpoint loaded after a first sampling call
    with torch.inference_mode():
        new, _ = a._sampling_modules()
    assert new is not old
    w = b.mtrans.seqTransEncoder.layers[0].linear1.weight
    assert torch.equal(new.seqTransEncoder.layers[0].linear1.weight, w.to(torch.bfloat16))
    # an optimiser step (training resumed) also invalidates it
    opt = torch.optim.SGD(a.mtrans.parameters(), lr=0.1)
    a.mtrans.seqTransEncoder.layers[0].linear1.weight.grad = torch.ones_like(w)
    opt.step()
    with torch.inference_mode():
        newer, _ = a._sampling_modules()
    assert newer is not new
    assert torch.equal(newer.seqTransEncoder.layers[0].linear1.weight,
                       a.mtrans.seqTransEncoder.layers[0].linear1.weight.to(torch.bfloat16))


def test_invalid_precision_names_the_key():
    with pytest.raises(ValueError, match="sampler.precision"):
        _token_method("momask", "fp16x").sampler_settings()
    with pytest.raises(ValueError, match="x.precision"):
        check_precision("fp16x", "x.precision")


# -- MLD (denoiser: tests/mld/test_precision.py; here the whole generate() incl. the VAE decoder) ----------------
def _mld(precision: str, seed: int = 0):
    import numpy as np

    cfg = load_config("method", "mld", "smoke")
    cfg.update(condition="action", nclasses=3, nfeats=12)
    cfg["diffusion"] = {**cfg["diffusion"], "precision": precision}
    m = get_method("mld")(cfg, seed=seed)
    m.set_normalization(np.zeros(12, np.float32), np.ones(12, np.float32))
    return m


def test_mld_bf16_generate_close_to_fp32_and_decodes_in_bf16():
    """Guidance s = 7.5 multiplies the bf16 error of (eps_cond - eps_uncond) by s (measured: 0.5e-2 at
    s = 1, 3e-2 at s = 7.5 on the latents), hence the bound 0.1 of tests/mld/test_precision.py for the
    guided output; the VAE decoder alone is held to :data:`REL_TOL`."""
    a, b = _mld("fp32"), _mld("bf16")
    b.load_state_dict(a.state_dict())
    z = torch.randn(3, a.vae.latent_size, a.vae.latent_dim, generator=torch.Generator().manual_seed(0))
    lens = [20, 16, 12]
    assert a._sampling_vae() is a.vae
    spy = DtypeSpy(b._sampling_vae().final_layer)
    xa, xb = a.generate([0, 1, 2], lens, steps=4, z_T=z), b.generate([0, 1, 2], lens, steps=4, z_T=z)
    assert xb.dtype == torch.float32 and 0 < rel_err(xa, xb) < 0.1, rel_err(xa, xb)
    assert spy.seen == [torch.bfloat16]
    with torch.inference_mode():
        a.vae.eval()
        da, db = a.vae.decode(z, torch.tensor(lens)), b._sampling_vae().decode(z, torch.tensor(lens))
    assert db.dtype == torch.float32 and 0 < rel_err(da, db) < REL_TOL, rel_err(da, db)
    assert next(b.vae.parameters()).dtype == torch.float32


def test_mld_bf16_vae_copy_follows_weight_changes():
    a, b = _mld("bf16", seed=0), _mld("fp32", seed=1)
    old = a._sampling_vae().final_layer
    a.load_state_dict(b.state_dict())
    new = a._sampling_vae().final_layer
    assert new is not old and a._sampling_vae().final_layer is new
    assert torch.equal(new.weight, b.vae.final_layer.weight.to(torch.bfloat16))


# -- MacDiff reconstruction / augmentation ------------------------------------------------------------------------
def _macdiff(precision: str, seed: int = 0):
    cfg = load_config("method", "macdiff", "smoke")
    cfg["sampling"] = {**cfg["sampling"], "precision": precision}
    return get_method("macdiff")(cfg, seed=seed)


def test_macdiff_bf16_reconstruction_and_augmentation_close_to_fp32():
    a, b = _macdiff("fp32"), _macdiff("bf16")
    b.load_state_any({"encoder": a.core.encoder.state_dict(), "decoder": a.core.decoder.state_dict()})
    x = torch.randn(2, 3, a.window, a.core.encoder.num_joints, 2, generator=torch.Generator().manual_seed(0))
    assert a._sampling_core() is a.core
    spy = DtypeSpy(b._sampling_core().decoder.blocks[0].attn.qkv)
    for kw in ({"steps": 4}, {"steps": 4, "guidance": 2.0}):  # plain and CFG (one batched [cond; uncond] call)
        ra, rb = a.reconstruct(x, **kw), b.reconstruct(x, **kw)
        assert rb.dtype == torch.float32 and 0 < rel_err(ra, rb) < REL_TOL, (kw, rel_err(ra, rb))
    assert len(spy.seen) == 4 + 4  # every DDIM step of both calls ran the bf16 copy
    xa, _ = a.augment(x, [0, 1], 1.0)
    xb, _ = b.augment(x, [0, 1], 1.0)
    assert 0 < rel_err(xa, xb) < REL_TOL, rel_err(xa, xb)
    assert len(spy.seen) > 8 and set(spy.seen) == {torch.bfloat16}  # augmentation too
    assert next(b.core.decoder.parameters()).dtype == torch.float32
    assert a.sampler_settings()["precision"] == "fp32" and b.sampler_settings()["precision"] == "bf16"


def test_macdiff_bf16_copy_follows_weight_changes():
    a, b = _macdiff("bf16", seed=0), _macdiff("fp32", seed=1)
    old = a._sampling_core().decoder
    a.load_state_any({"encoder": b.core.encoder.state_dict(), "decoder": b.core.decoder.state_dict()})
    new = a._sampling_core().decoder
    assert new is not old and a._sampling_core().decoder is new  # rebuilt once, then cached
    assert torch.equal(new.pred.weight, b.core.decoder.pred.weight.to(torch.bfloat16))


# -- DiffusionPose ------------------------------------------------------------------------------------------------------
def _pose(precision: str, seed: int = 0):
    cfg = load_config("method", "diffusionpose", "smoke")
    cfg["precision"] = precision
    return get_method("diffusionpose")(cfg, seed=seed)


def test_diffusionpose_bf16_networks_close_to_fp32_and_really_bf16():
    """Per network on the same inputs, and the whole reverse process at 0 steps (the coarse heatmap).
    Several steps are not compared end to end: each step re-decodes keypoints by ARGMAX, which on an
    untrained model's near-flat heatmaps jumps by pixels under any perturbation (bf16 or a different
    BLAS), so a tolerance there would test the argmax, not the precision."""
    a, b = _pose("fp32"), _pose("bf16")
    b.net.load_state_dict(a.net.state_dict())
    a.net.eval()  # BatchNorm: running statistics, as inference uses them
    x = torch.randn(2, 3, a.input_size[1], a.input_size[0], generator=torch.Generator().manual_seed(0))
    na, nb = a._sampling_net(), b._sampling_net()
    assert na is a.net
    spy = DtypeSpy(nb.decoder.inp)
    with torch.inference_mode():
        fa, ca = na.features(x)
        fb, cb = nb.features(x)
        assert fb.dtype == torch.float32 and 0 < rel_err(fa, fb) < REL_TOL and 0 < rel_err(ca, cb) < REL_TOL
        w, h = a.heatmap_size
        y = torch.rand(2, a.num_keypoints, 2, generator=torch.Generator().manual_seed(1)) * torch.tensor([w - 1.0, h - 1.0])
        t = torch.full((2,), 500, dtype=torch.long)
        da, db = na.denoise(fa, y, t), nb.denoise(fa, y, t)
        assert db.dtype == torch.float32 and 0 < rel_err(da, db) < REL_TOL, rel_err(da, db)
    ha, hb = a.heatmaps(x, 0, flip=False), b.heatmaps(x, 0, flip=False)
    assert 0 < rel_err(ha, hb) < REL_TOL
    out = b.heatmaps(x, 2, flip=True)  # the full reverse process runs in bf16 and returns fp32
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert len(spy.seen) == 1 + 2 * 2 and set(spy.seen) == {torch.bfloat16}  # denoise above + 2 steps x 2 flips
    assert next(b.net.parameters()).dtype == torch.float32
    assert a.sampler_settings()["precision"] == "fp32" and b.sampler_settings()["precision"] == "bf16"


def test_diffusionpose_bf16_copy_follows_weight_changes():
    a, b = _pose("bf16", seed=0), _pose("fp32", seed=1)
    old = a._sampling_net().decoder
    a.net.load_state_dict(b.net.state_dict())
    new = a._sampling_net().decoder
    assert new is not old and a._sampling_net().decoder is new
    assert torch.equal(new.inp.weight, b.net.decoder.inp.weight.to(torch.bfloat16))


# -- through the CLI: a bad value exits 2 before any work, naming the key ---------------------------------------------
PRECISION_KEYS = {
    "mld": ("mld_synth-t2m", "method_cfg.diffusion.precision"),
    "momask": ("momask_synth-t2m", "method_cfg.sampler.precision"),
    "hgm3": ("hgm3_synth-t2m", "method_cfg.sampler.precision"),
    "macdiff": ("macdiff_synth-ntu", "method_cfg.sampling.precision"),
    "diffusionpose": ("diffusionpose_synth-coco", "method_cfg.precision"),
}


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
@pytest.mark.parametrize("name", sorted(PRECISION_KEYS))
def test_cli_refuses_an_unknown_precision(name, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    exp, key = PRECISION_KEYS[name]
    repo = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(repo), OMP_NUM_THREADS="1", MOTIONREPRO_RUNS=str(tmp_path / "runs"))
    p = subprocess.run([sys.executable, "-m", "evaluators.runner.run", f"+experiment={exp}", "scale=smoke", f"{key}=fp16x"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    err = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert p.returncode == 2, p.stderr[-2000:]
    assert len(err) == 1 and key.split(".", 1)[1] in err[0] and "fp16x" in err[0] and "Traceback" not in p.stderr
    assert not (tmp_path / "runs" / "records").exists() or not any((tmp_path / "runs" / "records").iterdir())
