"""Action-to-motion metrics (HumanAct12 / UESTC), as ACTOR and MLD compute them.

Source: Action2Motion's ``calculate_diversity_multimodality`` as copied into ACTOR
(``src/evaluate/action2motion/diversity.py``) and MLD (``mld/models/metrics/utils.py``):

- diversity: 200 index pairs drawn *with replacement* (``np.random.randint``) over all
  generated motions, mean Euclidean distance of their recognition features;
- multimodality: for every action label present, 20 pairs of motions *of that label*
  (first index drawn until its label still has quota, second drawn until the labels match),
  mean distance. ACTOR divides by ``20 * num_labels``; MLD keeps a zero quota for labels
  absent from the batch but still divides by ``20 * num_labels``. We divide by the number of
  pairs actually drawn, which equals both when every label is present.
- FID_train / FID_test: FID of the generated features against the recognition features of the
  training / test motions (ACTOR ``src/evaluate/stgcn_eval.py``, ``a2m`` evaluation).
- accuracy: recognition accuracy of the evaluator on the generated motions (trace of the
  confusion matrix over its sum).
"""

from __future__ import annotations

import numpy as np

from evaluators.metrics.frechet import fid

DIVERSITY_PAIRS_A2M = 200
MULTIMODALITY_PAIRS_A2M = 20


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def fid_train(train_feats, gen_feats) -> float:
    """FID between recognition features of the training motions and of generated motions."""
    return fid(train_feats, gen_feats)


def fid_test(test_feats, gen_feats) -> float:
    """FID between recognition features of the test motions and of generated motions."""
    return fid(test_feats, gen_feats)


def accuracy(logits_or_pred, labels) -> float:
    """Top-1 recognition accuracy in [0, 1]; ``logits [N, C]`` (argmax taken) or predictions ``[N]``."""
    p = np.asarray(logits_or_pred)
    y = np.asarray(labels).reshape(-1)
    if p.ndim == 2:
        p = p.argmax(axis=1)
    p = p.reshape(-1)
    if p.shape != y.shape or y.size == 0:
        raise ValueError(f"accuracy: predictions {p.shape} and labels {y.shape} must be equal, non-empty")
    return float((p == y).mean())


def diversity_a2m(feats, n_pairs: int = DIVERSITY_PAIRS_A2M, seed=0) -> float:
    """Mean distance over ``n_pairs`` index pairs drawn with replacement from ``feats [N, D]``."""
    a = np.asarray(feats, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] < 2:
        raise ValueError(f"diversity_a2m feats must be [N>=2, D], got {a.shape}")
    rng = _rng(seed)
    first = rng.integers(0, a.shape[0], n_pairs)
    second = rng.integers(0, a.shape[0], n_pairs)
    return float(np.linalg.norm(a[first] - a[second], axis=1).mean())


def multimodality_a2m(feats, labels, num_labels: int | None = None, n_pairs: int = MULTIMODALITY_PAIRS_A2M,
                      seed=0) -> float:
    """Mean distance over ``n_pairs`` same-label pairs for every label present in ``labels [N]``."""
    a = np.asarray(feats, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    if a.ndim != 2 or a.shape[0] != y.shape[0]:
        raise ValueError(f"multimodality_a2m: feats {a.shape} and labels {y.shape} disagree")
    num_labels = int(num_labels if num_labels is not None else y.max() + 1)
    rng = _rng(seed)
    quotas = np.zeros(num_labels, dtype=np.int64)
    quotas[np.unique(y)] = n_pairs
    by_label = {int(c): np.flatnonzero(y == c) for c in np.unique(y)}
    total, count = 0.0, 0
    while np.any(quotas > 0):
        i = int(rng.integers(0, a.shape[0]))
        c = int(y[i])
        if quotas[c] == 0:
            continue
        # the official loop redraws the second index until its label matches: equivalent to a
        # uniform draw among the motions of that label
        j = int(rng.choice(by_label[c]))
        quotas[c] -= 1
        total += float(np.linalg.norm(a[i] - a[j]))
        count += 1
    return total / count
