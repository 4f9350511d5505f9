"""MacDiff at smoke scale on the bundled synth_ntu set: pretraining learns its objective (masked
reconstruction) and leaves the encoder's features at least as useful to a linear probe as the
random initialisation it started from.

One pretraining (module fixture: 300 steps, batch 32, lr 2e-3, seed 0; bit-deterministic on the
CPU) feeds both checks.

Linear probe (evaluators/protocols/linear.py, pool=mean, frozen_once, 100 epochs, batch 32, probe
seed 0) on synth_ntu test (178 windows: one window = 0.56 point), pretrained minus the SAME probe
on the random encoder the pretraining started from, top-1 points, pretraining seeds 0-5:

    300 steps (the fixture's)  +3.4  +3.9  +6.2  -0.6  +1.7  +3.4
    150 steps                  +5.1  +3.4  +4.5  +3.9  -5.1  +5.1
    300 steps, lr 0.05 / 0.5 (diverged, loss ~1.0 instead of ~0.1), seed 0:  -18.5 / -44.4

At this scale a random ViT's pooled features already separate synth_ntu's classes (76-80 %), and
pretraining does NOT reliably add to them (seed 3 at 300 steps; other probe seeds at pretraining
seed 3 gave -0.6 to -2.2), so a gain is not asserted. What holds on every seed, and what a broken
pretraining (diverged, collapsed features) violates by far, is that the pretrained encoder is not
worse than its starting point: the test allows MARGIN points below it.

Masked-input reconstruction MPJPE (90% of tokens hidden, DDIM 10 steps) with the shared metric,
before / after 150 pretraining steps on seeds 0-5: 5.39/0.57, 5.95/0.59, 5.19/0.60, 5.25/0.53,
5.23/0.56, 4.89/0.62 (8-10x); the test asks for 2x after 300.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluators.metrics.reconstruction import mpjpe
from evaluators.protocols.linear import linear
from evaluators.protocols.registry import RunContext
from methods import get_method
from tests.macdiff.test_model import macdiff_cfg

pytestmark = pytest.mark.slow

SMOKE = dict(model=dict(dim_feat=64, depth=2, decoder_depth=2, num_heads=4, num_frames=32),
             pretrain=dict(total_steps=300, batch_size=32, warmup_epochs=1, min_lr_epochs=0, lr=2e-3),
             sampling=dict(ddim_steps=10))
PROBE = dict(epochs=100, min_lr_epochs=0, joint=dict(batch_size=32), mean=dict(batch_size=32),
             features="frozen_once", poolings=["mean"])  # as measured (the one-pass probe); the asserted pooling
MARGIN = 8.0  # ours: 7.4 points under the worst healthy seed (-0.6), 10.5 above the mildest divergence (-18.5)


@pytest.fixture(scope="module")
def synth():
    from evaluators.datasets import load_dataset

    return load_dataset({"name": "synth_ntu"})


def _mpjpe(method, x: torch.Tensor) -> float:
    out = method.reconstruct(x, seed=0)
    present = (x.abs().sum(dim=(1, 2, 3)) > 0).numpy()  # [B, M]: bodies present in the window
    return mpjpe(out.permute(0, 4, 2, 3, 1).numpy()[present], x.permute(0, 4, 2, 3, 1).numpy()[present])


@pytest.fixture(scope="module")
def trained(synth, tmp_path_factory):
    ck = tmp_path_factory.mktemp("macdiff_smoke")
    cfg = {**SMOKE, "pretrain": {**SMOKE["pretrain"], "ckpt_dir": str(ck)}}
    cfg = macdiff_cfg(cfg)
    random_init = get_method("macdiff")(cfg, seed=0)
    m = get_method("macdiff")(cfg, seed=0)
    te = synth.feeder("test", train=False, window=32)
    x = torch.stack([te[i][0] for i in range(48)])
    before = _mpjpe(m, x)
    state = m.pretrain(synth)
    return {"method": m, "random": random_init, "state": state, "x": x, "before": before, "ckpt": ck}


def test_pretraining_lowers_masked_reconstruction_error(trained):
    after = _mpjpe(trained["method"], trained["x"])
    hist = trained["state"].history
    assert np.mean(hist[-20:]) < np.mean(hist[:20])
    assert after < 0.5 * trained["before"], (trained["before"], after)
    # the written checkpoint reloads into a fresh method and gives the same features
    fresh = get_method("macdiff")(macdiff_cfg(SMOKE), seed=1)
    fresh.load_checkpoint(trained["ckpt"] / "last.pt")
    torch.testing.assert_close(fresh.encode(trained["x"][:4]), trained["method"].encode(trained["x"][:4]))


def test_linear_probe_not_worse_than_random_encoder(trained, synth):
    ctx = RunContext(seed=0)
    pre = {r.variant: r.metrics["top1"] for r in linear(trained["method"], synth, PROBE, ctx)}
    rnd = {r.variant: r.metrics["top1"] for r in linear(trained["random"], synth, PROBE, ctx)}
    print("pretrained", pre, "random", rnd)
    assert pre["pool=mean,features=frozen_once"] >= rnd["pool=mean,features=frozen_once"] - MARGIN, (pre, rnd)
