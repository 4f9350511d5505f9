"""Cost of every registered method: sampling vs steps, AITS, per-step latency, FLOPs, memory.

Each method is built untrained at the selected scale (``--paper-scale`` or smoke): timing
does not depend on the weights. The sampling call is the one the protocols time:

- text-to-motion generators: ``generate(captions, lengths=196, steps)`` — AITS at batch 1
  (the papers' definition) and amortised at batch 32;
- pose estimators: ``predict(images, boxes, steps)`` on one 256×192-box crop per image;
- skeleton learners: ``reconstruct(x, steps)`` (conditional DDIM from a masked input).

``fraction_of_peak`` = FLOPs of the whole call (torch FlopCounterMode) / median time /
this machine's fp32 matmul peak measured once in the same run (``peak_gflops`` fixture); each method's ``speed_targets`` are stored
beside it so ``speed.md`` says by how much a target is missed. The ``test_sampling_bf16_*`` rows run the same call
with the method's sampler ``precision: bf16`` (weights cast once, sampler state fp32) at its default step count,
divided by the bf16 matmul peak of the same run, against the same targets (a bf16 row is measured against the bf16
peak and reported the same way).
"""

from __future__ import annotations

import gc
import itertools
import time

import numpy as np
import pytest
import torch

from benchmarks.conftest import (
    CpuWall,
    RssPeak,
    cap_for,
    count_flops_of_call,
    flop_count,
    matmul_peak_gflops,
    memory_stats,
    reset_peak,
    sync,
)
from benchmarks.profiling import top_ops
from benchmarks.settings import precision_keys, set_precision
from evaluators.core.config import load_config
from evaluators.core.precision import low_precision_copy
from methods import get_method, list_methods
from methods.base import MotionGenerator, PoseEstimator, RepresentationLearner

# Each method declares what is swept here in its own class (methods/base.py): ``benchmark_steps`` (batch 1
# sweep), ``default_steps`` (batch 32 runs the configured default: paper scale the papers' 50 DDIM steps for
# MLD and MacDiff, 10 iterations for MoMask/HGM3; smoke the smoke configs' shorter samplers) and
# ``speed_targets`` (fraction of the fp32 peak measured in the same run, paper scale, CPU, at (batch 1,
# batch 32). Never lower these to make a row pass).

_CACHE: dict[tuple, object] = {}
_CALLS = itertools.count()  # numbers every generation call's captions (never a cache hit)


def build(name: str, scale: str, device: torch.device, purpose: str = "sample", precision: str = "fp32"):
    """Untrained method at ``scale`` and sampler precision, cached for the sampling benchmarks. A
    training-step instance is built fresh and not kept: it never sees tensors created under
    ``inference_mode`` by the sampling benchmarks, and its optimizer state and gradients (several GiB
    at paper scale) are freed when its test ends, so one process can time every method's step."""
    key = (name, scale, str(device), purpose, precision)
    if purpose == "train":
        _CACHE.clear()  # the sampling instances are rebuilt if a later test needs them
        gc.collect()
        return _new(name, scale, device, precision)
    if key not in _CACHE:
        _CACHE[key] = _new(name, scale, device, precision)
    return _CACHE[key]


def _new(name: str, scale: str, device: torch.device, precision: str):
    cfg = load_config("method", name, scale)
    if precision != "fp32":
        set_precision(cfg, name, precision)
    m = get_method(name)(cfg, device=device, seed=0)
    if hasattr(m, "set_normalization"):  # untrained generators need feature statistics
        d = int(getattr(m, "nfeats", cfg.get("nfeats", 263)))
        m.set_normalization(np.zeros(d, np.float32), np.ones(d, np.float32))
    for mod in m.components().values():
        mod.eval()
    return m


def sampling_call(m, batch: int, steps: int | None):
    """A zero-argument callable running the method's sampling at ``batch`` and ``steps``."""
    g = torch.Generator().manual_seed(0)
    if isinstance(m, MotionGenerator) and m.task == "text2motion":
        def gen():  # fresh captions every call: text encoding (and HGM3's parse) is part of AITS,
            i = next(_CALLS)  # not served from the methods' caption caches
            caps = [f"a person walks forward {i} steps and then waves with hand {j}" for j in range(batch)]
            return m.generate(caps, [196] * batch, steps=steps)

        return gen
    if isinstance(m, PoseEstimator):
        rng = np.random.default_rng(0)
        images = [rng.integers(0, 255, (480, 640, 3), dtype=np.uint8) for _ in range(batch)]
        boxes = np.tile(np.array([[200.0, 100.0, 192.0, 256.0]]), (batch, 1))
        kw = {"flip": False} | ({"steps": steps} if steps is not None else {})
        return lambda: m.predict(images, boxes, **kw)
    if isinstance(m, RepresentationLearner):
        frames = int((m.cfg.get("model") or {}).get("num_frames", 120))
        x = torch.randn(batch, 3, frames, 25, 2, generator=g) * 0.3
        x[..., 1] = 0  # one-person clips, as most NTU samples
        return lambda: m.reconstruct(x, steps=steps)
    pytest.skip(f"{m.registry_name}: no sampling call defined for task {m.task!r}")


def _cases(batch32: bool):
    out = []
    for name in list_methods():
        if batch32:
            out.append((name, "default"))
        else:
            out.extend((name, s) for s in get_method(name).benchmark_steps)
    return out


def _rounds(scale: str, steps: int | None, batch: int) -> int:
    """Timed rounds: fewer for long calls (1000-step sampling, batch 32, paper scale on a CPU)."""
    if scale == "paper" and batch > 1:
        return 1
    if (steps or 0) >= 1000:
        return 1
    if (steps or 0) >= 50 or batch > 1 or scale == "paper":
        return 2
    return 3


def _call_flops(m, batch: int, steps: int | None, run) -> float:
    """FLOPs of the sampling call at ``steps``. Counting runs every op through a Python dispatch
    mode, so for ``steps > 2`` we count the 1- and 2-step calls and extrapolate linearly
    (every step runs the same module on the same shapes: exact for all our samplers)."""
    if steps is None or steps <= 2:
        run()  # the first call loads text encoders / fills caption caches: not counted, not timed
        return count_flops_of_call(run)

    def at(s, count=True):
        call = sampling_call(m, batch, s)
        with torch.inference_mode():
            return count_flops_of_call(call) if count else call()

    at(1, count=False)  # first call: lazy loads and caption caches, as for the timed calls
    f1, f2 = at(1), at(2)
    if steps < 50:  # warm-up at the measured step count (long calls: the 1/2-step calls warmed up)
        run()
    return f1 + (steps - 1) * (f2 - f1)


def _run(benchmark, name, steps, batch, scale, device, peak_gflops, max_steps, profile_top=0, precision="fp32"):
    if precision not in peak_gflops:
        pytest.skip(f"no {precision} matmul on this device (no {precision} peak measured)")
    m = build(name, scale, device, precision=precision)
    if steps == "default":
        steps = m.default_steps
    cap = cap_for(max_steps, name)
    measured = steps if steps is None or not cap else min(steps, cap)
    call = sampling_call(m, batch, measured)

    def run():
        with torch.inference_mode():
            call()
        sync(device)

    flops = _call_flops(m, batch, measured, run)  # also the warm-up (lazily loads text encoders)
    reset_peak(device)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]
    local = matmul_peak_gflops(device, dtype)
    cw = CpuWall()
    with RssPeak() as rss:
        benchmark.pedantic(cw.wrap(run), rounds=_rounds(scale, measured, batch), warmup_rounds=0, iterations=1)
    # one ceiling per file (the session's); the matmul right before/after is kept for diagnosis
    local = max(local, matmul_peak_gflops(device, dtype))
    peak = peak_gflops[precision]
    # --benchmark-disable (a quick check of the row): the plugin runs the call once and keeps no stats
    median = benchmark.stats.stats.median if benchmark.stats else cw.wall_s / max(cw.calls, 1)
    frac = flops / median / 1e9 / peak if flops else None
    target = (m.speed_targets or (None, None))[0 if batch == 1 else 1]
    benchmark.extra_info.update({
        "method": name, "scale": scale, "what": "sampling", "steps": measured, "batch": batch,
        "precision": precision, "peak_dtype": precision, "gflops_call": flops / 1e9, "peak_gflops": peak,
        "local_peak_gflops": local, **cw.info,
        "fraction_of_peak": frac,
        "target_fraction": target, "aits_s": median / batch, **rss.stats, **memory_stats(device),
    })
    notes = []
    if measured != steps:
        notes.append(f"measured at {measured} of {steps} steps (--max-steps); per-step cost is the same")
    if target is not None and frac is not None and scale == "paper":
        notes.append("meets target" if frac >= target else f"misses target by {100 * (target - frac):.1f} points of peak")
    if notes:
        benchmark.extra_info["note"] = "; ".join(notes)
    _profile(benchmark, run, m, steps, batch, target, profile_top)


def _profile(benchmark, run, m, steps, batch, target, top: int) -> None:
    """One extra, untimed call under torch.profiler: top ops by self CPU time in ``extra_info["profile"]``.

    Only rows that carry a target (the ones speed.md can mark as a miss) and, at batch 1, only
    the method's default step count (the row speed.md compares with the target).
    """
    if top <= 0 or target is None or (batch == 1 and steps != m.default_steps):
        return
    with torch.inference_mode():
        benchmark.extra_info["profile"] = top_ops(run, top)


@pytest.mark.parametrize("name,steps", _cases(batch32=False))
def test_sampling_batch1(benchmark, name, steps, scale, device, peak_gflops, max_steps, profile_top):
    _run(benchmark, name, steps, 1, scale, device, peak_gflops, max_steps, profile_top)


@pytest.mark.parametrize("name,steps", _cases(batch32=True))
def test_sampling_batch32(benchmark, name, steps, scale, device, peak_gflops, max_steps, profile_top):
    _run(benchmark, name, steps, 32, scale, device, peak_gflops, max_steps, profile_top)


@pytest.mark.parametrize("name", list(precision_keys()))
def test_sampling_bf16_batch1(benchmark, name, scale, device, peak_gflops, max_steps, profile_top):
    """test_sampling_batch1 at the default step count with ``precision: bf16`` (bf16 peak)."""
    _run(benchmark, name, "default", 1, scale, device, peak_gflops, max_steps, profile_top, precision="bf16")


@pytest.mark.parametrize("name", list(precision_keys()))
def test_sampling_bf16_batch32(benchmark, name, scale, device, peak_gflops, max_steps, profile_top):
    """test_sampling_batch32 with ``precision: bf16`` (bf16 peak)."""
    _run(benchmark, name, "default", 32, scale, device, peak_gflops, max_steps, profile_top, precision="bf16")


@pytest.mark.parametrize("name", list_methods())
def test_denoiser_step(benchmark, name, scale, device, peak_gflops):
    """One call of the module run at every sampling step: latency, fvcore GMACs, skipped ops."""
    m = build(name, scale, device)
    ex = m.denoiser_example(1)
    if ex is None:
        pytest.skip(f"{name} has no iterative denoiser")
    module, inputs = ex
    gmacs, skipped = flop_count(module, inputs)

    def run():
        with torch.inference_mode():
            module(*inputs)
        sync(device)

    peak = peak_gflops["fp32"]
    cw = CpuWall()
    run()
    run()  # warm-up outside the CPU/wall accounting
    benchmark.pedantic(cw.wrap(run), rounds=10, warmup_rounds=0, iterations=1)
    params = sum(p.numel() for p in module.parameters())
    benchmark.extra_info.update({"method": name, "scale": scale, "what": "one denoiser forward", "batch": 1,
                                 "gmacs": gmacs, "skipped_ops": skipped, "params_m": params / 1e6,
                                 "peak_gflops": peak, **cw.info,
                                 "fraction_of_peak": 2 * gmacs / benchmark.stats.stats.median / peak})


@pytest.mark.parametrize("mode", ["fp32", "bf16_autocast", "bf16_weights", "compile"])
@pytest.mark.parametrize("name", list_methods())
def test_denoiser_switches(benchmark, name, mode, scale, device):
    """bf16 autocast and torch.compile against the fp32 default, outputs checked within tolerance."""
    m = build(name, scale, device)
    ex = m.denoiser_example(8)
    if ex is None:
        pytest.skip(f"{name} has no iterative denoiser")
    module, inputs = ex
    with torch.inference_mode():
        ref = module(*inputs)
    fn = module
    if mode == "compile":
        fn = torch.compile(module)
    elif mode == "bf16_weights":  # what precision: bf16 samples with: weights cast once, fp32 in and out

        fn = low_precision_copy(module)

    def run():
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=mode == "bf16_autocast"):
            out = fn(*inputs)
        sync(device)
        return out

    t0 = time.perf_counter()
    out = run()  # the first call: includes torch.compile's compile time in "compile" mode
    first_call_s = time.perf_counter() - t0
    ref_t, out_t = _first_tensor(ref), _first_tensor(out)
    tol = 0.1 if mode.startswith("bf16") else 1e-3
    err = float((out_t.float() - ref_t.float()).abs().max() / (ref_t.float().abs().max() + 1e-6))
    assert err < tol, f"{name} {mode}: relative max error {err:.3g} exceeds {tol}"
    run()
    cw = CpuWall()
    benchmark.pedantic(cw.wrap(run), rounds=5, warmup_rounds=0, iterations=1)
    benchmark.extra_info.update({"method": name, "scale": scale, "what": f"denoiser forward ({mode})", "batch": 8,
                                 "first_call_s": first_call_s, **cw.info,
                                 "note": f"rel. max error vs fp32 {err:.2e}"})


@pytest.mark.parametrize("name", list_methods())
def test_train_step(benchmark, name, scale, device, train_batch):
    """Samples/s, step time (ms) and peak memory of one optimiser step at the configured batch (random
    data); ``--paper-scale`` gives the papers' training cost that speed.md shows beside sampling."""
    m = build(name, scale, device, purpose="train")
    batch = cap_for(train_batch, name) or m.train_batch()
    step = m.train_step_example(batch)
    if step is None:
        pytest.skip(f"{name} provides no train_step_example")
    step()
    reset_peak(device)
    cw = CpuWall()
    with RssPeak() as rss:
        benchmark.pedantic(cw.wrap(lambda: (step(), sync(device))), rounds=3, warmup_rounds=0, iterations=1)
    benchmark.extra_info.update({"method": name, "scale": scale, "what": "train step", "batch": batch, **cw.info,
                                 "samples_per_s": batch / benchmark.stats.stats.median,
                                 "step_ms": 1e3 * benchmark.stats.stats.median, **rss.stats,
                                 **memory_stats(device)})


def _first_tensor(x):
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, dict):
        return _first_tensor(next(iter(x.values())))
    if isinstance(x, (list, tuple)):
        return _first_tensor(x[0])
    raise TypeError(f"no tensor in output of type {type(x).__name__}")
