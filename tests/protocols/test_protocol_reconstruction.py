"""reconstruction protocol end to end (text2motion features and skeleton clips) with test-only methods."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evaluators.datasets.motion.humanml3d import recover_from_ric
from evaluators.metrics.reconstruction import mpjpe
from evaluators.networks.t2m_train import train_evaluator
from evaluators.protocols import RunContext, get_protocol
from evaluators.records import make_record
from tests.networks._tiny import TINY_EVAL_CFG, TinyT2M


class NoisyReconstructor:
    """Test-only Reconstructor: returns the input plus fixed-seed Gaussian noise (optionally a mask)."""

    def __init__(self, noise: float, with_mask: bool = False):
        self.noise, self.with_mask = noise, with_mask
        self.gen = torch.Generator().manual_seed(0)

    def reconstruct(self, x):
        out = x + self.noise * torch.randn(x.shape, generator=self.gen)
        if self.with_mask:  # skeleton clips: pretend joints 0..4 were masked; only they get noise
            mask = torch.zeros(x.shape[0], x.shape[2], x.shape[3], dtype=torch.bool)
            mask[:, :, :5] = True
            out = torch.where(mask[:, None, :, :, None], out, x)
            return {"x_hat": out, "mask": mask}
        return out


def test_reconstruction_text2motion(tmp_path):
    torch.set_num_threads(1)
    data = TinyT2M(n=40, k=4, seed=2)
    ev = train_evaluator(data, steps=5, config_overrides={**TINY_EVAL_CFG, "max_motion_length": 64}, cache=False)
    ctx = RunContext(seed=0, extra={"t2m_evaluator": ev})
    spec = get_protocol("reconstruction")
    exact = spec.fn(NoisyReconstructor(0.0), data, {"max_samples": 12}, ctx)
    assert exact.metrics["mpjpe_mm"] == pytest.approx(0.0, abs=1e-6)
    assert exact.metrics["pa_mpjpe_mm"] == pytest.approx(0.0, abs=1e-3)
    assert exact.metrics["fid"] == pytest.approx(0.0, abs=1e-3)
    noisy = spec.fn(NoisyReconstructor(0.05), data, {"max_samples": 12}, ctx)
    assert noisy.metrics["mpjpe_mm"] > 1.0 and noisy.metrics["pa_mpjpe_mm"] <= noisy.metrics["mpjpe_mm"] * 1.5
    assert noisy.metrics["accel_mm"] > 0 and noisy.metrics["fid"] > exact.metrics["fid"]
    assert noisy.n_samples == {"expected": 40, "evaluated": 12}
    # independent check of the MPJPE of one sequence, computed by hand through recover_from_ric
    x = data.split("test").motions[0][:40]
    noisy_x = x + 0.05
    hand = np.linalg.norm((recover_from_ric(noisy_x, 22) - recover_from_ric(noisy_x, 22)[:, :1])
                          - (recover_from_ric(x, 22) - recover_from_ric(x, 22)[:, :1]), axis=-1).mean()
    assert mpjpe(recover_from_ric(noisy_x, 22), recover_from_ric(x, 22), align_root=True) == pytest.approx(hand)
    rec = make_record(method="noisy", dataset="tiny_t2m", protocol="reconstruction", metrics=noisy.metrics,
                      data="synthetic", scale="smoke", seed=0, config={}, n_samples=noisy.n_samples, extra=noisy.extra)
    assert rec["metrics"]["mpjpe_mm"]["unit"] == "mm"


class TinySkeleton:
    """Test-only skeleton_ssl stand-in: split(name) with data [N, 3, T, 25, 2] (second body absent)."""

    task = "skeleton_ssl"

    class _Split:
        def __init__(self, data):
            self.data = data

        def __len__(self):
            return len(self.data)

    def __init__(self, n=6, t=16):
        rng = np.random.default_rng(0)
        d = np.zeros((n, 3, t, 25, 2), np.float32)
        d[..., 0] = rng.normal(size=(n, 3, t, 25)).astype(np.float32)
        self._s = self._Split(d)

    def split(self, name):
        return self._s


def test_reconstruction_skeleton_masked():
    data = TinySkeleton()
    spec = get_protocol("reconstruction")
    res = spec.fn(NoisyReconstructor(0.01, with_mask=True), data, {"batch_size": 4}, RunContext(seed=0))
    m = res.metrics
    # only 5 of 25 joints are perturbed: the all-joint error is about 1/5 of the masked-joint error
    assert m["mpjpe_masked_mm"] == pytest.approx(5 * m["mpjpe_mm"], rel=1e-6)
    assert 5.0 < m["mpjpe_masked_mm"] < 30.0  # E|N(0, 0.01 I3)| ~ 16 mm
    assert res.n_samples == {"expected": 6, "evaluated": 6} and res.extra["input"] == "raw split"
