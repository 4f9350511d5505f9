"""Token-sampling primitives shared by every method: Gumbel noise and a finite-value guard.

One place draws Gumbel noise so that no sampler can get the formula wrong again (a misplaced clamp,
``torch.log(-torch.log(u).clamp(...))`` parses as ``-(log u).clamp`` and gave NaN, which
``argmax`` turned into code 0 everywhere).

Form: ``g = -log(-log(u))`` with ``u ~ U(0, 1)`` and both logs clamped at ``1e-20``, as the
authors' ``models/mask_transformer/tools.py:87-95`` (``log``, ``gumbel_noise``,
``gumbel_sample``) in EricGuo5513/momask-codes. ``argmax(l / T + g)`` is then an exact
sample from ``softmax(l / T)`` (the Gumbel-max trick).

:func:`check_finite` is the guard that runs before every ``argmax`` in token sampling. It
costs one ``isfinite().all()`` reduction (and, on a GPU, one sync) per call; it is on by
default and can be switched off for benchmarking with ``MOTIONREPRO_CHECK_FINITE=0`` or
:func:`set_finite_checks`.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import torch

_EPS = 1e-20  # authors' ``log(t, eps=1e-20)`` clamp (tools.py:87-88)
_CHECKS = os.environ.get("MOTIONREPRO_CHECK_FINITE", "1") not in ("0", "false", "False", "")


class NonFiniteError(FloatingPointError):
    """A tensor about to reach an ``argmax`` holds NaN or inf."""


def finite_checks_enabled() -> bool:
    """Whether :func:`check_finite` is active."""
    return _CHECKS


def set_finite_checks(on: bool) -> bool:
    """Switch the guard on or off; returns the previous setting."""
    global _CHECKS
    prev, _CHECKS = _CHECKS, bool(on)
    return prev


@contextmanager
def finite_checks(on: bool = True):
    """Context manager form of :func:`set_finite_checks` (tests use it)."""
    prev = set_finite_checks(on)
    try:
        yield
    finally:
        set_finite_checks(prev)


def check_finite(name: str, t: torch.Tensor, allow_neg_inf: bool = False) -> torch.Tensor:
    """Raise :class:`NonFiniteError` naming ``name`` if ``t`` holds NaN or inf; return ``t``.

    ``allow_neg_inf`` admits ``-inf`` (top-k filtered logits use it on purpose) but still
    rejects NaN, ``+inf`` and rows that are ``-inf`` everywhere (their argmax is meaningless).
    """
    if not _CHECKS:
        return t
    if allow_neg_inf:
        bad = torch.isnan(t).any() | torch.isposinf(t).any()
        if t.ndim and t.shape[-1]:
            bad = bad | torch.isneginf(t).all(-1).any()
    else:
        bad = ~torch.isfinite(t).all()
    if bool(bad):
        n_nan = int(torch.isnan(t).sum())
        n_inf = int(torch.isinf(t).sum())
        raise NonFiniteError(f"{name}: {n_nan} NaN and {n_inf} inf values in a tensor of shape "
                             f"{tuple(t.shape)} about to reach argmax"
                             + (" (or a row that is -inf everywhere)" if allow_neg_inf else ""))
    return t


def gumbel_noise(shape, *, generator: torch.Generator | None = None, device=None,
                 dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard Gumbel samples ``-log(-log(u))`` of ``shape`` (both logs clamped at 1e-20)."""
    u = torch.rand(shape, generator=generator, device=device, dtype=dtype)
    return -torch.log((-torch.log(u.clamp(min=_EPS))).clamp(min=_EPS))


def gumbel_argmax(logits: torch.Tensor, temperature: float = 1.0,
                  generator: torch.Generator | None = None, name: str = "logits") -> torch.Tensor:
    """One sample per row from ``softmax(logits / temperature)`` by Gumbel-max (``argmax`` over the last dim).

    ``logits`` may hold ``-inf`` (filtered entries never win); NaN/+inf raise (see :func:`check_finite`).
    """
    check_finite(name, logits, allow_neg_inf=True)
    g = gumbel_noise(logits.shape, generator=generator, device=logits.device)  # float32: 1e-20 clamp survives
    scores = logits.float() / max(float(temperature), 1e-10) + g
    return check_finite(f"{name}/T + gumbel", scores, allow_neg_inf=True).argmax(-1)
