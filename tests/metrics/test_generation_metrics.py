"""Generation metrics against independent computations (hand loops, closed forms, eigenvalues)."""

from __future__ import annotations

import numpy as np
import pytest

from evaluators.metrics import action
from evaluators.metrics import generation as G


def _fid_eig(x, y):
    """Independent FID: Tr(sqrt(S1 S2)) via the eigenvalues of sqrt(S1) S2 sqrt(S1) (symmetric)."""
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    w, v = np.linalg.eigh(s1)
    r1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    ev = np.linalg.eigvalsh(r1 @ s2 @ r1)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(ev, 0, None)).sum())


def test_fid_identical_sets_is_zero():
    x = np.random.default_rng(0).normal(size=(200, 8))
    assert abs(G.fid(x, x)) < 1e-6


def test_fid_matches_eigenvalue_formulation():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 6)) @ rng.normal(size=(6, 6))
    y = rng.normal(loc=0.5, size=(250, 6)) @ rng.normal(size=(6, 6))
    assert G.fid(x, y) == pytest.approx(_fid_eig(x, y), rel=1e-6)


def test_frechet_closed_form_diagonal_gaussians():
    rng = np.random.default_rng(2)
    mu1, mu2 = rng.normal(size=5), rng.normal(size=5)
    v1, v2 = rng.uniform(0.2, 2, 5), rng.uniform(0.2, 2, 5)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()
    assert G.frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-9)


def test_fid_singular_covariance_uses_eps_fallback():
    # rank-deficient covariances (fewer samples than dims) still give a finite value
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(4, 10)), rng.normal(size=(4, 10))
    v = G.fid(x, y)
    assert np.isfinite(v) and v > 0


def _rprec_loop(t, m, k, bs):
    hits, n = np.zeros(k), 0
    for b in range(len(t) // bs):
        tt, mm = t[b * bs:(b + 1) * bs], m[b * bs:(b + 1) * bs]
        for i in range(bs):
            d = [np.sqrt(((tt[i] - mm[j]) ** 2).sum()) for j in range(bs)]
            rank = sorted(range(bs), key=lambda j: d[j]).index(i)
            for kk in range(k):
                hits[kk] += rank <= kk
            n += 1
    return hits / n


def test_r_precision_matches_brute_force_and_drops_last_batch():
    rng = np.random.default_rng(4)
    m = rng.normal(size=(70, 4))
    t = m + rng.normal(scale=1.0, size=m.shape)
    got = G.r_precision(t, m, top_k=3, batch_size=32)
    np.testing.assert_allclose(got, _rprec_loop(t, m, 3, 32))
    # the 6 trailing pairs are dropped: changing them changes nothing
    t2 = t.copy()
    t2[64:] = 100.0
    np.testing.assert_allclose(G.r_precision(t2, m), got)
    assert np.all(np.diff(got) >= 0)


def test_perfect_retrieval_gives_r1_one_and_mm_dist_zero():
    m = np.random.default_rng(5).normal(size=(64, 16)) * 10
    np.testing.assert_allclose(G.r_precision(m, m), [1.0, 1.0, 1.0])
    assert G.matching_score(m, m) == pytest.approx(0.0, abs=1e-6)


def test_matching_score_hand_loop():
    rng = np.random.default_rng(6)
    t, m = rng.normal(size=(40, 5)), rng.normal(size=(40, 5))
    expected = np.mean([np.linalg.norm(t[i] - m[i]) for i in range(32)])
    assert G.matching_score(t, m) == pytest.approx(expected, rel=1e-9)
    with pytest.raises(ValueError):
        G.matching_score(t[:10], m[:10])


def test_diversity_and_multimodality_vs_hand_loop():
    rng = np.random.default_rng(7)
    f = rng.normal(size=(400, 8))
    r = np.random.default_rng(11)
    a, b = r.choice(400, 300, replace=False), r.choice(400, 300, replace=False)
    expected = np.mean([np.sqrt(((f[i] - f[j]) ** 2).sum()) for i, j in zip(a, b)])
    assert G.diversity(f, 300, seed=11) == pytest.approx(expected, rel=1e-12)
    mm = rng.normal(size=(5, 30, 8))
    r = np.random.default_rng(3)
    a, b = r.choice(30, 10, replace=False), r.choice(30, 10, replace=False)
    expected = np.mean([[np.linalg.norm(mm[c, i] - mm[c, j]) for i, j in zip(a, b)] for c in range(5)])
    assert G.multimodality(mm, 10, seed=3) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError):
        G.diversity(f[:300], 300)
    # identical generations per condition -> zero multimodality
    assert G.multimodality(np.repeat(mm[:, :1], 30, axis=1), 10) == pytest.approx(0.0)


def test_confidence_interval_formula():
    v = np.array([1.0, 2.0, 4.0, 7.0])
    mean, ci = G.confidence_interval(v)
    pop_std = np.sqrt(((v - v.mean()) ** 2).sum() / len(v))
    assert mean == pytest.approx(3.5) and ci == pytest.approx(1.96 * pop_std / 2.0)


def test_action_metrics_hand_cases():
    assert action.accuracy(np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]]), [1, 0, 0]) == pytest.approx(2 / 3)
    rng = np.random.default_rng(8)
    f = rng.normal(size=(50, 4))
    r = np.random.default_rng(2)
    a, b = r.integers(0, 50, 200), r.integers(0, 50, 200)
    assert action.diversity_a2m(f, 200, seed=2) == pytest.approx(np.mean([np.linalg.norm(f[i] - f[j]) for i, j in zip(a, b)]))
    # two tight clusters far apart: multimodality (same-label pairs) stays small, diversity large
    labels = np.repeat([0, 1], 25)
    f2 = np.concatenate([rng.normal(size=(25, 4)) * 0.01, 100 + rng.normal(size=(25, 4)) * 0.01])
    assert action.multimodality_a2m(f2, labels, 2) < 0.1 < action.diversity_a2m(f2)
    x = rng.normal(size=(100, 3))
    assert G.fid_train(x, x) == pytest.approx(0.0, abs=1e-6) and G.fid_test(x, x + 1) == pytest.approx(3.0, rel=1e-6)
