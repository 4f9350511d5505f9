"""Fréchet distance between Gaussians fitted to two embedding sets (the FID of every protocol).

Official code: ``EricGuo5513/text-to-motion`` ``utils/metrics.py`` (``calculate_frechet_distance``),
copied by MLD, MoMask and ACTOR. Its own module because both :mod:`evaluators.metrics.generation`
(text-to-motion) and :mod:`evaluators.metrics.action` (FID_train / FID_test) use it.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import linalg

log = logging.getLogger(__name__)

__all__ = ["as_2d", "activation_statistics", "frechet_distance", "fid"]


def as_2d(x, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array [N, D], got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contains NaN or inf")
    return a


def activation_statistics(feats) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``[D]`` and covariance ``[D, D]`` (``np.cov``, unbiased) of ``feats [N, D]``."""
    a = as_2d(feats, "feats")
    if a.shape[0] < 2:
        raise ValueError(f"feats needs at least 2 rows for a covariance, got {a.shape[0]}")
    return a.mean(axis=0), np.cov(a, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """``|mu1-mu2|^2 + Tr(S1 + S2 - 2 sqrt(S1 S2))`` with the official singular-product fallback."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape:
        raise ValueError(f"shape mismatch: mu {mu1.shape} vs {mu2.shape}, sigma {s1.shape} vs {s2.shape}")
    diff = mu1 - mu2
    covmean = linalg.sqrtm(s1.dot(s2))
    if not np.isfinite(covmean).all():
        # T2M utils/metrics.py: singular product -> add eps to both diagonals and retry.
        log.warning("fid: singular covariance product; adding %g to the diagonals", eps)
        offset = np.eye(s1.shape[0]) * eps
        covmean = linalg.sqrtm((s1 + offset).dot(s2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"fid: imaginary component {np.max(np.abs(covmean.imag))} in sqrtm")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean))


def fid(real, gen) -> float:
    """Fréchet inception-style distance between embeddings ``real [N, D]`` and ``gen [M, D]`` (float64)."""
    mu1, s1 = activation_statistics(as_2d(real, "real"))
    mu2, s2 = activation_statistics(as_2d(gen, "gen"))
    return frechet_distance(mu1, s1, mu2, s2)
