"""Linear layers on oneDNN's prepacked fp32 matmul instead of oneMKL's sgemm (ours, for speed).

PyTorch runs an fp32 ``linear``/``addmm`` on the CPU through oneMKL, which picks its kernels by
CPU vendor: on AMD CPUs it runs its AVX2 code even where the core has AVX-512. oneDNN (bundled
with PyTorch, the library behind its CPU convolutions) picks by instruction set. Measured on an
AMD EPYC (Zen 5), 1 thread, one product of MLD's shapes (192 x 256 @ 256 x 768): oneMKL 97 GFLOPS,
oneDNN 230 GFLOPS. Both sum the same products, blocked differently, so the results differ in the
last bits (~1e-6 relative): a path built on this module is opt-in and tested against the eager
path at 1e-5, as a compiled one is.

The op is ``torch.ops.mkldnn._linear_pointwise`` on a weight reordered once into oneDNN's blocked
layout by ``torch.ops.mkldnn._reorder_linear_weight`` (the pair inductor's CPU backend emits for
a frozen linear) at inference; in training (:class:`LinearMode`) the same op on the weight as it
is, for the forward product and both gradient products. Both ops are private to PyTorch, so
:func:`unavailable` says when they cannot be used and callers keep oneMKL (with one warning).
"""

from __future__ import annotations

import weakref

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode


def unavailable() -> str | None:
    """Why oneDNN's packed linear cannot run in this PyTorch build (None: it can)."""
    if not torch.backends.mkldnn.is_available():
        return "PyTorch built without oneDNN (torch.backends.mkldnn.is_available() is False)"
    ops = torch.ops.mkldnn
    for name in ("_linear_pointwise", "_reorder_linear_weight"):
        if not hasattr(ops, name):
            return f"torch.ops.mkldnn.{name} missing in torch {torch.__version__}"
    return None


def pack(weight: torch.Tensor, rows: int) -> torch.Tensor:
    """``weight [out, in]`` reordered into oneDNN's layout; ``rows``: the typical row count of the
    products, oneDNN's hint for the layout (any row count gives the same values)."""
    with torch.no_grad():
        return torch.ops.mkldnn._reorder_linear_weight(weight.detach().contiguous(), max(int(rows), 1))


def linear(x: torch.Tensor, packed: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``F.linear(x, weight, bias)`` for ``packed`` = :func:`pack` of ``weight``."""
    return torch.ops.mkldnn._linear_pointwise(x, packed, bias, "none", [], "")


class PackedWeights:
    """oneDNN layouts of fp32 weight matrices, packed once and reused while the weight is unchanged.

    Packing MLD's 9-layer denoiser takes ~10 ms (a tenth of a batch-1 sampling call), so it is not
    redone per call; an entry is rebuilt when its tensor was written in place (an optimizer step,
    ``load_state_dict``: ``Tensor._version`` moves) or is another tensor. ``rows``: as in :func:`pack`.
    """

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self._packs: dict[tuple, tuple[weakref.ref, int, torch.Tensor]] = {}

    def get(self, weight: torch.Tensor) -> torch.Tensor:
        """The packed form of ``weight`` (``[out, in]``; a view such as ``w[:d]`` is keyed by its base
        tensor and place in it, so slicing a parameter anew at every call still hits)."""
        base = weight if weight._base is None else weight._base
        key = (id(base), weight.storage_offset(), tuple(weight.shape), tuple(weight.stride()))
        hit = self._packs.get(key)
        if hit is not None and hit[0]() is base and hit[1] == weight._version:
            return hit[2]
        packed = pack(weight, self.rows)
        self._packs[key] = (weakref.ref(base), weight._version, packed)
        return packed

    def linear(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        """``F.linear(x, weight, bias)`` on oneDNN, ``weight`` packed once."""
        return linear(x, self.get(weight), bias)


class _Linear(torch.autograd.Function):
    """``x W^T + b`` with its three products (forward, input gradient, weight gradient) on oneDNN's
    linear, the weight read in its own layout (no packing: in training it changes at every step)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        g2 = grad.reshape(-1, grad.shape[-1])
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:  # grad @ W: a linear whose weight is W^T
            gx = torch.ops.mkldnn._linear_pointwise(grad, weight.t(), None, "none", [], "")
        if ctx.needs_input_grad[1]:  # grad^T @ x: a linear of grad^T whose weight is x^T
            gw = torch.ops.mkldnn._linear_pointwise(g2.t(), x.reshape(-1, x.shape[-1]).t(), None, "none", [], "")
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = g2.sum(0)
        return gx, gw, gb


class LinearMode(TorchFunctionMode):
    """Within it, every fp32 CPU ``F.linear`` (``nn.Linear`` included) runs on oneDNN, forward and
    backward; any other call, dtype or device runs as usual. For a training step: the model code
    is unchanged, and autograd runs the backward products of :class:`_Linear` after the mode exits."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.linear:
            x, weight = args[0], args[1]
            bias = args[2] if len(args) > 2 else kwargs.get("bias")
            if (x.dim() >= 2 and x.device.type == "cpu" and x.dtype == weight.dtype == torch.float32
                    and (bias is None or bias.dtype == torch.float32)):
                return _Linear.apply(x, weight, bias)
        return func(*args, **kwargs)
