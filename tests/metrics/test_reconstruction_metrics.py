"""Reconstruction metrics vs hand cases and scipy.spatial.procrustes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import procrustes
from scipy.spatial.transform import Rotation

from evaluators.metrics.reconstruction import accel_error, mpjpe, pa_mpjpe


def test_mpjpe_hand_case():
    gt = np.zeros((2, 3, 3))
    pred = gt.copy()
    pred[0, 0] = [3.0, 4.0, 0.0]  # error 5 on one of 6 joints
    assert mpjpe(pred, gt) == pytest.approx(5.0 / 6.0)


def test_pa_mpjpe_zero_for_similarity_copy():
    rng = np.random.default_rng(0)
    gt = rng.normal(size=(4, 22, 3))
    rots = Rotation.random(4, random_state=1).as_matrix()
    pred = 2.5 * np.einsum("nij,nkj->nki", rots, gt) + np.array([1.0, -2.0, 0.5])
    assert mpjpe(pred, gt) > 0.5
    assert pa_mpjpe(pred, gt) == pytest.approx(0.0, abs=1e-9)


def test_pa_mpjpe_vs_scipy_procrustes():
    rng = np.random.default_rng(2)
    gt = rng.normal(size=(3, 17, 3))
    pred = gt + 0.2 * rng.normal(size=gt.shape)
    ours = pa_mpjpe(pred, gt)
    ref = []
    for p, g in zip(pred, gt):
        # scipy standardises both sets (centre, unit Frobenius norm) and aligns the second to the
        # first; rescale back to the gt's norm to compare in gt units.
        g_std, p_aligned, _ = procrustes(g, p)
        scale = np.linalg.norm(g - g.mean(0))
        ref.append(np.linalg.norm((p_aligned - g_std) * scale, axis=1).mean())
    assert ours == pytest.approx(float(np.mean(ref)), rel=1e-6)


def test_accel_error_hand_case():
    t = np.arange(5, dtype=float)
    gt = np.zeros((1, 5, 1, 3))
    pred = np.zeros((1, 5, 1, 3))
    pred[0, :, 0, 0] = t ** 2  # constant acceleration 2 along x
    assert accel_error(pred, gt) == pytest.approx(2.0)
    pred[0, :, 0, 0] = 3 * t  # constant velocity -> no acceleration error
    assert accel_error(pred, gt) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        accel_error(pred[:, :2], gt[:, :2])
