"""``./reproduce.sh METHOD DATASET --estimate``: the stage arithmetic against closed
forms, the benchmark-JSON source, and a table for every paper experiment."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from evaluators.runner.estimate import SPLIT_SIZES, Costs, bench_costs, plan_stages, render

ROOT = Path(__file__).resolve().parents[2]
COSTS = Costs(train_s=0.01, infer_s=0.002, peak_mib=100.0, source="stub")


def test_stage_arithmetic_is_the_closed_form():
    mcfg = {"vae": {"batch_size": 128, "epochs": 6}, "denoiser": {"batch_size": 64, "epochs": 10},
            "diffusion": {"steps": 50}}  # no batch_size: not a training stage
    pcfgs = {"text2motion": {"batch_size": 32, "repetitions": 20, "evaluator": {"checkpoint": "x.tar"}}}
    st = {s.stage: s for s in plan_stages("mld", mcfg, pcfgs, "humanml3d", COSTS)}
    n_train, n_test = SPLIT_SIZES["humanml3d"]["train"], SPLIT_SIZES["humanml3d"]["test"]
    assert st["train: vae"].steps == 6 * math.ceil(n_train / 128)
    assert st["train: denoiser"].steps == 10 * math.ceil(n_train / 64)
    assert st["train: denoiser"].source == "stub" and st["train: vae"].source == "~main"  # denoiser is the main stage
    assert st["train: denoiser"].wall_s == pytest.approx(st["train: denoiser"].steps * 64 * 0.01)
    gen = st["text2motion: generate + evaluate (x20 repetitions)"]
    assert gen.steps == 20 * math.ceil(3 * n_test / 32)
    assert gen.wall_s == pytest.approx(gen.steps * 32 * 0.002)
    assert not any("retrain" in s for s in st)  # official evaluator given: nothing to retrain


def test_semi_counts_labelled_subset_repeats_and_augmentation():
    pcfgs = {"semi1": {"label_ratio": 0.01, "repeats": 5, "epochs": 100, "batch_size": 48, "augment": True,
                       "aug_ratio": 2.0}}
    (s,) = [s for s in plan_stages("macdiff", {}, pcfgs, "ntu60_xsub", COSTS) if s.stage.startswith("semi1")]
    labelled = int(SPLIT_SIZES["ntu60_xsub"]["train"] * 0.01)
    assert s.steps == 5 * 2 * 100 * math.ceil(labelled * 3 / 48)


def test_unknown_dataset_is_reported_not_guessed():
    (s,) = plan_stages("mld", {"denoiser": {"batch_size": 2, "epochs": 1}}, {}, "my_new_set", COSTS)
    assert s.wall_s is None and "unknown" in s.note and "SPLIT_SIZES" in s.note


def test_costs_from_benchmark_json(tmp_path):
    bench = {"machine_info": {"gpu": "H200"}, "benchmarks": [
        {"name": "test_train_step[mld]", "stats": {"mean": 0.5}, "extra_info": {"method": "mld", "samples_per_s": 200.0}},
        {"name": "test_sampling_batch32[mld-default]", "stats": {"mean": 0.64},
         "extra_info": {"method": "mld", "batch": 32, "steps": 50, "peak_allocated_mib": 900.0}},
        {"name": "test_sampling_batch32[momask-default]", "stats": {"mean": 9.0}, "extra_info": {"method": "momask"}}]}
    path = tmp_path / "gpu-paper.json"
    path.write_text(json.dumps(bench))
    c = bench_costs("mld", path)
    assert c.train_s == pytest.approx(1 / 200) and c.infer_s == pytest.approx(0.64 / 32)
    assert c.peak_mib == 900.0 and "H200" in c.source
    text = render(plan_stages("mld", {"denoiser": {"batch_size": 64, "epochs": 1}}, {}, "humanml3d", c), c,
                  "cuda:0", "paper", "mld")
    assert "GPU-h" in text and "GPU-hours" in text
    with pytest.raises(ValueError, match="cannot read"):
        bench_costs("mld", tmp_path / "missing.json")


def _paper_experiments() -> list[str]:
    return sorted(p.stem for p in (ROOT / "configs" / "experiment").glob("*.yaml") if "synth" not in p.stem)


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_every_paper_experiment_gets_a_row_per_stage():
    from evaluators.runner.run import compose, load_plugins, plan

    load_plugins()
    for exp in _paper_experiments():
        cfg = compose([f"+experiment={exp}"])
        p = plan(cfg, [f"+experiment={exp}"], check_data=False)
        for d in p.datasets:
            stages = plan_stages(str(cfg.method), dict(p.method_cfg), p.protocol_cfgs, d.name, COSTS)
            assert any(s.stage.startswith("train") and s.wall_s for s in stages), (exp, d["name"])
            assert all(s.wall_s is not None or "not timed" in s.note for s in stages), (exp, [vars(s) for s in stages])
            assert len(stages) >= 1 + len(p.protocol_cfgs), exp


@pytest.mark.slow
def test_cli_prints_the_table_with_a_probe():
    res = subprocess.run([sys.executable, "-m", "evaluators.runner.run", "--experiment", "mld", "humanml3d", "scale=smoke",
                          "--estimate"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "| humanml3d | train: denoiser" in res.stdout and "probe (batch 4, cpu)" in res.stdout
    assert "torchrun --nproc_per_node=N" in res.stdout
