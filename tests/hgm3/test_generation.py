"""End to end on synth_t2m at smoke scale: the trained generator beats an untrained one.

FID and R-Precision are measured with the evaluator the smoke text2motion protocol uses
(``evaluators/networks`` trained on the synthetic train split, cached) and the metric
functions of ``evaluators/metrics/generation.py``.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def synth():
    from evaluators.datasets.base import load_dataset
    from methods.common.config import load_config

    return load_dataset(load_config("dataset", "synth_t2m", "smoke"))


@pytest.fixture(scope="module")
def evaluator(synth):
    from evaluators.networks.t2m_train import train_evaluator
    from methods.common.config import load_config

    train = load_config("protocol", "text2motion", "smoke")["evaluator"]["train"]
    return train_evaluator(synth, **train).eval()


def _scores(method, ev, caps, lens, gt_emb, text_emb):
    from evaluators.metrics.generation import fid, r_precision

    torch.manual_seed(0)
    gen = method.generate(caps, lens)
    emb = ev.embed_motion(gen, lens).numpy()
    return fid(gt_emb, emb), r_precision(text_emb, emb, top_k=3, batch_size=32)


def test_trained_generator_beats_untrained_on_fid_and_r_precision(synth, evaluator, tmp_path, name="hgm3"):
    """HGM3 (its MoMask path is the same code with both switches off, see test_equivalence)."""
    from methods import get_method
    from methods.common.config import load_config

    cfg = load_config("method", name, "smoke", ["render.n=0"])
    # keep the end-to-end test short: the full smoke schedule is for the demo
    cfg["tokenizer"]["steps"], cfg["mask_transformer"]["steps"], cfg["residual_transformer"]["steps"] = 200, 150, 100
    cls = get_method(name)
    trained = cls(cfg, seed=0, workdir=tmp_path / "trained")
    trained.fit(synth)
    untrained = cls(cfg, seed=0)
    untrained.mean, untrained.std = trained.mean.clone(), trained.std.clone()

    test = synth.split("test")[:96]
    caps = [s.texts[0].caption for s in test]
    lens = [min(len(s.motion), 196) // 4 * 4 for s in test]
    gt = np.zeros((len(test), max(lens), test[0].motion.shape[1]), np.float32)
    for i, (s, n) in enumerate(zip(test, lens)):
        gt[i, :n] = s.motion[:n]
    gt_emb = evaluator.embed_motion(torch.from_numpy(gt), lens).numpy()
    text_emb = evaluator.embed_text(caps).numpy()

    fid_t, rp_t = _scores(trained, evaluator, caps, lens, gt_emb, text_emb)
    fid_u, rp_u = _scores(untrained, evaluator, caps, lens, gt_emb, text_emb)
    logging.getLogger(__name__).info("trained FID %.3f R@3 %.3f | untrained FID %.3f R@3 %.3f",
                                     fid_t, rp_t[2], fid_u, rp_u[2])
    assert fid_t < fid_u, (fid_t, fid_u)
    assert rp_t[2] > rp_u[2], (rp_t, rp_u)
