"""End to end on synth_t2m at smoke scale: the trained generator beats an untrained one.

FID and R-Precision are measured with the evaluator the smoke text2motion protocol uses
(``evaluators/networks`` trained on the synthetic train split, cached) and the metric
functions of ``evaluators/metrics/generation.py``.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def synth(smoke_t2m):
    return smoke_t2m[0]


@pytest.fixture(scope="module")
def evaluator(smoke_t2m):
    """The smoke text2motion protocol's evaluator, from the suite's model cache (the demo's, the
    sensitivity benchmark's and the published-records check's evaluator is this one)."""
    return smoke_t2m[1]


def _generate(method, caps, lens):
    torch.manual_seed(0)
    return method.generate(caps, lens)


def _scores(gen, ev, lens, gt_emb, text_emb):
    from evaluators.metrics.generation import fid, r_precision

    emb = ev.embed_motion(gen, lens).numpy()
    return fid(gt_emb, emb), r_precision(text_emb, emb, top_k=3, batch_size=32)


@pytest.fixture(scope="module")
def trained(synth, tmp_path_factory, name="hgm3"):
    """HGM3 briefly trained on synth_t2m (its MoMask path is the same code with both switches off,
    see test_equivalence); shared by the tests below."""
    from evaluators.core.config import load_config
    from methods import get_method

    cfg = load_config("method", name, "smoke", ["render.n=0"])
    # keep the end-to-end test short: the full smoke schedule is for the demo
    cfg["tokenizer"]["steps"], cfg["mask_transformer"]["steps"], cfg["residual_transformer"]["steps"] = 200, 150, 100
    cls = get_method(name)
    m = cls(cfg, seed=0, workdir=tmp_path_factory.mktemp("trained"))
    m.fit(synth)
    return cls, cfg, m


def _test_batch(synth, n=96):
    test = synth.split("test")[:n]
    caps = [s.texts[0].caption for s in test]
    lens = [min(len(s.motion), 196) // 4 * 4 for s in test]
    gt = np.zeros((len(test), max(lens), test[0].motion.shape[1]), np.float32)
    for i, (s, n_f) in enumerate(zip(test, lens)):
        gt[i, :n_f] = s.motion[:n_f]
    return caps, lens, gt


@pytest.fixture(scope="module")
def generated(synth, trained):
    """The trained generator's output on the test batch at seed 0 and the codes it sampled: both tests
    below read this one generation (each used to repeat it, same seed, same captions)."""
    _, _, m = trained
    caps, lens, gt = _test_batch(synth)
    gen = _generate(m, caps, lens)
    return caps, lens, gt, gen, m.last_generation_codes()


def test_trained_generator_beats_untrained_on_fid_and_r_precision(evaluator, trained, generated):
    cls, cfg, trained = trained
    untrained = cls(cfg, seed=0)
    untrained.mean, untrained.std = trained.mean.clone(), trained.std.clone()

    caps, lens, gt, gen, _ = generated
    gt_emb = evaluator.embed_motion(torch.from_numpy(gt), lens).numpy()
    text_emb = evaluator.embed_text(caps).numpy()

    fid_t, rp_t = _scores(gen, evaluator, lens, gt_emb, text_emb)
    fid_u, rp_u = _scores(_generate(untrained, caps, lens), evaluator, lens, gt_emb, text_emb)
    logging.getLogger(__name__).info("trained FID %.3f R@3 %.3f | untrained FID %.3f R@3 %.3f",
                                     fid_t, rp_t[2], fid_u, rp_u[2])
    assert fid_t < fid_u, (fid_t, fid_u)
    assert rp_t[2] > rp_u[2], (rp_t, rp_u)


def test_residual_layers_are_diverse_and_matter(trained, generated):
    """A broken Gumbel sampling line once made every residual code 0. Properties of a working
    residual path, none a frozen number: (1) each generated residual layer uses more than one
    code; (2) the decoded motion differs from decoding layer 0 alone; (3) on REAL test motions,
    adding the tokenizer's residual layers lowers the reconstruction error; (4) the residual
    transformer's cross-entropy on the real residual codes is below chance."""
    _, _, m = trained
    caps, lens, gt, _, ids = generated
    q = ids.shape[-1]
    assert q > 1
    valid = ids[..., 0] >= 0
    distinct = [len(ids[..., j][valid].unique()) for j in range(q)]
    assert min(distinct) > 1, distinct
    m.vq.eval()
    with torch.no_grad():
        full = m.vq.decode(ids.to(m.device))
        base = m.vq.decode(torch.where(torch.arange(q) > 0, -1, ids).to(m.device))
    assert (full - base).abs().max() > 1e-3

    # real tokens: tokenizer residuals, then the residual transformer's residuals on real layer 0
    x = m.normalize(torch.from_numpy(gt)).to(m.device)
    tok_lens = torch.tensor(lens, device=m.device) // m.vq.unit_length
    frame_ok = torch.arange(x.shape[1], device=m.device)[None] < torch.tensor(lens, device=m.device)[:, None]

    def err(ids_):
        with torch.no_grad():
            y = m.vq.decode(ids_)[:, : x.shape[1]]
        return float(((y - x) ** 2).mean(-1)[frame_ok].mean())

    with torch.no_grad():
        real = m.vq.encode(x)
    real = torch.where(torch.arange(real.shape[1], device=m.device)[None, :, None] < tok_lens[:, None, None], real, -1)
    layer0 = torch.where(torch.arange(q, device=m.device) > 0, -1, real)
    e0, e_full = err(layer0), err(real)
    logging.getLogger(__name__).info("recon MSE of real tokens: layer 0 only %.4f, all layers %.4f", e0, e_full)
    assert e_full < e0, (e_full, e0)
    # the residual transformer has learned the real residual codes: its cross-entropy on them (given
    # the real lower layers and the caption) is below chance, log K, at every residual layer
    rt = m.rtrans.eval()
    pad = torch.arange(real.shape[1], device=m.device)[None] >= tok_lens[:, None]
    ids = torch.where(pad[..., None], rt.pad_id, real)
    with torch.no_grad():
        cond = m.text.encode(caps).to(m.device)
        for j in range(1, q):
            jj = torch.full((ids.shape[0],), j, dtype=torch.long, device=m.device)
            logits = rt(rt.history(ids, jj), jj, cond, pad)
            ce = torch.nn.functional.cross_entropy(logits[~pad], ids[..., j][~pad])
            assert float(ce) < math.log(m.vq.nb_code), (j, float(ce))
