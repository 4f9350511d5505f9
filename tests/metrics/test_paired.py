"""Head-to-head comparisons against scipy's tests and hand formulas."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from evaluators.metrics import generation as G
from evaluators.metrics import paired as C


def test_paired_t_interval_matches_scipy_and_hand_formula():
    rng = np.random.default_rng(0)
    a = rng.normal(1.0, 0.3, size=12)
    b = a + rng.normal(0.2, 0.1, size=12)
    out = C.paired_difference(a, b)
    ci = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert out["low"] == pytest.approx(ci.low, rel=1e-12)
    assert out["high"] == pytest.approx(ci.high, rel=1e-12)
    d = a - b
    half = stats.t.ppf(0.975, 11) * np.sqrt(((d - d.mean()) ** 2).sum() / 11) / np.sqrt(12)
    assert out["diff"] == pytest.approx(d.mean())
    assert out["high"] - out["low"] == pytest.approx(2 * half)
    # a 90 % interval is narrower and matches scipy too
    out90 = C.paired_difference(a, b, confidence=0.9)
    assert out90["low"] == pytest.approx(stats.ttest_rel(a, b).confidence_interval(0.9).low, rel=1e-12)


def test_identical_inputs_give_an_interval_containing_zero():
    a = np.random.default_rng(1).normal(size=10)
    for out in (C.paired_difference(a, a, higher_is_better=True), C.paired_bootstrap(a, a, n_boot=200)):
        assert out["low"] <= 0.0 <= out["high"]
        assert not out["excludes_zero"]
    assert C.paired_difference(a, a, higher_is_better=True)["verdict"] == "not significant"


def test_noisier_generations_come_out_significantly_worse_fid():
    """Per repetition (same seed for both methods): B = A's generations plus noise -> larger FID."""
    real = np.random.default_rng(123).normal(size=(400, 4))
    fid_a, fid_b = [], []
    for rep in range(8):
        gen = np.random.default_rng(rep).normal(size=(300, 4))
        noisy = gen + np.random.default_rng(1000 + rep).normal(scale=0.5, size=gen.shape)
        fid_a.append(G.fid(real, gen))
        fid_b.append(G.fid(real, noisy))
    out = C.paired_difference(fid_b, fid_a, higher_is_better=False)
    assert out["excludes_zero"] and out["low"] > 0
    assert out["verdict"] == "A worse"
    assert C.paired_difference(fid_a, fid_b, higher_is_better=False)["verdict"] == "A better"


def test_bootstrap_over_items_detects_a_worse_method_and_matches_normal_theory():
    rng = np.random.default_rng(2)
    n = 400
    a = rng.normal(0.0, 1.0, size=n)                  # per-caption values of A
    b = a + rng.normal(0.3, 1.0, size=n)              # B: the same captions, worse by 0.3 on average
    out = C.paired_bootstrap(b, a, n_boot=4000, seed=0, higher_is_better=False)
    assert out["excludes_zero"] and out["verdict"] == "A worse"
    d = b - a
    se = d.std(ddof=1) / np.sqrt(n)                   # normal-theory interval for a mean of 400 items
    assert out["diff"] == pytest.approx(d.mean())
    assert out["low"] == pytest.approx(d.mean() - 1.96 * se, abs=0.15 * se * 1.96)
    assert out["high"] == pytest.approx(d.mean() + 1.96 * se, abs=0.15 * se * 1.96)


def test_bootstrap_set_level_statistic_keeps_items_paired():
    """A statistic over the whole resampled set (here a FID against fixed real features)."""
    rng = np.random.default_rng(3)
    real = rng.normal(size=(300, 3))
    gen_a = rng.normal(size=(200, 3))
    gen_b = gen_a + rng.normal(scale=1.0, size=gen_a.shape)

    def fid_to_real(x):
        return G.fid(real, x)

    out = C.paired_bootstrap(gen_b, gen_a, statistic=fid_to_real, n_boot=150, seed=0)
    assert out["diff"] == pytest.approx(G.fid(real, gen_b) - G.fid(real, gen_a))
    assert out["low"] > 0 and out["excludes_zero"]
    again = C.paired_bootstrap(gen_b, gen_a, statistic=fid_to_real, n_boot=150, seed=0)
    assert again == out                              # seeded: reproducible


def test_unpaired_vs_published_equals_welch_on_the_underlying_sample():
    """Publish B as the T2M evaluation does (mean, 1.96 * population std / sqrt(R)); our
    interval from that must equal Welch's t interval computed on B's raw repetitions."""
    rng = np.random.default_rng(4)
    a = rng.normal(0.50, 0.02, size=10)
    b = rng.normal(0.47, 0.03, size=20)
    mean_b, half_b = G.confidence_interval(b)
    assert half_b == pytest.approx(1.96 * b.std() / np.sqrt(20))
    out = C.unpaired_vs_published(a, mean_b, half_b, published_reps=20, higher_is_better=True)
    ref = stats.ttest_ind(a, b, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert out["kind"].startswith("unpaired")
    assert out["low"] == pytest.approx(ci.low, rel=1e-9)
    assert out["high"] == pytest.approx(ci.high, rel=1e-9)
    assert out["df"] == pytest.approx(ref.df, rel=1e-9)
    assert out["excludes_zero"] == (ref.pvalue < 0.05)


def test_unpaired_same_distribution_contains_zero():
    a = np.array([0.100, 0.102, 0.098, 0.101, 0.099])
    out = C.unpaired_vs_published(a, 0.100, 0.002, published_reps=20, higher_is_better=False)
    assert out["low"] < 0 < out["high"] and out["verdict"] == "not significant"


def test_published_standard_error_from_the_interval():
    # half = 1.96 * s_pop / sqrt(R); se = s_sample / sqrt(R) = s_pop * sqrt(R / (R - 1)) / sqrt(R)
    s_pop, r = 0.3, 20
    half = 1.96 * s_pop / np.sqrt(r)
    assert C.published_standard_error(half, r) == pytest.approx(s_pop / np.sqrt(r - 1))


@pytest.mark.parametrize("call, match", [
    (lambda: C.paired_difference([1.0, 2.0], [1.0]), "pair repetition by repetition"),
    (lambda: C.paired_difference([1.0], [1.0]), "at least 2 repetitions"),
    (lambda: C.paired_difference([[1.0, 2.0]], [[1.0, 2.0]]), "must be 1-D"),
    (lambda: C.paired_difference([1.0, np.nan], [1.0, 2.0]), "NaN"),
    (lambda: C.paired_difference([1.0, 2.0], [1.0, 2.0], confidence=95), r"confidence must lie in \(0, 1\)"),
    (lambda: C.paired_bootstrap(np.zeros(5), np.zeros(4)), "same items on axis 0"),
    (lambda: C.paired_bootstrap(np.zeros(5), 0.0), "same items on axis 0"),
    (lambda: C.unpaired_vs_published([1.0, 2.0], 1.0, 0.1, published_reps=1), "n_reps"),
])
def test_bad_input_is_rejected(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_unpaired_from_intervals_equals_welch_on_both_underlying_samples():
    """Both sides published as mean ± 1.96 * population std / sqrt(R): the interval must be Welch's
    t interval of the raw repetitions (scipy), the statistic scipy's ``ttest_ind_from_stats``, and
    with our raw repetitions at hand it equals :func:`unpaired_vs_published`."""
    rng = np.random.default_rng(7)
    a = rng.normal(0.480, 0.010, size=8)
    b = rng.normal(0.473, 0.025, size=20)
    (ma, ha), (mb, hb) = G.confidence_interval(a), G.confidence_interval(b)
    out = C.unpaired_from_intervals(ma, ha, a.size, mb, hb, b.size, higher_is_better=False)
    ref = stats.ttest_ind(a, b, equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert (out["low"], out["high"]) == (pytest.approx(ci.low, rel=1e-9), pytest.approx(ci.high, rel=1e-9))
    assert out["df"] == pytest.approx(ref.df, rel=1e-9)
    from_stats = stats.ttest_ind_from_stats(a.mean(), a.std(ddof=1), a.size, b.mean(), b.std(ddof=1), b.size,
                                            equal_var=False)
    assert out["diff"] / out["se"] == pytest.approx(from_stats.statistic, rel=1e-9)
    assert out["excludes_zero"] == (from_stats.pvalue < 0.05)
    with_reps = C.unpaired_vs_published(a, mb, hb, published_reps=b.size, higher_is_better=False)
    for key in ("diff", "low", "high", "se", "df"):
        assert out[key] == pytest.approx(with_reps[key], rel=1e-9), key


def test_unpaired_from_intervals_far_apart_is_significant():
    # 0.60 ± 0.01 vs 0.50 ± 0.01 over 20 repetitions each: |t| ~ 14, far beyond any critical value
    out = C.unpaired_from_intervals(0.60, 0.01, 20, 0.50, 0.01, 20, higher_is_better=True)
    assert out["excludes_zero"] and out["verdict"] == "A better" and out["kind"].startswith("unpaired")


@pytest.mark.parametrize("n", [2, 3, 5, 10, 20, 100])
@pytest.mark.parametrize("confidence", [0.8, 0.9, 0.95, 0.99])
def test_t_quantile_is_scipy_stats_bit_for_bit(n, confidence):
    """The interval takes its t quantile without importing scipy.stats (a start-up cost): the
    same bits as ``scipy.stats.t.ppf``, for the paired interval and Welch's non-integer df."""
    rng = np.random.default_rng(n)
    a, b = rng.normal(1.0, 0.3, size=n), rng.normal(1.1, 0.2, size=n)
    d = a - b
    half = stats.t.ppf(0.5 + confidence / 2.0, n - 1) * (d.std(ddof=1) / np.sqrt(n))
    out = C.paired_difference(a, b, confidence=confidence)
    assert (out["low"], out["high"]) == (float(d.mean() - half), float(d.mean() + half))
    welch = C.unpaired_from_intervals(0.5, 0.02, n, 0.47, 0.05, n + 7, confidence=confidence)
    half = stats.t.ppf(0.5 + confidence / 2.0, welch["df"]) * welch["se"]
    assert (welch["low"], welch["high"]) == (float(welch["diff"] - half), float(welch["diff"] + half))
