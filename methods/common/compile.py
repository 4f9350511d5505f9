"""``torch.compile`` with an eager fallback, shared by the samplers (ours, for speed).

A compiled callable that fails (no C++ compiler for inductor on the CPU, an unsupported op, a
backend error at the first call) must never stop a run: eager is always correct. The first
failure is logged once as a warning and every later call runs eagerly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from evaluators.core.precision import module_view

log = logging.getLogger(__name__)


class CompiledOrEager:
    """Calls ``torch.compile(fn)``; on the first failure logs it and calls ``fn`` eagerly from then on.

    ``dynamic``: passed to ``torch.compile`` (``False``: one graph per input shape, as MLD's
    fixed-shape denoiser; ``None``: PyTorch's default, which turns a shape that changed into a
    symbolic one at the first recompilation, for MoMask's per-batch token counts).

    ``options``: inductor settings for this graph only (``torch.compile(options=...)``), e.g.
    ``{"freezing": True}`` for an inference graph whose weights are folded in as constants.
    """

    def __init__(self, fn: Callable, name: str = "sampler", dynamic: bool | None = False,
                 options: dict[str, Any] | None = None) -> None:
        self.fn, self.name = fn, name
        self.compiled: Callable | None = torch.compile(fn, dynamic=dynamic, **({"options": options} if options else {}))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.compiled is not None:
            try:
                return self.compiled(*args, **kwargs)
            except Exception as e:  # noqa: BLE001 - any backend failure: eager is always correct
                log.warning("%s: torch.compile failed (%s: %s); running eagerly", self.name, type(e).__name__, e)
                self.compiled = None
        return self.fn(*args, **kwargs)


class CompiledModule(nn.Module):
    """``module`` called through :class:`CompiledOrEager`, as an ``nn.Module`` so it can stand in
    for a child of a sampling view (its parameters are the original's: nothing is copied)."""

    def __init__(self, module: nn.Module, name: str, dynamic: bool | None = False) -> None:
        super().__init__()
        self.inner = module
        self._call = CompiledOrEager(module, name, dynamic)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self._call(*args, **kwargs)


def compiled_view(cache: dict, name: str, module: nn.Module, children: tuple[str, ...],
                  dynamic: bool | None = False) -> nn.Module:
    """A shallow copy of ``module`` whose ``children`` (the networks run at every sampling step) are
    compiled (:class:`CompiledModule`, cached in ``cache`` per child object, so a new bf16 copy or
    new weights object gets a new graph); its own methods and other children are the original's."""
    for c in children:
        child = getattr(module, c)
        if (name, c) not in cache or cache[(name, c)].inner is not child:
            cache[(name, c)] = CompiledModule(child, f"{name}.{c}", dynamic)
    return module_view(module, {c: cache[(name, c)] for c in children})
