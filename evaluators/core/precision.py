"""The ``precision: fp32 | bf16`` sampler setting shared by the generators.

bf16 sampling runs a COPY of a network whose weights were cast to bf16 once (autocast would
re-cast every weight at every call). The copy casts its floating inputs to bf16 on entry
and returns fp32 outputs, so the sampler's own state and arithmetic (DDIM update, CFG mix,
top-k / softmax / Gumbel sampling, confidences) stay fp32 and only the network runs in bf16.

The copy is cached and rebuilt when the source's weights change: the cache key holds the
identity and in-place version counter of every parameter and buffer of the source, and
``load_state_dict``, optimiser steps and EMA updates all write in place (version bump).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from evaluators.core.validate import PRECISIONS

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def check_precision(value: Any, key: str) -> str:
    """``value`` if it is one of :data:`PRECISIONS`, else ``ValueError`` naming ``key``."""
    p = "fp32" if value is None else str(value)
    if p not in PRECISIONS:
        raise ValueError(f"{key} must be one of {list(PRECISIONS)}, got {value!r}")
    return p


def weights_fingerprint(module: nn.Module) -> tuple:
    """Identity, storage and version of every parameter and buffer of ``module``: it changes when
    the weights are replaced or updated in place (cached copies and frozen graphs are rebuilt)."""
    out = [id(module)]
    for t in (*module.parameters(), *module.buffers()):
        try:
            ver = t._version
        except RuntimeError:  # an inference tensor keeps no version counter
            ver = -1
        out.append((id(t), t.data_ptr(), ver))
    return tuple(out)


def _cast_in(dtype: torch.dtype, channels_last: bool = False):
    def cast(x):
        if isinstance(x, torch.Tensor) and x.is_floating_point() and x.dtype != dtype:
            if channels_last and x.dim() == 4:
                return x.to(dtype, memory_format=torch.channels_last)
            return x.to(dtype)
        if isinstance(x, (tuple, list)):
            return type(x)(cast(v) for v in x)
        return x

    def hook(module, args, kwargs):
        return cast(args), {k: cast(v) for k, v in kwargs.items()}

    return hook


def _float(x):
    if isinstance(x, torch.Tensor) and x.is_floating_point() and x.dtype != torch.float32:
        return x.float()
    if isinstance(x, (tuple, list)):
        return type(x)(_float(v) for v in x)
    return x


def _float_out(module, args, kwargs, out):
    return _float(out)


def low_precision_copy(module: nn.Module, dtype: torch.dtype = torch.bfloat16,
                       channels_last: bool = False) -> nn.Module:
    """An eval-mode copy of ``module`` with weights in ``dtype``, taking any-dtype floating inputs
    (cast on entry) and returning fp32 outputs (forward hooks on the copy's top level).

    ``channels_last`` (conv nets): 4-D weights and inputs in NHWC, the layout oneDNN's bf16
    convolutions run fastest in (HRNet-W32 at batch 32 on this CPU: bf16 7.7 s NCHW, 5.0 s NHWC;
    fp32 NCHW 11.6 s). The layout changes no value."""
    with torch.inference_mode(False), torch.no_grad():
        cp = copy.deepcopy(module).to(dtype).eval().requires_grad_(False)
        if channels_last:
            cp = cp.to(memory_format=torch.channels_last)
    cp.register_forward_pre_hook(_cast_in(dtype, channels_last), with_kwargs=True)
    cp.register_forward_hook(_float_out, with_kwargs=True)
    cp.low_precision_dtype = dtype
    return cp


class LowPrecisionCache:
    """Cached :func:`low_precision_copy` per name, rebuilt when the source's weights change."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[tuple, nn.Module]] = {}

    def get(self, name: str, module: nn.Module, dtype: torch.dtype = torch.bfloat16,
            channels_last: bool = False) -> nn.Module:
        key = (dtype, channels_last, weights_fingerprint(module))
        hit = self._entries.get(name)
        if hit is None or hit[0] != key:
            hit = (key, low_precision_copy(module, dtype, channels_last))
            self._entries[name] = hit
        return hit[1]

    def view(self, name: str, module: nn.Module, children: tuple[str, ...],
             dtype: torch.dtype = torch.bfloat16, channels_last: tuple[str, ...] = ()) -> nn.Module:
        """A shallow copy of ``module`` whose ``children`` are cached low-precision copies and whose
        own methods, buffers and other children are the original ones: its sampling code (keypoint
        / DDIM arithmetic, schedules) runs unchanged in fp32 around bf16 networks. Children named in
        ``channels_last`` run in NHWC (see :func:`low_precision_copy`)."""
        return module_view(module, {c: self.get(f"{name}.{c}", getattr(module, c), dtype, c in channels_last)
                                    for c in children})

    def clear(self) -> None:
        self._entries.clear()

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __getitem__(self, name: str) -> nn.Module:
        return self._entries[name][1]


def module_view(module: nn.Module, children: dict[str, nn.Module]) -> nn.Module:
    """A shallow copy of ``module`` with the named children replaced; its own methods, buffers,
    parameters and other children are the original's, and the original is left untouched (the
    sampling views of :class:`LowPrecisionCache` and ``methods.common.compile.compiled_view``)."""
    v = copy.copy(module)
    v._modules = {**module._modules, **children}
    return v
