"""Token samplers tested by their distribution.

Reference: ``softmax(top_k(l) / T)`` computed here in numpy, independently of the code under test
(top-k by ``np.argsort``). Each test draws one large batch of identical rows in a single call and
compares the counts with a chi-square test (scipy). The old Gumbel line (``log(-log(u).clamp)``)
sent every row to code 0 and fails all Gumbel cases here with p ~ 0.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from methods.common.sampling import NonFiniteError, check_finite, finite_checks, gumbel_argmax, gumbel_noise
from methods.momask import masking as M

K = 12
N_DRAWS = 40_000
P_MIN = 1e-3  # fixed seeds: each case is deterministic; a correct sampler passes far above this


def _logits() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.normal(0.0, 1.5, K)


def _reference(logits: np.ndarray, thres: float, temperature: float) -> np.ndarray:
    """softmax(top_k(logits)/T) with the official k = ceil((1 - thres) K) (tools.py:106-111)."""
    k = max(1, math.ceil((1 - thres) * logits.size))
    keep = np.argsort(-logits)[:k]
    z = np.full_like(logits, -np.inf)
    z[keep] = logits[keep] / temperature
    p = np.exp(z - z[keep].max())
    return p / p.sum()


def _chi_p(counts: np.ndarray, probs: np.ndarray) -> float:
    """Chi-square p-value of ``counts`` against ``probs`` (renormalised in float64)."""
    probs = np.asarray(probs, dtype=np.float64)
    return float(stats.chisquare(counts, probs / probs.sum() * counts.sum()).pvalue)


def _counts(ids: torch.Tensor) -> np.ndarray:
    return np.bincount(ids.reshape(-1).numpy(), minlength=K)


@pytest.mark.parametrize("gumbel", [False, True], ids=["categorical", "gumbel"])
@pytest.mark.parametrize("thres", [0.0, 0.5, 0.9], ids=["no-topk", "topk-half", "topk-official"])
@pytest.mark.parametrize("temperature", [1.0, 0.6, 1.7])
def test_sample_ids_follows_softmax_of_filtered_over_T(gumbel, thres, temperature):
    lg = _logits()
    ref = _reference(lg, thres, temperature)
    x = torch.tensor(lg, dtype=torch.float32).expand(N_DRAWS // 4, 4, K).contiguous()  # [B, N, K]
    gen = torch.Generator().manual_seed(1234)
    ids = M.sample_ids(x, temperature, thres, gumbel=gumbel, generator=gen)
    assert ids.shape == (N_DRAWS // 4, 4)
    counts = _counts(ids)
    kept = ref > 0
    assert counts[~kept].sum() == 0, "top-k left mass outside the kept set"
    if kept.sum() == 1:
        assert counts[kept].sum() == N_DRAWS
        return
    assert _chi_p(counts[kept], ref[kept]) > P_MIN, (counts, ref * N_DRAWS)


def test_topk_official_on_512_codes_keeps_exactly_52():
    """k = ceil(0.1 * 512) = 52 codes get all the mass, for both samplers."""
    rng = np.random.default_rng(0)
    lg = rng.normal(0, 1, 512)
    keep = set(np.argsort(-lg)[:52].tolist())
    x = torch.tensor(lg, dtype=torch.float32).expand(4000, 1, 512).contiguous()
    for gumbel in (False, True):
        ids = M.sample_ids(x, 1.0, 0.9, gumbel=gumbel, generator=torch.Generator().manual_seed(3))
        seen = set(ids.unique().tolist())
        assert seen <= keep
        assert len(seen) > 40  # not collapsed onto one code (the old Gumbel bug gave {0})


def test_gumbel_noise_is_standard_gumbel():
    g = gumbel_noise((50_000,), generator=torch.Generator().manual_seed(0)).double().numpy()
    assert np.isfinite(g).all()
    assert stats.kstest(g, stats.gumbel_r.cdf).pvalue > P_MIN
    assert abs(g.mean() - np.euler_gamma) < 0.02 and abs(g.var() - np.pi ** 2 / 6) < 0.05


def test_gumbel_argmax_matches_softmax_and_ignores_neg_inf():
    lg = _logits()
    lg[[1, 5]] = -np.inf
    ref = np.exp(lg / 0.8 - np.max(lg / 0.8))
    ref /= ref.sum()
    x = torch.tensor(lg, dtype=torch.float32).expand(N_DRAWS, K).contiguous()
    ids = gumbel_argmax(x, 0.8, torch.Generator().manual_seed(5))
    counts = _counts(ids)
    assert counts[[1, 5]].sum() == 0
    kept = ref > 0
    assert _chi_p(counts[kept], ref[kept]) > P_MIN


def test_quantizer_training_pick_is_gumbel_on_neg_distance():
    """Training-time code choice: P(code) = softmax(-dist / 0.5) (official sample_codebook_temp=0.5)."""
    from methods.momask.quantizer import EMAResetQuantizer

    q = EMAResetQuantizer(nb_code=6, code_dim=2)
    q.codebook.copy_(torch.tensor([[0.0, 0.0], [0.3, 0.0], [0.0, 0.5], [1.0, 1.0], [-0.4, 0.2], [2.0, 0.0]]))
    x = torch.tensor([[0.1, 0.1]])
    dist = ((x.double().numpy() - q.codebook.double().numpy()) ** 2).sum(-1)
    ref = np.exp(-dist / 0.5 - np.max(-dist / 0.5))
    ref /= ref.sum()
    q.train()
    torch.manual_seed(0)
    ids = q.nearest(x.expand(N_DRAWS, 2), temperature=0.5)
    counts = np.bincount(ids.numpy(), minlength=6)
    assert _chi_p(counts, ref) > P_MIN
    q.eval()
    assert int(q.nearest(x, temperature=0.5)[0]) == int(dist.argmin())


# -- the NaN/inf guard before argmax ------------------------------------------------------------------
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("gumbel", [False, True])
def test_sample_ids_rejects_non_finite_logits_by_name(bad, gumbel):
    x = torch.zeros(2, 3, K)
    x[1, 2, 4] = bad
    with finite_checks(True), pytest.raises(NonFiniteError, match="residual_logits"):
        M.sample_ids(x, 1.0, 0.9, gumbel=gumbel, name="residual_logits")


def test_guard_allows_filtered_neg_inf_but_not_all_neg_inf_rows():
    row = torch.tensor([[0.0, -float("inf"), 1.0]])
    with finite_checks(True):
        assert check_finite("x", row, allow_neg_inf=True) is row
        with pytest.raises(NonFiniteError, match="x"):
            check_finite("x", row)
        with pytest.raises(NonFiniteError, match="filtered"):
            check_finite("filtered", torch.full((2, 3), -float("inf")), allow_neg_inf=True)
        with pytest.raises(NonFiniteError, match="g"):
            gumbel_argmax(torch.tensor([[0.0, float("nan")]]), 1.0, name="g")


def test_guard_can_be_switched_off():
    x = torch.full((1, 1, K), float("nan"))
    with finite_checks(False):
        M.sample_ids(x, 1.0, 0.9, gumbel=True)  # no raise: the benchmark switch
