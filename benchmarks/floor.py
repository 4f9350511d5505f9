"""The floor of a workload: its dense products (matmuls, convolutions) replayed alone.

A side-by-side ratio that misses its target needs the number that says how far any
implementation of the same math could go. The workload is run once under torch.profiler with
shapes recorded; every dense product it launched (``aten::addmm``, ``mm``, ``bmm``, ``baddbmm``,
``_addmm_activation`` as its matmul, ``convolution`` and ``convolution_backward``, oneDNN's packed
``mkldnn::_linear_pointwise`` (:mod:`methods.common.onednn_linear`); the outermost
such op only, so a product inside another is not counted twice) is then called again, in the
same order, with nothing between the calls: no Python model code, no elementwise ops, no norms,
no softmax, no sampling, no optimizer. The operands are the model's own weights where a
parameter or buffer has the operand's shape (cycled in call order, so the replay reads as many
distinct weights as the model does), else one random tensor per shape.

``hot``: every product against the FIRST weight of its shape, so the weights stay in cache;
where this is much faster than the plain replay, the floor is reading weights from memory.

What the floor leaves out (attention fused inside one SDPA kernel, every non-product op) makes
it a lower bound on the time of this math with these BLAS/oneDNN kernels, so
``official_s / floor_s`` bounds from above the ratio any implementation could reach.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from benchmarks.alternate import alternate
from methods.common import onednn_linear

DENSE_OPS = ("aten::addmm", "aten::mm", "aten::bmm", "aten::baddbmm", "aten::_addmm_activation",
             "aten::convolution", "aten::convolution_backward", "mkldnn::_linear_pointwise")


@dataclass(frozen=True)
class Product:
    """One recorded dense product: the op, its operands' shapes and its non-tensor arguments."""

    op: str
    shapes: tuple[tuple[int, ...], ...]
    consts: tuple[Any, ...]


def _inside_product(event) -> bool:
    parent = event.cpu_parent
    while parent is not None:
        if parent.name in DENSE_OPS:
            return True
        parent = parent.cpu_parent
    return False


def _freeze(v: Any) -> Any:
    return tuple(v) if isinstance(v, list) else v


def record_products(fn: Callable[[], Any]) -> list[Product]:
    """The dense products one call of ``fn`` launches, in launch order (one profiled call)."""
    from torch.profiler import (  # lazy: the profiler is loaded only when a floor is asked for
        ProfilerActivity,
        profile,
    )

    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        fn()
    events = sorted((e for e in prof.events() if e.name in DENSE_OPS and not _inside_product(e)),
                    key=lambda e: e.time_range.start)
    return [Product(e.name, tuple(tuple(s) for s in e.input_shapes),
                    tuple(_freeze(c) for c in (e.concrete_inputs or [None] * len(e.input_shapes))))
            for e in events]


class _Operands:
    """Weights by shape (the model's own, cycled in call order or the first one when ``hot``);
    random activations, one tensor per shape."""

    def __init__(self, modules: Iterable[nn.Module], hot: bool) -> None:
        self.by_shape: dict[tuple[int, ...], list[torch.Tensor]] = {}
        seen: set[int] = set()
        for m in modules:
            for t in [*m.parameters(), *m.buffers()]:
                if t.dim() >= 2 and t.is_floating_point() and id(t) not in seen:
                    seen.add(id(t))
                    self.by_shape.setdefault(tuple(t.shape), []).append(t.detach())
        self.cursor: Counter = Counter()
        self.hot = hot
        self.random: dict[tuple[int, ...], torch.Tensor] = {}
        self.gen = torch.Generator().manual_seed(0)

    def weight(self, shape: tuple[int, ...]) -> torch.Tensor | None:
        """A model weight of ``shape`` or of its transpose (a transposed view), else None."""
        for s, flip in ((shape, False), (tuple(reversed(shape)), True)):
            pool = self.by_shape.get(s)
            if pool:
                w = pool[0] if self.hot else pool[self.cursor[s] % len(pool)]
                self.cursor[s] += 1
                return w.t() if flip and w.dim() == 2 else w
        return None

    def act(self, shape: tuple[int, ...]) -> torch.Tensor | None:
        if not shape:
            return None
        if shape not in self.random:
            self.random[shape] = torch.randn(shape, generator=self.gen)
        return self.random[shape]

    def weight_or_act(self, shape: tuple[int, ...]) -> torch.Tensor:
        w = self.weight(shape)
        return self.act(shape) if w is None else w


def _call(p: Product, ops: _Operands) -> Callable[[], Any] | None:
    """The replay of one product with its operands bound, or None for a form it does not know."""
    s, c = p.shapes, p.consts
    if p.op in ("aten::addmm", "aten::_addmm_activation"):  # (bias, mat1, mat2, ...): the matmul only
        bias, x, w = ops.act(s[0]), ops.act(s[1]), ops.weight_or_act(s[2])
        return (lambda: torch.addmm(bias, x, w)) if bias is not None else (lambda: torch.mm(x, w))
    if p.op == "mkldnn::_linear_pointwise":  # (x, packed [out, in], bias, ...): packed once, as the model does
        x, bias = ops.act(s[0]), ops.act(s[2]) if len(s) > 2 else None
        packed = onednn_linear.pack(ops.weight_or_act(s[1]), rows=x.numel() // x.shape[-1])
        return lambda: onednn_linear.linear(x, packed, bias)
    if p.op == "aten::mm":  # a weight on either side (forward x @ W.t(), backward grad @ W)
        w2 = ops.weight(s[1])
        a, b = (ops.act(s[0]), w2) if w2 is not None else (ops.weight_or_act(s[0]), ops.act(s[1]))
        return lambda: torch.mm(a, b)
    if p.op == "aten::bmm":
        a, b = ops.act(s[0]), ops.act(s[1])
        return lambda: torch.bmm(a, b)
    if p.op == "aten::baddbmm":
        base, a, b = ops.act(s[0]), ops.act(s[1]), ops.act(s[2])
        return lambda: torch.baddbmm(base, a, b)
    if p.op == "aten::convolution" and len(c) >= 9 and c[3] is not None:
        x, w, bias = ops.act(s[0]), ops.weight_or_act(s[1]), ops.act(s[2])
        stride, padding, dilation, transposed, out_pad, groups = c[3], c[4], c[5], c[6], c[7], c[8]
        return lambda: torch.convolution(x, w, bias, stride, padding, dilation, transposed, out_pad, groups)
    if p.op == "aten::convolution_backward" and len(c) >= 11 and c[4] is not None:
        g, x, w = ops.act(s[0]), ops.act(s[1]), ops.weight_or_act(s[2])
        bias_sizes, rest = c[3], c[4:11]
        return lambda: torch.ops.aten.convolution_backward(g, x, w, bias_sizes, *rest)
    return None


def replay(products: list[Product], modules: Iterable[nn.Module], hot: bool = False) -> Callable[[], None]:
    """A callable running ``products`` back to back on the models' weights (``hot``: cache-resident)."""
    ops = _Operands(list(modules), hot)
    calls = [f for f in (_call(p, ops) for p in products) if f is not None]

    def run() -> None:
        with torch.no_grad():
            for f in calls:
                f()

    run.replayed = len(calls)  # type: ignore[attr-defined]
    return run


def summary(products: list[Product]) -> dict[str, int]:
    """How many products of each op (the ``products`` field of a floor)."""
    return dict(sorted(Counter(p.op.removeprefix("aten::") for p in products).items()))


def measure(contenders: dict[str, Callable[[], Any]], record: Callable[[], Any], modules: Iterable[nn.Module],
            repeats: int, threads: int = 1) -> dict[str, Any]:
    """The floor of ``record``'s products beside ``contenders`` (``official`` and ``suite``), alternated
    in one process so all see the same load; the ``floor`` field of a side-by-side file."""
    products = record_products(record)
    mods = list(modules)
    floor, hot = replay(products, mods), replay(products, mods, hot=True)
    alt = alternate({**contenders, "floor": floor, "hot": hot}, repeats=repeats, threads=threads)
    out = {"floor_s": alt.median("floor"), "hot_s": alt.median("hot"),
           **{f"{k}_s": alt.median(k) for k in contenders},
           "best_possible_ratio": alt.ratio("official", "floor"), "products": summary(products),
           "replayed": floor.replayed, "cpu_over_wall": round(alt.cpu_over_wall, 3)}
    if "suite" in contenders:
        out["suite_over_floor"] = alt.ratio("suite", "floor")
    return out
