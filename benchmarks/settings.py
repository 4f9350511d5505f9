"""Benchmark settings each method declares in its own class (``methods/base.py``, "what a method
declares about itself"); this module only walks the registry, it keeps no table of method names.

- ``Method.default_steps``: the sampler's configured step / iteration count (batch-32 runs use it:
  the papers' counts at paper scale, the smoke configs' shorter samplers at smoke scale);
- ``Method.train_batch()``: the training batch of the main stage (train-step samples/s);
- ``Method.precision_key``: where a sampler's ``precision: fp32 | bf16`` setting lives in its method
  config (the bf16 sampling rows set it before building; :func:`precision_keys`, :func:`set_precision`);
- ``Method.benchmark_steps`` / ``Method.speed_targets``: the quality-vs-steps sweep and the
  fraction-of-peak targets of ``test_methods.py``.

FLOPs, per-step latency and train-step throughput use the methods' own optional hooks
``Method.denoiser_example(batch)`` / ``Method.train_step_example(batch)``.
"""

from __future__ import annotations

from methods import get_method, list_methods


def precision_keys(task: str | None = None) -> dict[str, tuple[str, ...]]:
    """``{method: path of its sampler precision key}`` over the registered methods that have one
    (only those of ``task`` when given)."""
    out = {}
    for name in list_methods():
        cls = get_method(name)
        if cls.precision_key and (task is None or cls.task == task):
            out[name] = tuple(cls.precision_key)
    return out


def set_precision(cfg: dict, name: str, precision: str) -> dict:
    """``cfg`` (a method config, modified in place and returned) with its sampler precision set."""
    key = get_method(name).precision_key
    if not key:
        raise ValueError(f"method {name!r} declares no precision_key (no sampler precision setting)")
    *parents, leaf = key
    d = cfg
    for k in parents:
        d = d.setdefault(k, {})
    d[leaf] = precision
    return cfg
