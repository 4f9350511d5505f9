"""MLD at smoke scale on ``synth_t2m``: training helps and the text condition is used (slow).

Measured with the suite's own evaluator (``evaluators/networks``, trained on the synthetic train
split, cached) and metrics (``evaluators/metrics/generation.py``). Every test caption of every
test motion is one (caption, motion) pair, so R-precision uses several batches of 32.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.slow

EVAL_CFG = dict(dim_text_hidden=64, dim_motion_hidden=64, dim_coemb_hidden=32, dim_movement_enc_hidden=64,
                dim_movement_latent=64)


@pytest.fixture(scope="module")
def setup():
    from evaluators.datasets import load_dataset
    from evaluators.metrics.generation import fid, r_precision
    from evaluators.networks.t2m_train import train_evaluator
    from methods import get_method
    from methods.common.config import load_config

    torch.set_num_threads(1)
    data = load_dataset({"name": "synth_t2m"})
    ev = train_evaluator(data, steps=300, batch_size=32, lr=1e-3, config_overrides=EVAL_CFG, seed=0)
    caps, motions = [], []
    for s in data.split("test"):
        for c in s.texts[:3]:
            caps.append(c.caption)
            motions.append(s.motion[: min(len(s.motion), 196) // 4 * 4])
    lens = [len(m) for m in motions]
    gt = torch.zeros(len(motions), max(lens), motions[0].shape[1])
    for i, m in enumerate(motions):
        gt[i, : lens[i]] = torch.from_numpy(m)
    t_emb, g_emb = ev.embed_text(caps).numpy(), ev.embed_motion(gt, lens).numpy()

    def score(method, captions, seed=0):
        torch.manual_seed(seed)
        e = ev.embed_motion(method.generate(captions, lens), lens).numpy()
        return fid(g_emb, e), r_precision(t_emb, e, top_k=3, batch_size=32)

    cfg = load_config("method", "mld", "smoke")
    cfg["render"] = {"n": 0}
    untrained = get_method("mld")(cfg, seed=0)
    untrained.set_normalization(data.mean, data.std)
    trained = get_method("mld")(cfg, seed=0)
    trained.fit(data)
    perm = np.random.default_rng(0).permutation(len(caps))
    return {"gt_r": r_precision(t_emb, g_emb), "untrained": score(untrained, caps), "trained": score(trained, caps),
            "shuffled": score(trained, [caps[i] for i in perm]), "n": len(caps)}


def test_evaluator_is_informative(setup):
    assert setup["gt_r"][2] > 0.5  # real pairs: chance R@3 in a batch of 32 is 3/32


def test_trained_beats_untrained(setup):
    (fid_u, r_u), (fid_t, r_t) = setup["untrained"], setup["trained"]
    print("untrained", fid_u, r_u, "trained", fid_t, r_t)
    assert fid_t < 0.75 * fid_u
    assert r_t[2] > r_u[2] + 0.05 and r_t[0] > r_u[0]


def test_text_condition_matters(setup):
    (_, r_true), (_, r_shuf) = setup["trained"], setup["shuffled"]
    print("R@3 true captions", r_true[2], "shuffled", r_shuf[2], "pairs", setup["n"])
    assert r_true[2] > r_shuf[2] + 0.03
