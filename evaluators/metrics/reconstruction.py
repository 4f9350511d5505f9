"""Reconstruction metrics: MPJPE, PA-MPJPE (per-pose similarity Procrustes), acceleration error.

Units follow the inputs (HumanML3D joints are in metres; protocols multiply by 1000 to
report mm). Definitions follow the MLD VAE table (``mld/models/metrics/compute.py``:
``ComputeMetrics`` with MPJPE, PA-MPJPE and ACCL from the VIBE/SPIN conventions):

- MPJPE: mean over all poses and joints of the Euclidean joint error.
- PA-MPJPE: each predicted pose [J, 3] is first aligned to its ground truth with the optimal
  similarity transform (rotation, uniform scale, translation; Umeyama / orthogonal
  Procrustes with reflection correction), then MPJPE.
- ACCL: mean Euclidean norm of the difference of second finite differences
  ``x[t+1] - 2 x[t] + x[t-1]`` between prediction and ground truth (per frame^2).
"""

from __future__ import annotations

import numpy as np


def _pair(pred, gt) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pred, dtype=np.float64)
    g = np.asarray(gt, dtype=np.float64)
    if p.shape != g.shape:
        raise ValueError(f"pred {p.shape} and gt {g.shape} must have the same shape")
    if p.ndim < 2 or p.shape[-1] != 3:
        raise ValueError(f"joints must end in [..., J, 3], got {p.shape}")
    return p, g


def mpjpe(pred, gt, align_root: bool = False, root: int = 0) -> float:
    """Mean per-joint position error of ``pred`` vs ``gt`` (``[..., J, 3]``), in input units.

    ``align_root``: subtract each pose's ``root`` joint from both first (MLD ``MRMetrics``
    ``align_root=True``, ``calc_mpjpe(..., align_inds=[0])``).
    """
    p, g = _pair(pred, gt)
    if align_root:
        p = p - p[..., root:root + 1, :]
        g = g - g[..., root:root + 1, :]
    return float(np.linalg.norm(p - g, axis=-1).mean())


def procrustes_align(pred, gt) -> np.ndarray:
    """Align every pose of ``pred [..., J, 3]`` to ``gt`` by a similarity transform; same shape out."""
    p, g = _pair(pred, gt)
    shape = p.shape
    p = p.reshape(-1, shape[-2], 3)
    g = g.reshape(-1, shape[-2], 3)
    mu_p, mu_g = p.mean(axis=1, keepdims=True), g.mean(axis=1, keepdims=True)
    x, y = p - mu_p, g - mu_g
    var_x = np.sum(x * x, axis=(1, 2))  # [N]
    k = np.einsum("nji,njk->nik", x, y)  # [N, 3, 3] cross-covariance X^T Y
    u, s, vt = np.linalg.svd(k)
    # reflection correction: force det(R) = +1
    d = np.sign(np.linalg.det(np.einsum("nij,njk->nik", u, vt)))
    d = np.where(d == 0, 1.0, d)
    corr = np.ones((p.shape[0], 3))
    corr[:, -1] = d
    r = np.einsum("nij,nj,njk->nik", u, corr, vt)  # rotation applied as x @ r
    scale = np.sum(s * corr, axis=1) / np.maximum(var_x, 1e-12)
    aligned = scale[:, None, None] * np.einsum("nji,nik->njk", x, r) + mu_g
    return aligned.reshape(shape)


def pa_mpjpe(pred, gt) -> float:
    """MPJPE after per-pose similarity Procrustes alignment of ``pred`` to ``gt`` (``[..., J, 3]``)."""
    return mpjpe(procrustes_align(pred, gt), gt)


def accel_error(pred, gt) -> float:
    """Mean acceleration error of sequences ``pred, gt [N, T, J, 3]`` (or ``[T, J, 3]``), T >= 3."""
    p, g = _pair(pred, gt)
    if p.ndim == 3:
        p, g = p[None], g[None]
    if p.ndim != 4 or p.shape[1] < 3:
        raise ValueError(f"accel_error needs [N, T>=3, J, 3] sequences, got {p.shape}")
    acc_p = p[:, :-2] - 2 * p[:, 1:-1] + p[:, 2:]
    acc_g = g[:, :-2] - 2 * g[:, 1:-1] + g[:, 2:]
    return float(np.linalg.norm(acc_p - acc_g, axis=-1).mean())
