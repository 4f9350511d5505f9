"""Fused MoMask/HGM3 decoding against the unfused reference.

- the fused top-k sampler (draw among the k kept values, gather the index) gives exactly the ids
  of the unfused ``top_k_filter`` + ``gumbel_argmax`` when both see the same Gumbel noise on the
  kept entries, and the argmax at temperature -> 0 (its distribution is tested by chi-square in
  ``test_token_samplers.py``, which calls the same ``sample_ids``);
- the guided forwards with resident buffers (``guidance`` once per call, then ``guided_logits``)
  equal the per-iteration forward on the repeated cond/uncond batch that decoding ran before;
- greedy decoding end to end (layer 0 + residual layers, MoMask and HGM3 at smoke scale) gives
  the same token ids as the earlier per-iteration loop restated below with the unchanged ``forward``;
- ``sampler.compile``: compiled and eager guided logits agree to 1e-5; a failing compile falls
  back to eager with one warning.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch

from methods.common.sampling import gumbel_argmax, gumbel_noise
from methods.momask import masking as M
from methods.momask.transformer import MaskTransformer, ResidualTransformer

CAPS = ["a person walks forward and then turns left.", "someone slowly crouches down",
        "a man jumps twice", "the person waves with the right hand"]


def _logits(b=16, n=7, k=64, seed=0):
    return torch.randn(b, n, k, generator=torch.Generator().manual_seed(seed)) * 1.5


@pytest.mark.parametrize("thres", [0.0, 0.5, 0.9])
@pytest.mark.parametrize("temperature", [0.6, 1.0, 1.7])
def test_fused_gumbel_equals_unfused_with_same_noise(thres, temperature):
    lg = _logits()
    full = gumbel_noise(lg.shape, generator=torch.Generator().manual_seed(11))
    # unfused reference: -inf outside the top k, Gumbel-max over all K with the same noise stream
    ref = gumbel_argmax(M.top_k_filter(lg, thres), temperature, torch.Generator().manual_seed(11))
    k = max(1, math.ceil((1 - thres) * lg.shape[-1]))
    keep = torch.from_numpy(np.argsort(-lg.numpy(), axis=-1, kind="stable")[..., :k].copy())  # descending
    got = M.sample_ids(lg, temperature, thres, gumbel=True, noise=full.gather(-1, keep))
    assert torch.equal(got, ref)
    assert torch.equal(ref, (M.top_k_filter(lg, thres) / temperature + full).argmax(-1))


@pytest.mark.parametrize("gumbel", [False, True], ids=["categorical", "gumbel"])
@pytest.mark.parametrize("thres", [0.0, 0.9])
def test_fused_sampler_is_argmax_as_temperature_goes_to_zero(gumbel, thres):
    lg = _logits(seed=3)
    got = M.sample_ids(lg, 1e-12, thres, gumbel=gumbel, generator=torch.Generator().manual_seed(0))
    assert torch.equal(got, torch.from_numpy(lg.numpy().argmax(-1)))


def test_confidence_is_unfiltered_softmax_without_temperature_at_the_prediction():
    lg = _logits(seed=5).double()
    pred = torch.randint(0, lg.shape[-1], lg.shape[:-1], generator=torch.Generator().manual_seed(1))
    z = lg.numpy()
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    ref = np.take_along_axis(p, pred.numpy()[..., None], -1)[..., 0]
    np.testing.assert_allclose(M.confidence(lg, pred).numpy(), ref, rtol=1e-12)


# -- guided forwards with resident buffers ---------------------------------------------------------
def _force(b):
    return torch.cat([torch.zeros(b, dtype=torch.bool), torch.ones(b, dtype=torch.bool)])


@pytest.mark.parametrize("hier", [False, True], ids=["momask", "hgm3-levels"])
@pytest.mark.parametrize("scale", [4.0, 1.0, "uncond"])
def test_mask_guided_logits_equal_repeated_batch_forward(hier, scale):
    torch.manual_seed(0)
    mt = MaskTransformer(num_tokens=40, code_dim=16, latent_dim=32, ff_size=48, num_layers=2, num_heads=4,
                         cond_dim=24, pe_over_condition=hier).eval()
    b, n, lc = 3, 9, (5 if hier else 1)
    ids = torch.randint(0, 42, (b, n))
    pad = M.lengths_to_pad(torch.tensor([9, 6, 2]), n)
    cond = torch.randn(b, lc, 24)
    cpad = (torch.arange(lc)[None] >= torch.tensor([5, 3, 1])[:, None]) if hier else None
    with torch.inference_mode():
        if scale == "uncond":
            ref = mt(ids, cond, pad, cpad, force_uncond=True)
            got = mt.guided_logits(ids, mt.guidance(cond, pad, cpad, 4.0, force_uncond=True))
        elif scale == 1:
            ref = mt(ids, cond, pad, cpad)
            got = mt.guided_logits(ids, mt.guidance(cond, pad, cpad, 1.0))
        else:
            both = mt(ids.repeat(2, 1), cond.repeat(2, 1, 1), pad.repeat(2, 1),
                      None if cpad is None else cpad.repeat(2, 1), _force(b))
            ref = both[b:] + (both[:b] - both[b:]) * scale
            got = mt.guided_logits(ids, mt.guidance(cond, pad, cpad, scale))
    torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("share", [True, False])
@pytest.mark.parametrize("scale", [5.0, 1.0])
def test_residual_guided_logits_equal_repeated_batch_forward(share, scale):
    torch.manual_seed(0)
    rt = ResidualTransformer(num_tokens=40, num_quantizers=4, code_dim=16, latent_dim=32, ff_size=48, num_layers=2,
                             num_heads=4, cond_dim=24, share_weight=share).eval()
    b, n = 3, 8
    hist = torch.randn(b, n, 16)
    pad = M.lengths_to_pad(torch.tensor([8, 5, 1]), n)
    cond = torch.randn(b, 24)
    with torch.inference_mode():
        g = rt.guidance(cond, pad, scale)
        for q in range(1, 4):
            qids = torch.full((b,), q)
            if scale == 1:
                ref = rt(hist, qids, cond, pad)
            else:
                both = rt(hist.repeat(2, 1, 1), qids.repeat(2), cond.repeat(2, 1), pad.repeat(2, 1), _force(b))
                ref = both[b:] + (both[:b] - both[b:]) * scale
            torch.testing.assert_close(rt.guided_logits(hist, q, g), ref, rtol=1e-5, atol=1e-6)


# -- greedy decoding end to end = the earlier per-iteration loop --------------------------------------
def _old_greedy_tokens(m, caps, tok, steps):
    """The decoding loop as it was before the fused decoding (per-iteration repeated-batch forwards, a full
    -inf top-k tensor, softmax + gather confidence), at temperature -> 0 (argmax of the filtered logits)."""
    mt, rt, s = m.mtrans, m.rtrans, m.c["sampler"]
    for mod in m.components().values():
        mod.eval()
    levels = m.conditions(caps)
    n, b = int(tok.max()), len(caps)
    pad = M.lengths_to_pad(tok, n)
    ids = torch.where(pad, mt.pad_id, mt.mask_id)
    scores = torch.where(pad, 1e5, 0.0).float()
    for k, t in enumerate(torch.linspace(0, 1, steps)):
        count = (M.cosine_schedule(t) * tok).round().clamp(min=1)
        is_mask = scores.argsort(-1).argsort(-1) < count[:, None]
        ids = torch.where(is_mask, mt.mask_id, ids)
        cond, cpad = levels[m.level_at(k, steps, len(levels))]
        both = mt(ids.repeat(2, 1), cond.repeat(2, 1, 1), pad.repeat(2, 1),
                  None if cpad is None else cpad.repeat(2, 1), _force(b))
        logits = both[b:] + (both[:b] - both[b:]) * s["cond_scale"]
        pred = M.top_k_filter(logits, s["topk_thres"]).argmax(-1)
        ids = torch.where(is_mask, pred, ids)
        scores = logits.softmax(-1).gather(-1, pred[..., None])[..., 0].masked_fill(~is_mask, 1e5)
    cur = torch.where(pad, rt.pad_id, ids)
    cond = m.text.encode(caps)
    emb, _ = rt.embed_tables()
    out, hist = [cur], 0
    for q in range(1, rt.nq):
        hist = hist + emb[q - 1][cur]
        qids = torch.full((2 * b,), q)
        both = rt(hist.repeat(2, 1, 1), qids, cond.repeat(2, 1), pad.repeat(2, 1), _force(b))
        logits = both[b:] + (both[:b] - both[b:]) * s["res_cond_scale"]
        cur = torch.where(pad, rt.pad_id, M.top_k_filter(logits, s["topk_thres"]).argmax(-1))
        out.append(cur)
    ids = torch.stack(out, -1)
    return torch.where(ids == rt.pad_id, -1, ids)


@pytest.mark.parametrize("name", ["momask", "hgm3"])
def test_greedy_decoding_reproduces_the_old_loop(name):
    from evaluators.core.config import load_config
    from methods import get_method

    cfg = load_config("method", name, "smoke", ["render.n=0", "sampler.temperature=1e-12"])
    m = get_method(name)(cfg, seed=0)
    with torch.no_grad():  # untrained weights barely see the condition: make guidance matter
        for mod in (m.mtrans, m.rtrans):
            mod.cond_emb.weight.mul_(50.0)
            mod.output_process.poseFinal.weight.mul_(5.0)
    tok = torch.tensor([12, 7, 12, 3])
    with torch.inference_mode():
        ref = _old_greedy_tokens(m, CAPS, tok, 6)
        got = m.generate_tokens(CAPS, tok, 6)
    assert got.shape == ref.shape == (4, 12, m.rtrans.nq)
    assert torch.equal(got, ref)
    assert len(got[..., 0].unique()) > 3  # a real trajectory, not a collapsed one


# -- sampler.compile ---------------------------------------------------------------------------------
def _smoke(name="momask", extra=()):
    from evaluators.core.config import load_config
    from methods import get_method

    return get_method(name)(load_config("method", name, "smoke", ["render.n=0", *extra]), seed=0)


def test_compile_failure_falls_back_to_eager_with_one_warning(monkeypatch, caplog):
    m = _smoke(extra=["sampler.compile=true"])
    assert m.sampler_settings()["compile"] is True
    calls = []

    def broken(fn, **kw):
        def run(*a, **k):
            calls.append(1)
            raise RuntimeError("no backend")
        return run

    monkeypatch.setattr(torch, "compile", broken)
    tok = torch.tensor([5, 3])
    with caplog.at_level(logging.WARNING):
        torch.manual_seed(0)
        a = m.generate_tokens(CAPS[:2], tok, 3)
    assert any("torch.compile failed" in r.message for r in caplog.records)
    assert len(calls) == 2  # one failed try per compiled forward (mask + residual), then eager
    m.c["sampler"]["compile"] = False
    torch.manual_seed(0)
    b = m.generate_tokens(CAPS[:2], tok, 3)
    assert torch.equal(a, b)


@pytest.mark.slow  # inductor compiles two graphs on the CPU (tens of seconds)
def test_compiled_guided_logits_equal_eager():
    m = _smoke(extra=["sampler.compile=true"])
    mt, rt = m.mtrans.eval(), m.rtrans.eval()
    b, n = 2, 6
    ids = torch.randint(0, mt.num_tokens + 1, (b, n), generator=torch.Generator().manual_seed(0))
    pad = M.lengths_to_pad(torch.tensor([6, 4]), n)
    cond = torch.randn(b, 1, mt.cond_emb.in_features, generator=torch.Generator().manual_seed(1))
    hist = torch.randn(b, n, rt.input_process.poseEmbedding.in_features, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        g = mt.guidance(cond, pad, None, 4.0)
        comp = m._guided(mt.guided_logits)
        got = comp(ids, g)
        assert comp.compiled is not None, "torch.compile fell back to eager: nothing was compared"
        torch.testing.assert_close(got, mt.guided_logits(ids, g), rtol=1e-5, atol=1e-5)
        gr = rt.guidance(cond[:, 0], pad, 5.0)
        compr = m._guided(rt.guided_logits)
        torch.testing.assert_close(compr(hist, 2, gr), rt.guided_logits(hist, 2, gr), rtol=1e-5, atol=1e-5)
        assert compr.compiled is not None
