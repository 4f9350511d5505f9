"""MLD side by side with the authors' code: sampling at batch 1 and 32, one denoiser training step.

Optional: runs only when ``MOTIONREPRO_OFFICIAL_MLD`` points at a local checkout of
``ChenFengYe/motion-latent-diffusion`` (never vendored; ``benchmarks/official_mld.py`` imports its
``MldDenoiser`` / ``MldVae``). Run::

    MOTIONREPRO_OFFICIAL_MLD=/path/to/motion-latent-diffusion OMP_NUM_THREADS=1 \\
        pytest benchmarks/test_side_by_side_mld.py --benchmark-only

Both sides hold the same random weights at paper shapes (MLD-1, CLIP width 768, 9 layers) and
are checked to give the same result before anything is timed. Calls alternate in one process
at 1 thread (``benchmarks/alternate.py``), so the ratio survives a shared machine; the run's
CPU/wall ratio is stored with it (``distorted`` when the process got under 90% of its thread).
Each workload writes ``leaderboards/benchmarks/side_by_side/<cpu>/<workload>.json``.

The suite's sampler is ``diffusion.fast_sampler`` (``methods/mld/fast_sampler.py``; no
compilation, so ``first_call_s`` is the first call's time, nothing to amortise); its eager loop
(the default) is timed beside it (``suite_eager_s``), and so is the fast sampler with
``diffusion.onednn_linear`` (``<workload>_onednn``: the products on oneDNN instead of oneMKL; its
``first_call_s`` includes packing the weights, done once per sampler and kept while they do not
change). Both batches also store the profiles of the three calls (``profile``: where the time goes before and after the suite's changes) and the time of
the suite's dense products replayed alone (``floor``, :mod:`benchmarks.floor`): no implementation of
this math with these kernels goes below it, so ``official_s / floor_s`` bounds the reachable ratio.
A run on a loaded machine adds its profile and floor to a quiet file without replacing the quiet
timing (:func:`benchmarks.alternate.write_side_by_side`). The training step is the suite's as a run
trains by default (``denoiser.fused_adamw`` false), the fused AdamW opt-in timed beside it
(``suite_other_adamw_s``), with the same evidence; ``denoiser.onednn_linear`` (the frozen VAE encode
on oneDNN) has its own row, ``<workload>_onednn``.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from benchmarks import floor as fl
from benchmarks import official_mld as om
from benchmarks.alternate import Alternation, alternate, record_side_by_side
from benchmarks.profiling import top_ops
from evaluators.core.config import load_config
from methods.common import onednn_linear
from methods.mld.diffusion import ddim_coefficients_for, ddim_sample
from methods.mld.fast_sampler import FusedSampler

ROOT = om.official_root()
pytestmark = pytest.mark.skipif(ROOT is None, reason=f"set ${om.ENV} to a local checkout of "
                                "ChenFengYe/motion-latent-diffusion to time the authors' MLD beside the suite's")
OUT = Path(__file__).resolve().parents[1] / "leaderboards" / "benchmarks" / "side_by_side"
STEPS, GUIDANCE = 50, 7.5  # paper: 50 DDIM steps, CFG scale 7.5 (configs/method/mld.yaml)
TARGETS = {1: 2.0, 32: 1.2}  # suite speed over the authors' (same math, fp32, 1 thread); never lowered
TRAIN_TARGET, TRAIN_BATCH = 1.2, 64  # official denoiser stage batch size 64
REPEATS = {1: 21, 32: 5}  # ours: alternation rounds (batch 32 calls take seconds each; batch 1 varies more)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _rel_gap(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def _write(workload: str, batch: int, alt: Alternation, official: str, suite: str, target: float,
           **extra) -> dict:
    return record_side_by_side(OUT, workload, "mld", batch, target, alt, official, suite, **extra)


@pytest.mark.parametrize("batch", [1, 32])
def test_sampling_side_by_side(benchmark, batch):
    pair = om.build_pair(ROOT)
    cfg = om.diffusion_cfg()
    text, z_T = om.inputs(batch)
    uncond, cond = text[:batch], text[batch:]
    official = om.official_sampler(pair.official_denoiser, cfg, STEPS, GUIDANCE)
    coeffs = ddim_coefficients_for(STEPS, 0.0, cfg)
    fast = FusedSampler(pair.suite_denoiser, coeffs, GUIDANCE)
    onednn = (FusedSampler(pair.suite_denoiser, coeffs, GUIDANCE, onednn=True)
              if onednn_linear.unavailable() is None else None)

    def eager():
        return ddim_sample(pair.suite_denoiser, cond, uncond, z_T, steps=STEPS, guidance_scale=GUIDANCE,
                           scheduler_cfg=cfg)

    ref = official(text, z_T)
    gaps = {"eager": _rel_gap(eager(), ref), "fast_sampler": _rel_gap(fast(cond, uncond, z_T), ref)}
    contenders = {"official": lambda: official(text, z_T), "suite": lambda: fast(cond, uncond, z_T),
                  "suite_eager": eager}
    if onednn is not None:
        # a fresh sampler: its first call packs the weights, which the alternation times apart
        contenders["suite_onednn"] = lambda: onednn(cond, uncond, z_T)
        gaps["onednn_linear"] = _rel_gap(FusedSampler(pair.suite_denoiser, coeffs, GUIDANCE, onednn=True)(
            cond, uncond, z_T), ref)
    assert max(gaps.values()) < 1e-5, gaps  # same math: the same z_0 from the same weights and noise
    alt = alternate(contenders, repeats=REPEATS[batch], threads=1)
    extra = {"suite_path": "diffusion.fast_sampler", "suite_eager_s": alt.median("suite_eager"),
             "ratio_eager": alt.ratio("official", "suite_eager"), "max_rel_gap_to_official": gaps,
             "steps": STEPS, "guidance_scale": GUIDANCE}
    extra["floor"] = fl.measure({"official": lambda: official(text, z_T), "suite": lambda: fast(cond, uncond, z_T)},
                                record=lambda: fast(cond, uncond, z_T), modules=[pair.suite_denoiser],
                                repeats=REPEATS[batch])
    extra["profile"] = {"suite": top_ops(lambda: fast(cond, uncond, z_T)),
                        "suite_eager": top_ops(eager), "official": top_ops(lambda: official(text, z_T))}
    row = _write(f"mld_sampling_b{batch}", batch, alt, "official", "suite", TARGETS[batch], **extra)
    if onednn is not None:  # the opt-in beside the default fast sampler, from the same alternation
        _write(f"mld_sampling_b{batch}_onednn", batch, alt, "official", "suite_onednn", TARGETS[batch],
               suite_path="diffusion.fast_sampler + diffusion.onednn_linear", max_rel_gap_to_official=gaps,
               steps=STEPS, guidance_scale=GUIDANCE,
               floor=fl.measure({"official": lambda: official(text, z_T), "suite": lambda: onednn(cond, uncond, z_T)},
                                record=lambda: onednn(cond, uncond, z_T), modules=[pair.suite_denoiser],
                                repeats=REPEATS[batch]),
               profile={"suite": top_ops(lambda: onednn(cond, uncond, z_T))})
    benchmark.extra_info.update(row)
    benchmark.pedantic(lambda: fast(cond, uncond, z_T), rounds=1, iterations=1)


def test_denoiser_train_step_side_by_side(benchmark):
    pair = om.build_pair(ROOT, vae=True)
    cfg = om.diffusion_cfg()
    # same math: without dropout (whose masks the two sides draw differently) one seed gives both steps
    # the same posterior sample, ε and t, hence the same loss and the same gradients (compared, not the
    # updated weights: AdamW's first update is lr·sign(g), which flips where g is ~0 on either side)
    check = om.build_pair(ROOT, vae=True, dropout=0.0)
    losses, grads = [], []
    steps = [(om.official_train_step, {}), (om.suite_train_step, {"fused": True})]
    onednn = onednn_linear.unavailable() is None
    if onednn:
        steps.append((om.suite_train_step, {"onednn": True}))
    for make, kw in steps:
        fresh = copy.deepcopy(check)
        torch.manual_seed(3)
        losses.append(make(fresh, cfg, 4, **kw)())
        den = fresh.official_denoiser if make is om.official_train_step else fresh.suite_denoiser
        grads.append({k: p.grad for k, p in den.named_parameters() if p.grad is not None})
    assert abs(losses[0] - losses[1]) <= 1e-6 * abs(losses[0]), losses
    # the oneDNN encode sums the products in another order: the same loss to 1e-5
    assert all(abs(loss - losses[0]) <= 1e-5 * abs(losses[0]) for loss in losses[2:]), losses
    assert all(g.keys() == grads[0].keys() for g in grads)
    gaps = [max(float((grads[0][k] - g[k]).abs().max() / grads[0][k].abs().max().clamp_min(1e-12)) for k in g)
            for g in grads[1:]]
    grad_gap = gaps[0]
    assert max(gaps) < 1e-4, gaps
    # the suite as a run trains by default (denoiser.fused_adamw false); the fused AdamW opt-in beside it
    default_fused = bool(load_config("method", "mld")["denoiser"]["fused_adamw"])
    suite_pair, other_pair = copy.deepcopy(pair), copy.deepcopy(pair)  # each side steps its own weights
    official = om.official_train_step(pair, cfg, TRAIN_BATCH)
    suite = om.suite_train_step(suite_pair, cfg, TRAIN_BATCH, fused=default_fused)
    other = om.suite_train_step(other_pair, cfg, TRAIN_BATCH, fused=not default_fused)
    contenders = {"official": official, "suite": suite, "suite_other_adamw": other}
    if onednn:  # denoiser.onednn_linear on top of the default AdamW: its own weights, its own row
        onednn_pair = copy.deepcopy(pair)
        contenders["suite_onednn"] = om.suite_train_step(onednn_pair, cfg, TRAIN_BATCH, fused=default_fused,
                                                         onednn=True)
    alt = alternate(contenders, repeats=REPEATS[32], threads=1)
    row = _write(f"mld_train_step_b{TRAIN_BATCH}", TRAIN_BATCH, alt, "official", "suite", TRAIN_TARGET,
                 suite_path=f"the method's default (denoiser.fused_adamw {str(default_fused).lower()})",
                 suite_other_adamw=f"denoiser.fused_adamw {str(not default_fused).lower()}",
                 suite_other_adamw_s=alt.median("suite_other_adamw"),
                 ratio_other_adamw=alt.ratio("official", "suite_other_adamw"), first_step_loss=losses,
                 max_rel_grad_gap=grad_gap, profile={"suite": top_ops(suite), "official": top_ops(official)},
                 floor=fl.measure({"official": official, "suite": suite}, record=suite,
                                  modules=[suite_pair.suite_vae, suite_pair.suite_denoiser], repeats=REPEATS[32]))
    if onednn:
        step = contenders["suite_onednn"]
        _write(f"mld_train_step_b{TRAIN_BATCH}_onednn", TRAIN_BATCH, alt, "official", "suite_onednn", TRAIN_TARGET,
               suite_path=f"denoiser.onednn_linear true, denoiser.fused_adamw {str(default_fused).lower()}",
               first_step_loss=losses, max_rel_grad_gap=gaps[-1], profile={"suite": top_ops(step)},
               floor=fl.measure({"official": official, "suite": step}, record=step,
                                modules=[onednn_pair.suite_vae, onednn_pair.suite_denoiser], repeats=REPEATS[32]))
    benchmark.extra_info.update(row)
    benchmark.pedantic(suite, rounds=1, iterations=1)
