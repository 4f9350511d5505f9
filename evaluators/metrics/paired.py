"""Head-to-head comparison of two methods on one metric, as pure functions.

Three situations, from strongest to weakest evidence:

- :func:`paired_difference`: both methods were run by this suite with the same repetition
  seeds and manifests, so repetition ``r`` of A and of B share their randomness (the GT
  subset, the caption order, the diversity pairs). The per-repetition differences
  ``d_r = a_r - b_r`` are what is tested: mean ``d``, two-sided ``confidence`` interval by the
  paired t distribution, ``mean ± t_{(1+c)/2, R-1} * s_d / sqrt(R)`` with ``s_d`` the sample
  standard deviation (ddof = 1); the same interval as ``scipy.stats.ttest_rel(a, b)
  .confidence_interval()``.
- :func:`paired_bootstrap`: few repetitions (R < ~5 makes the t interval very wide) but
  per-item values (one per caption / test sequence, aligned across the two methods): resample
  the items with replacement (Efron & Tibshirani 1993, percentile interval) and recompute the
  difference of a statistic; the statistic may be any set-level metric (e.g. FID of the
  resampled embeddings), default the mean.
- :func:`unpaired_vs_published`: our repetitions of A against a paper's published
  ``mean ± half_width`` for B (labelled ``unpaired``: nothing is shared). The text-to-motion
  evaluation publishes ``half_width = 1.96 * std / sqrt(R)`` with numpy's population std over
  ``R`` repetitions (Guo et al. 2022 ``final_evaluations.py``; :func:`evaluators.metrics.
  generation.confidence_interval`), so the paper's standard error of the mean is recovered as
  ``half_width / z * sqrt(R / (R - 1))`` (``z`` = 1.96 for their 95 %, the sqrt turns the
  population std into the sample std). The interval for ``mean_A - mean_B`` is Welch's:
  ``se = sqrt(se_A^2 + se_B^2)`` with Welch-Satterthwaite degrees of freedom.
- :func:`unpaired_from_intervals`: the same Welch interval when neither side's repetitions are at
  hand, only ``mean ± half_width`` over ``R`` repetitions for both (e.g. a record written before
  the per-repetition values were kept); both standard errors are recovered as above. With our
  per-repetition values it equals :func:`unpaired_vs_published` (this suite prints the same
  ``1.96 * std_pop / sqrt(R)``).

The t quantile is ``scipy.special.stdtrit(df, q)``, the function ``scipy.stats.t.ppf(q, df)``
evaluates (bit-identical values), without importing ``scipy.stats``: this module is imported
by the leaderboards, hence by every run's start-up, and ``scipy.stats`` alone costs about 0.7 s
of CPU there.

Every function returns a plain dict (JSON-ready for the records): ``diff`` (A - B), ``low``,
``high``, ``excludes_zero``, ``confidence``, ``n``, ``kind`` and, when ``higher_is_better``
is given, ``verdict`` in {"A better", "A worse", "not significant"}.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.special import stdtrit

__all__ = ["paired_difference", "paired_bootstrap", "unpaired_vs_published", "unpaired_from_intervals",
           "published_standard_error"]


def _as_1d(x, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per repetition), got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf")
    return a


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")


def _result(diff: float, low: float, high: float, *, confidence: float, n: int, kind: str,
            higher_is_better: bool | None, **extra) -> dict:
    excludes = bool(low > 0.0 or high < 0.0)
    out = {"diff": float(diff), "low": float(low), "high": float(high), "excludes_zero": excludes,
           "confidence": float(confidence), "n": int(n), "kind": kind, **extra}
    if higher_is_better is not None:
        if not excludes:
            out["verdict"] = "not significant"
        else:
            out["verdict"] = "A better" if (diff > 0) == bool(higher_is_better) else "A worse"
    return out


def paired_difference(a, b, *, confidence: float = 0.95, higher_is_better: bool | None = None) -> dict:
    """Paired t interval of ``mean(a - b)``; ``a``, ``b``: per-repetition values, same seeds, same order."""
    _check_confidence(confidence)
    a, b = _as_1d(a, "a"), _as_1d(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must pair repetition by repetition, got {a.size} and {b.size} values")
    if a.size < 2:
        raise ValueError(f"a paired t interval needs at least 2 repetitions, got {a.size}")
    d = a - b
    n = d.size
    se = d.std(ddof=1) / np.sqrt(n)
    half = stdtrit(n - 1, 0.5 + confidence / 2.0) * se
    return _result(d.mean(), d.mean() - half, d.mean() + half, confidence=confidence, n=n,
                   kind="paired_t", higher_is_better=higher_is_better, se=float(se), df=n - 1)


def paired_bootstrap(a, b, *, statistic: Callable[[np.ndarray], float] | None = None, n_boot: int = 2000,
                     confidence: float = 0.95, seed=0, higher_is_better: bool | None = None) -> dict:
    """Bootstrap over items of ``statistic(a) - statistic(b)``.

    a, b: per-item arrays aligned on their first axis (item i of A and of B answer the same
    caption / sequence), e.g. [N] per-caption values or [N, D] embeddings. Each bootstrap
    draw resamples N item indices with replacement and applies them to both methods (which
    keeps the pairing). ``statistic`` maps an [N, ...] array to a float (default: the mean);
    the interval is the percentile interval of the ``n_boot`` differences; ``diff`` is the
    difference on the original items.
    """
    _check_confidence(confidence)
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim == 0 or b.ndim == 0 or a.shape[0] != b.shape[0]:
        raise ValueError(f"a and b must hold the same items on axis 0, got shapes {a.shape} and {b.shape}")
    if a.shape[0] < 2:
        raise ValueError(f"the bootstrap needs at least 2 items, got {a.shape[0]}")
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("a or b contains NaN or inf")
    stat = statistic if statistic is not None else (lambda x: float(np.mean(x)))
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    n = a.shape[0]
    diffs = np.empty(n_boot)
    for k in range(n_boot):
        idx = rng.integers(0, n, size=n)
        diffs[k] = stat(a[idx]) - stat(b[idx])
    alpha = 1.0 - confidence
    low, high = np.quantile(diffs, [alpha / 2.0, 1.0 - alpha / 2.0])
    return _result(stat(a) - stat(b), low, high, confidence=confidence, n=n, kind="paired_bootstrap_items",
                   higher_is_better=higher_is_better, n_boot=int(n_boot))


def published_standard_error(half_width: float, n_reps: int, *, z: float = 1.96) -> float:
    """Standard error of a published mean from its ``± half_width = z * std_pop / sqrt(R)``."""
    if n_reps < 2:
        raise ValueError(f"n_reps (repetitions behind the published interval) must be >= 2, got {n_reps}")
    if half_width < 0:
        raise ValueError(f"half_width must be >= 0, got {half_width}")
    return float(half_width / z * np.sqrt(n_reps / (n_reps - 1.0)))


def unpaired_vs_published(a, published_mean: float, published_half_width: float, *, published_reps: int = 20,
                          published_z: float = 1.96, confidence: float = 0.95,
                          higher_is_better: bool | None = None) -> dict:
    """Welch interval of ``mean(a) - published_mean`` (unpaired; see the module doc).

    ``published_reps``: the repetitions behind the paper's interval (20 in the text-to-motion
    evaluation, ``replication_times = 20``); ``published_z``: the multiplier the paper used.
    """
    _check_confidence(confidence)
    a = _as_1d(a, "a")
    if a.size < 2:
        raise ValueError(f"an unpaired comparison needs at least 2 of our repetitions, got {a.size}")
    se_b = published_standard_error(published_half_width, published_reps, z=published_z)
    return _welch(a.mean(), a.var(ddof=1) / a.size, a.size, float(published_mean), se_b, published_reps,
                  confidence=confidence, higher_is_better=higher_is_better)


def unpaired_from_intervals(mean_a: float, half_width_a: float, reps_a: int, mean_b: float, half_width_b: float,
                            reps_b: int, *, z: float = 1.96, confidence: float = 0.95,
                            higher_is_better: bool | None = None) -> dict:
    """Welch interval of ``mean_a - mean_b`` from two ``mean ± z * std_pop / sqrt(R)`` summaries."""
    _check_confidence(confidence)
    for name, v in (("mean_a", mean_a), ("mean_b", mean_b)):
        if not np.isfinite(v):
            raise ValueError(f"{name} must be finite, got {v}")
    se_a = published_standard_error(half_width_a, reps_a, z=z)
    se_b = published_standard_error(half_width_b, reps_b, z=z)
    return _welch(float(mean_a), se_a ** 2, reps_a, float(mean_b), se_b, reps_b,
                  confidence=confidence, higher_is_better=higher_is_better)


def _welch(mean_a: float, se_a2: float, n_a: int, mean_b: float, se_b: float, n_b: int, *, confidence: float,
           higher_is_better: bool | None) -> dict:
    """Welch's t interval from A's squared standard error and B's standard error (B: published)."""
    se_b2 = se_b ** 2
    se = np.sqrt(se_a2 + se_b2)
    num, den = (se_a2 + se_b2) ** 2, se_a2 ** 2 / (n_a - 1) + se_b2 ** 2 / (n_b - 1)
    df = num / den if den > 0 else float(n_a + n_b - 2)
    diff = mean_a - mean_b
    half = stdtrit(df, 0.5 + confidence / 2.0) * se if se > 0 else 0.0
    return _result(diff, diff - half, diff + half, confidence=confidence, n=n_a, kind="unpaired_welch_published",
                   higher_is_better=higher_is_better, se=float(se), df=float(df),
                   published_se=float(se_b), published_reps=int(n_b))
