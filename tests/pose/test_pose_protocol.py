"""The pose protocol end to end with a test-only oracle estimator: records, AP, PCKh, overlays."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evaluators.datasets import load_dataset
from evaluators.protocols import RunContext, get_protocol
from evaluators.records import make_record
from tests.conftest import need_shared
from tests.pose.ddp_pose_eval import evaluate
from tests.pose.oracle import Oracle


def _run(name, data, cfg, tmp_path):
    oracle = Oracle(data.instances(data.eval_split), data.skeleton, noise_per_step=6.0)
    return get_protocol(name).fn(oracle, data, cfg, RunContext(workdir=tmp_path))


def test_coco_protocol_on_real_samples_oracle_is_perfect_on_gt_boxes(tmp_path):
    root = need_shared("coco")
    data = load_dataset({"name": "coco_kpt", "root": str(root), "ann_files": {"val": "test_coco.json"},
                         "image_dirs": {"val": "."}, "det_file": "test_coco_det_AP_H_56.json"})
    res = {r.variant: r for r in _run("coco_ap", data, {"overlays": 2, "real_samples": None}, tmp_path)}
    assert set(res) == {"det_boxes", "gt_boxes"}
    assert res["gt_boxes"].metrics["ap"] == pytest.approx(100.0) and res["gt_boxes"].metrics["pck_0.2"] == 100.0
    assert 0 < res["det_boxes"].metrics["ap"] <= 100.0
    assert res["det_boxes"].n_samples["expected"] == len(data.instances("det"))
    assert len(res["gt_boxes"].extra["overlays"]) == 2 and all(p.endswith(".png") for p in res["gt_boxes"].extra["overlays"])
    for r in res.values():  # every result becomes a valid run record
        rec = make_record(method="oracle", dataset="coco_kpt", protocol="coco_ap", metrics=r.metrics, data="real",
                          scale="smoke", seed=0, config={}, split=r.split, variant=r.variant, n_samples=r.n_samples)
        assert rec["metrics"]["ap"]["higher_is_better"] is True


def test_step_sweep_and_mpii_pckh_on_synthetic(tmp_path, monkeypatch):
    monkeypatch.setenv("MOTIONREPRO_CACHE", str(tmp_path / "cache"))
    cfg = {"seed": 2, "n_train": 2, "n_val": 6, "image_size": [128, 128]}
    coco = load_dataset({"name": "synth_coco", **cfg})
    res = _run("coco_ap", coco, {"boxes": ["gt"], "steps_sweep": [1, 5], "overlays": 0}, tmp_path)
    by = {r.variant: r.metrics for r in res}
    assert by["gt_boxes"]["ap"] == pytest.approx(100.0)
    # the oracle's error shrinks with more steps: the sweep must see it
    assert by["steps=5"]["ap"] > by["steps=1"]["ap"] and by["steps=1"]["infer_s_per_instance"] > 0
    mpii = load_dataset({"name": "synth_mpii", **cfg})
    (r,) = _run("mpii_pckh", mpii, {"overlays": 1}, tmp_path)
    assert r.metrics["pckh_0.5"] == pytest.approx(100.0) and r.metrics["pckh_0.1"] == pytest.approx(100.0)
    assert r.metrics["pck_0.2"] == pytest.approx(100.0) and len(r.extra["pckh_0.5_per_joint"]) == 16


def test_mpii_real_samples_without_head_boxes_report_pck_and_overlays(tmp_path):
    root = need_shared("mpii")
    data = load_dataset({"name": "mpii", "root": str(root), "ann_files": {"val": "test_mpii.json"}, "image_dir": "."})
    (r,) = _run("mpii_pckh", data, {"overlays": 5, "real_samples": None}, tmp_path)
    assert "pckh_0.5" not in r.metrics  # no mpii_gt_val.mat -> no head sizes -> no PCKh
    assert r.metrics["pck_0.2"] == pytest.approx(100.0)
    assert len(r.extra["overlays"]) == 5


@pytest.mark.slow
def test_pose_protocol_under_torchrun_matches_one_process(tmp_path, monkeypatch):
    """Sharded evaluation over 2 gloo ranks gives the same AP/PCK as one process (each instance once)."""
    monkeypatch.setenv("MOTIONREPRO_CACHE", str(tmp_path / "cache"))
    single = evaluate(tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    script = Path(__file__).with_name("ddp_pose_eval.py")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
           "--out", str(tmp_path / "ddp.json")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = json.loads((tmp_path / "ddp.json").read_text())
    assert ddp["world_size"] == 2
    for a, b in zip(single, ddp["results"]):
        assert a["variant"] == b["variant"] and a["n_samples"] == b["n_samples"]
        for k in ("ap", "ap50", "ar"):
            assert a["metrics"][k] == pytest.approx(b["metrics"][k])
