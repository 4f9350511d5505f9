"""Mask schedules, BERT-style corruption and confidence-based iterative decoding (MoMask Sec. 3.2).

Source of every number: EricGuo5513/momask-codes ``models/mask_transformer/{tools,transformer}.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from methods.common.sampling import check_finite, gumbel_noise


def cosine_schedule(t: torch.Tensor) -> torch.Tensor:
    """Mask ratio ``gamma(t) = cos(pi t / 2)`` for ``t`` in [0, 1]."""
    return torch.cos(t * math.pi * 0.5)


def lengths_to_pad(lengths: torch.Tensor, n: int) -> torch.Tensor:
    """``[B]`` token lengths -> ``[B, n]`` bool, True = padding."""
    return torch.arange(n, device=lengths.device)[None] >= lengths[:, None]


def num_masked(ratio: torch.Tensor, n: int | torch.Tensor) -> torch.Tensor:
    """Official count ``round(n * ratio)`` clamped to >= 1 (``n`` = padded length in training)."""
    return (n * ratio).round().clamp(min=1)


def random_mask(pad: torch.Tensor, ratio: torch.Tensor) -> torch.Tensor:
    """Random positions to mask ``[B, N]`` bool: the ``round(N * ratio)`` first of a random
    permutation, restricted to non-pad positions (official training masking)."""
    b, n = pad.shape
    count = num_masked(ratio, n)
    ranks = torch.rand(b, n, device=pad.device).argsort(-1).argsort(-1)
    return (ranks < count[:, None]) & ~pad


def bert_corrupt(ids: torch.Tensor, mask: torch.Tensor, num_tokens: int, mask_id: int,
                 p_random: float = 0.1, p_mask_of_rest: float = 0.88) -> torch.Tensor:
    """Input ids for masked positions: 10% a random code, 88% of the rest ``[MASK]``, the rest unchanged."""
    rand_sel = (torch.rand(mask.shape, device=ids.device) < p_random) & mask
    x = torch.where(rand_sel, torch.randint_like(ids, num_tokens), ids)
    mask_sel = (torch.rand(mask.shape, device=ids.device) < p_mask_of_rest) & mask & ~rand_sel
    return torch.where(mask_sel, torch.full_like(ids, mask_id), x)


def masked_token_ce(logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy on masked positions: (mean loss, per-token loss ``[B, N]`` (0 where unmasked))."""
    target = torch.where(mask, ids, torch.zeros_like(ids))  # unmasked/pad targets are ignored
    per = F.cross_entropy(logits.transpose(1, 2), target, reduction="none") * mask
    return per.sum() / mask.sum().clamp(min=1), per


def top_k_count(n_codes: int, thres: float = 0.9) -> int:
    """Number of logits kept by the official ``top_k(logits, thres)``: ``ceil((1 - thres) K)``, at least 1
    (momask-codes ``models/mask_transformer/tools.py:106-111``)."""
    return max(1, math.ceil((1 - thres) * n_codes))


def top_k_filter(logits: torch.Tensor, thres: float = 0.9) -> torch.Tensor:
    """Keep the top ``ceil((1 - thres) K)`` logits, ``-inf`` elsewhere (official ``top_k``).

    The samplers no longer build this tensor (see :func:`sample_ids`); it stays as the
    unfused reference the tests compare the fused sampler with.
    """
    val, ind = logits.topk(top_k_count(logits.shape[-1], thres), dim=-1)
    return torch.full_like(logits, float("-inf")).scatter_(-1, ind, val)


def sample_ids(logits: torch.Tensor, temperature: float = 1.0, topk_thres: float = 0.9, gumbel: bool = False,
               generator: torch.Generator | None = None, name: str = "logits",
               noise: torch.Tensor | None = None) -> torch.Tensor:
    """Sample ``[B, N]`` ids from ``logits [B, N, K]`` after top-k filtering.

    Both modes draw from ``softmax(top_k(logits) / temperature)`` (momask-codes
    ``models/mask_transformer/transformer.py:404-412``): a categorical draw (default) or Gumbel-max
    (``gsample=True``; the residual transformer always uses it). The official categorical branch
    divides the softmax probabilities by T and ``Categorical`` renormalises them, so T has no effect
    there; ours applies T in both modes. Identical at the default T = 1 (README deviations). NaN/inf in ``logits`` raise :class:`methods.common.sampling.NonFiniteError` naming ``name``.

    Fused (ours, for speed): the draw is made among the ``k`` kept values only (``topk`` -> Gumbel-max or
    a categorical over ``k`` -> gather the index), not over a ``[B, N, K]`` tensor that is ``-inf``
    outside the top k. Entries outside the top k have probability 0 in both forms, so the
    distribution is the same; with the same Gumbel noise on the kept entries the ids are the same
    (``noise [B, N, k]``, in ``topk`` order; tests only), see ``tests/samplers/test_token_samplers.py``.
    """
    check_finite(name, logits)
    k = top_k_count(logits.shape[-1], topk_thres)
    val, ind = logits.topk(k, dim=-1)  # sorted, so noise[..., j] belongs to the j-th largest logit
    t = max(float(temperature), 1e-10)
    if gumbel:
        g = gumbel_noise(val.shape, generator=generator, device=val.device) if noise is None else noise
        scores = val.float() / t + g  # float32: the 1e-20 clamp of the noise survives
        j = check_finite(f"top_k({name})/T + gumbel", scores).argmax(-1)
    else:
        probs = F.softmax(val / t, dim=-1)
        j = torch.multinomial(probs.reshape(-1, k), 1, generator=generator).view(probs.shape[:-1])
    return ind.gather(-1, j[..., None])[..., 0]


def confidence(logits: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """``softmax(logits)[pred]`` over the UNFILTERED logits without temperature (official
    ``probs_without_temperature.gather``, ``transformer.py:414-416``).

    Kept as softmax + gather: on this CPU one fused softmax is about 2x faster than
    ``exp(logit[pred] - logsumexp(logits))`` (0.8 vs 1.5 ms at ``[32, 49, 512]``), and it gives
    the same floats as before, so the confidence ranking cannot move by an ulp.
    """
    return logits.softmax(-1).gather(-1, pred[..., None])[..., 0]


LogitsFn = Callable[[torch.Tensor, int], torch.Tensor]


@torch.inference_mode()
def iterative_decode(logits_fn: LogitsFn, lengths: torch.Tensor, n: int, steps: int, mask_id: int, pad_id: int,
                     temperature: float = 1.0, topk_thres: float = 0.9, gumbel: bool = False,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Confidence-based parallel decoding (MaskGIT as in MoMask ``MaskTransformer.generate``).

    Start all-[MASK]; at step ``k`` of ``steps`` re-mask the ``round(cos(pi/2 * k/(steps-1)) * len)``
    lowest-confidence positions (at least one), predict them, and keep the probability of the
    sampled id as its confidence (positions not re-masked get +inf). ``logits_fn(ids, k)``
    returns (guided) logits ``[B, N, K]``; HGM3 switches its condition with ``k``.
    Returns ids ``[B, n]`` with -1 beyond each length.
    """
    pad = lengths_to_pad(lengths, n)
    ids = torch.where(pad, pad_id, mask_id)
    scores = torch.where(pad, 1e5, 0.0).float()
    for k, t in enumerate(torch.linspace(0, 1, steps, device=lengths.device)):
        count = (cosine_schedule(t) * lengths).round().clamp(min=1)
        is_mask = scores.argsort(-1).argsort(-1) < count[:, None]
        ids = torch.where(is_mask, mask_id, ids)
        logits = logits_fn(ids, k)
        pred = sample_ids(logits, temperature, topk_thres, gumbel, generator, name=f"mask_logits[step={k}]")
        ids = torch.where(is_mask, pred, ids)
        scores = confidence(logits, pred).masked_fill(~is_mask, 1e5)
    return torch.where(pad, -1, ids)


def residual_schedule(bs: int, nq: int, device=None) -> torch.Tensor:
    """Layer ``j`` to train, in ``[1, nq-1]``: ``round((1 - cos(pi u/2)) (nq - 2)) + 1`` (official ``q_schedule``)."""
    u = torch.rand(bs, device=device)
    return (1 - cosine_schedule(u)).mul(nq - 2).round().long() + 1
