"""Generation metrics of the text-to-motion protocol (Guo et al. 2022), as pure numpy functions.

Every function follows the official evaluation code of ``EricGuo5513/text-to-motion``
(``utils/metrics.py``, ``final_evaluations.py``), which MLD (``mld/models/metrics/tm2t.py``)
and MoMask (``utils/metrics.py``, ``utils/eval_t2m.py``) copy:

- :func:`fid`: Fréchet distance between Gaussians fitted to two embedding sets, float64,
  ``scipy.linalg.sqrtm`` of the covariance product with the ``eps = 1e-6`` diagonal offset
  fallback when the product is singular (non-finite square root).
- :func:`r_precision` / :func:`matching_score`: computed inside consecutive batches of 32
  (the evaluation loader uses ``drop_last=True``, so a trailing partial batch is dropped),
  Euclidean distance matrix between text and motion embeddings; the counts are summed over
  batches and divided by the number of evaluated samples (= mean over batches).
- :func:`diversity`: ``n_pairs`` = 300 index pairs, each side drawn *without replacement*.
- :func:`multimodality`: per condition, ``n_pairs`` = 10 pairs among its ``K`` generations.
- :func:`confidence_interval`: ``mean, 1.96 * std / sqrt(R)`` with numpy's population std.

Randomness takes an explicit ``seed`` (int or ``np.random.Generator``) instead of the global
numpy state the official code uses, so a repetition is reproducible.

:func:`fid` itself lives in :mod:`evaluators.metrics.frechet` (shared with the action metrics).
The action-to-motion variants (ACTOR / MLD recognition evaluator) live in
:mod:`evaluators.metrics.action` and are re-exported here.
"""

from __future__ import annotations

import numpy as np

from evaluators.metrics.action import (  # noqa: F401  (re-exported contract helpers)
    accuracy,
    diversity_a2m,
    fid_test,
    fid_train,
    multimodality_a2m,
)
from evaluators.metrics.frechet import (  # noqa: F401  (fid is a DESIGN.md contract name here)
    activation_statistics,
    as_2d,
    fid,
    frechet_distance,
)

__all__ = [
    "fid", "frechet_distance", "activation_statistics", "euclidean_distance_matrix", "r_precision",
    "matching_score", "diversity", "multimodality", "confidence_interval", "fid_train", "fid_test",
    "accuracy", "diversity_a2m", "multimodality_a2m",
]


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def euclidean_distance_matrix(a, b) -> np.ndarray:
    """``[N, M]`` Euclidean distances between rows of ``a [N, D]`` and ``b [M, D]``.

    Same expansion as the official code (``-2ab + |a|^2 + |b|^2``), clipped at 0 before the
    square root so round-off never produces NaN.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    d = -2.0 * a @ b.T + np.sum(a * a, axis=1, keepdims=True) + np.sum(b * b, axis=1)
    return np.sqrt(np.maximum(d, 0.0))


def _batches(text_emb, motion_emb, batch_size: int):
    t, m = as_2d(text_emb, "text_emb"), as_2d(motion_emb, "motion_emb")
    if t.shape != m.shape:
        raise ValueError(f"text_emb {t.shape} and motion_emb {m.shape} must have the same shape")
    n_batches = t.shape[0] // batch_size  # drop_last=True in the official loader
    if n_batches == 0:
        raise ValueError(f"need at least one full batch of {batch_size} pairs, got {t.shape[0]}")
    for i in range(n_batches):
        sl = slice(i * batch_size, (i + 1) * batch_size)
        yield euclidean_distance_matrix(t[sl], m[sl])


def r_precision(text_emb, motion_emb, top_k: int = 3, batch_size: int = 32) -> np.ndarray:
    """R-Precision top-1..top_k ``[top_k]``: row i of batch b is the text of motion i of batch b.

    Inside each full batch the motions are ranked by distance to each text; a hit at k means
    the paired motion is among the k nearest. Hits are summed over the batches and divided by
    the number of evaluated pairs (``n_batches * batch_size``).
    """
    hits = np.zeros(top_k, dtype=np.float64)
    n = 0
    for dist in _batches(text_emb, motion_emb, batch_size):
        order = np.argsort(dist, axis=1)
        gt = np.arange(dist.shape[0])[:, None]
        found = np.cumsum(order[:, :top_k] == gt, axis=1) > 0  # [B, top_k], cumulative
        hits += found.sum(axis=0)
        n += dist.shape[0]
    return hits / n


def matching_score(text_emb, motion_emb, batch_size: int = 32) -> float:
    """MM-Dist: mean distance between each text embedding and its paired motion embedding."""
    total, n = 0.0, 0
    for dist in _batches(text_emb, motion_emb, batch_size):
        total += float(np.trace(dist))
        n += dist.shape[0]
    return total / n


def diversity(feats, n_pairs: int = 300, seed=0) -> float:
    """Mean distance over ``n_pairs`` random pairs of ``feats [N, D]`` (each side without replacement)."""
    a = as_2d(feats, "feats")
    if a.shape[0] <= n_pairs:
        # the official code asserts num_samples > diversity_times
        raise ValueError(f"diversity needs more than n_pairs={n_pairs} samples, got {a.shape[0]}")
    rng = _rng(seed)
    first = rng.choice(a.shape[0], n_pairs, replace=False)
    second = rng.choice(a.shape[0], n_pairs, replace=False)
    return float(np.linalg.norm(a[first] - a[second], axis=1).mean())


def multimodality(feats, n_pairs: int = 10, seed=0) -> float:
    """Mean distance between ``n_pairs`` pairs of generations per condition; ``feats [C, K, D]``.

    As in the official code one pair of index draws (without replacement) is shared by all
    conditions.
    """
    a = np.asarray(feats, dtype=np.float64)
    if a.ndim != 3:
        raise ValueError(f"multimodality feats must be [C, K, D], got shape {a.shape}")
    if a.shape[1] <= n_pairs:
        raise ValueError(f"multimodality needs more than n_pairs={n_pairs} generations per condition, "
                         f"got {a.shape[1]}")
    rng = _rng(seed)
    first = rng.choice(a.shape[1], n_pairs, replace=False)
    second = rng.choice(a.shape[1], n_pairs, replace=False)
    return float(np.linalg.norm(a[:, first] - a[:, second], axis=2).mean())


def confidence_interval(values) -> tuple[float, float]:
    """``(mean, 1.96 * std / sqrt(R))`` over R repetitions, numpy population std (ddof=0)."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 0:
        raise ValueError("confidence_interval needs at least one value")
    return float(v.mean()), float(1.96 * v.std() / np.sqrt(v.size))
