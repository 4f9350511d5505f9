"""``benchmarks/bf16_drift.py`` on a tiny untrained MLD and tiny synthetic text-motion data.

Checks the tool's logic, not a drift value: the bf16 pass really runs at bf16 (raw outputs of one
seeded batch differ from fp32, the direct ``generate`` calls agree with what the tool reports),
fp32 on the same seed repeats bit for bit (so the two protocol passes see the same noise), a
switch that does nothing is refused, and the summary statistics match the standard library's.
"""

from __future__ import annotations

import statistics

import pytest
import torch

from benchmarks import bf16_drift as B
from evaluators.core.config import load_config
from evaluators.networks.t2m_train import train_evaluator
from evaluators.protocols import RunContext
from methods import get_method
from tests.networks._tiny import TINY_EVAL_CFG, TinyT2M

TINY_MLD = {"vae": {"latent_dim": 16, "ff_size": 32, "num_layers": 1, "num_heads": 2},
            "denoiser": {"ff_size": 32, "num_layers": 1, "num_heads": 2}, "diffusion": {"steps": 3}}
PCFG = {"repetitions": 2, "mm": {"enabled": False}, "aits": {"enabled": False}, "real_row": False,
        "steps_sweep": None, "diversity_times": 20}


def _mld_cfg() -> dict:
    cfg = load_config("method", "mld", "smoke")
    for k, v in TINY_MLD.items():
        cfg[k] = {**cfg.get(k, {}), **v}
    return cfg


@pytest.fixture(scope="module")
def tiny():
    torch.set_num_threads(1)
    data = TinyT2M(n=70, k=8, seed=1)
    ev = train_evaluator(data, steps=20, lr=1e-3, config_overrides={**TINY_EVAL_CFG, "max_motion_length": 64},
                         seed=0, cache=False)
    cls = get_method("mld")
    models = {}
    for p in ("fp32", "bf16"):
        m = cls(B.with_precision("mld", _mld_cfg(), p), seed=0)  # same seed: same initial weights
        m.set_normalization(data.mean, data.std)
        models[p] = m
    models["bf16"].load_state_dict(models["fp32"].state_dict())
    return data, ev, models


def test_with_precision_sets_the_methods_key_and_copies():
    cfg = _mld_cfg()
    out = B.with_precision("mld", cfg, "bf16")
    assert out["diffusion"]["precision"] == "bf16" and cfg["diffusion"]["precision"] == "fp32"
    assert B.with_precision("momask", {"sampler": {"iterations": 10}}, "bf16")["sampler"] == \
        {"iterations": 10, "precision": "bf16"}
    with pytest.raises(ValueError, match="macdiff"):
        B.with_precision("macdiff", {}, "bf16")
    with pytest.raises(ValueError, match="fp16"):
        B.with_precision("mld", cfg, "fp16")


def test_raw_output_check_sees_bf16_and_repeats_fp32(tiny):
    data, _, models = tiny
    caps, lens = B.check_batch(data, n=4, max_len=64)
    assert all(n % 4 == 0 and 0 < n <= 64 for n in lens)
    raw = B.raw_output_check(models, caps, lens, seed=5)
    # the same calls made directly, outside the tool
    outs = {}
    for p in ("fp32", "bf16"):
        torch.manual_seed(5)
        outs[p] = models[p].generate(caps, lens)
    assert models["bf16"].sampler_settings()["precision"] == "bf16"
    assert raw["fp32_repeat_max_abs_diff"] == 0.0 and raw["deterministic"]
    assert raw["bf16_max_abs_diff"] == pytest.approx(float((outs["bf16"] - outs["fp32"]).abs().max()))
    assert raw["precision_switched"] and 0 < raw["bf16_rel_max_abs_diff"] < 0.2  # bf16: close, not equal


def test_measure_pair_same_seeds_and_refuses_a_dead_switch(tiny):
    data, ev, models = tiny
    ctx = RunContext(seed=0, extra={"t2m_evaluator": ev})
    out = B.measure_pair(models, data, PCFG, ctx, seed=0)
    fid = out["metrics"]["fid"]
    per32, per16 = fid["per_repetition"]["fp32"], fid["per_repetition"]["bf16"]
    assert fid["fp32"] == pytest.approx(statistics.fmean(per32)) and fid["bf16"] == pytest.approx(statistics.fmean(per16))
    assert fid["diff"] == pytest.approx(fid["bf16"] - fid["fp32"])
    assert fid["fp32_std"] == pytest.approx(statistics.stdev(per32))
    assert fid["abs_diff_over_fp32_std"] == pytest.approx(abs(fid["diff"]) / statistics.stdev(per32))
    assert set(B.TABLE_METRICS) <= set(out["metrics"])
    assert out["sampler"]["fp32"]["precision"] == "fp32" and out["sampler"]["bf16"]["precision"] == "bf16"
    assert out["n_samples"]["evaluated"] == 64
    # bf16 moved the generated motions, so at least one repetition's embeddings (and FID) moved
    assert per16 != per32
    # the same seed at fp32 gives the same protocol numbers again (same draws, noise and batching)
    again, _ = B.evaluate(models["fp32"], data, PCFG, ctx, seed=0)
    assert [r["fid"] for r in again.extra["per_repetition"]] == per32
    # a "bf16" model that is really the fp32 one: refused, a zero drift would be meaningless
    with pytest.raises(RuntimeError, match="no effect"):
        B.measure_pair({"fp32": models["fp32"], "bf16": models["fp32"]}, data, PCFG, ctx, seed=0)


def test_config_differences_and_inference_only_keys():
    old = {"diffusion": {"steps": 10, "precision": "fp32"}, "vae": {"latent_dim": 64}}
    new = {"diffusion": {"steps": 10, "precision": "fp32", "compile": False}, "vae": {"latent_dim": 64}}
    assert B.config_differences(old, new) == ["diffusion.compile"]
    assert set(B.config_differences(old, new)) <= set(B.INFERENCE_ONLY["mld"])
    new["vae"]["latent_dim"] = 32
    assert "vae.latent_dim" in B.config_differences(old, new)
