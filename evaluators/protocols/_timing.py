"""Timing spans inside a protocol run: exclusive wall and CPU seconds per named part.

Why: to know what share of a text2motion repetition is spent outside generation
(evaluator embeddings, metrics, data). Timing the protocol's own code path, rather than a
re-implementation of it, is the only way the number describes a real run, so the protocol
opens a :class:`Spans` recorder and its helpers mark their parts with :func:`span`. Without an
active recorder :func:`span` is a no-op context (one ``ContextVar`` lookup).

Spans nest and are *exclusive*: the time of a child span is not counted in its parent, so the
parts of one repetition add up to its wall time. A benchmark passes its own recorder through
``RunContext.extra["timing"]`` and reads ``Spans.repetitions`` afterwards.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")

_ACTIVE: contextvars.ContextVar[Spans | None] = contextvars.ContextVar("motionrepro_spans", default=None)


class Spans:
    """Accumulates exclusive ``wall_s`` / ``cpu_s`` (process CPU time, all threads) and calls per part.

    ``clock`` / ``cpu_clock`` read the wall and CPU seconds (``time.perf_counter`` /
    ``time.process_time``); a test passes clocks it advances itself, so the bookkeeping is checked
    to the exact value instead of against sleeps on a machine whose load it cannot control.
    """

    def __init__(self, clock: Callable[[], float] = time.perf_counter,
                 cpu_clock: Callable[[], float] = time.process_time) -> None:
        self._clock, self._cpu_clock = clock, cpu_clock
        self.parts: dict[str, dict[str, float]] = {}
        self.repetitions: list[dict[str, dict[str, float]]] = []  # per repetition: the parts spent in it
        self._stack: list[list[float]] = []  # [wall0, cpu0, child_wall, child_cpu]

    @contextlib.contextmanager
    def span(self, name: str) -> Iterator[None]:
        frame = [self._clock(), self._cpu_clock(), 0.0, 0.0]
        self._stack.append(frame)
        try:
            yield
        finally:
            self._stack.pop()
            wall = self._clock() - frame[0]
            cpu = self._cpu_clock() - frame[1]
            p = self.parts.setdefault(name, {"wall_s": 0.0, "cpu_s": 0.0, "calls": 0})
            p["wall_s"] += wall - frame[2]
            p["cpu_s"] += cpu - frame[3]
            p["calls"] += 1
            if self._stack:  # the parent does not count this span's time as its own
                self._stack[-1][2] += wall
                self._stack[-1][3] += cpu

    def snapshot(self) -> dict[str, dict[str, float]]:
        return {k: dict(v) for k, v in self.parts.items()}

    def since(self, before: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        """Parts accumulated after ``before`` (a :meth:`snapshot`), zero entries dropped."""
        out = {}
        for k, v in self.parts.items():
            b = before.get(k, {"wall_s": 0.0, "cpu_s": 0.0, "calls": 0})
            calls = v["calls"] - b["calls"]
            if calls:
                out[k] = {"wall_s": v["wall_s"] - b["wall_s"], "cpu_s": v["cpu_s"] - b["cpu_s"], "calls": calls}
        return out


def span(name: str):
    """Time the block as part ``name`` of the active recorder (no-op when none is active)."""
    rec = _ACTIVE.get()
    return rec.span(name) if rec is not None else contextlib.nullcontext()


@contextlib.contextmanager
def recording(rec: Spans | None = None) -> Iterator[Spans]:
    """Make ``rec`` (or a new :class:`Spans`) the active recorder for the block."""
    rec = rec if rec is not None else Spans()
    token = _ACTIVE.set(rec)
    try:
        yield rec
    finally:
        _ACTIVE.reset(token)


def recorded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator for a protocol ``fn(method, data, cfg, ctx)``: records its spans into
    ``ctx.extra["timing"]`` when that is a :class:`Spans`, else into a fresh one (logged only)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        ctx = kwargs.get("ctx", args[3] if len(args) > 3 else None)
        rec = (getattr(ctx, "extra", None) or {}).get("timing")
        with recording(rec if isinstance(rec, Spans) else None):
            return fn(*args, **kwargs)

    return wrapper


def repetitions(items: Iterable[T], name: str = "repetition") -> Iterator[T]:
    """Iterate ``items``, timing each loop body as span ``name`` (its own Python time: the rest
    of the body is in the child spans) and appending the body's parts to ``Spans.repetitions``."""
    rec = _ACTIVE.get()
    for i, item in enumerate(items):
        if rec is None:
            yield item
            continue
        before = rec.snapshot()
        with rec.span(name):
            yield item
        parts = rec.since(before)
        rec.repetitions.append(parts)
        total = sum(v["wall_s"] for v in parts.values())
        log.info("%s %d: %.1f s wall, %.1f%% outside generation (%s)", name, i + 1, total,
                 100 * (share_outside(parts) or 0.0),
                 ", ".join(f"{k} {v['wall_s']:.2f} s" for k, v in sorted(parts.items())))


def share_outside(parts: dict[str, dict[str, float]], inside: str = "generation") -> float | None:
    """Fraction of the parts' total wall time not spent in part ``inside``."""
    total = sum(v["wall_s"] for v in parts.values())
    if total <= 0:
        return None
    return 1.0 - parts.get(inside, {}).get("wall_s", 0.0) / total
