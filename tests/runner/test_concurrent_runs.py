"""Identical runs started at once into one ``runs_dir`` each finish with a lone run's records and
checkpoints: one process at a time holds a run folder, temporary names are unique, every process
has its own hydra folder, and a record name taken a moment earlier is never overwritten."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from evaluators.core.run_lock import hold_run_folder
from evaluators.core.safe_load import load_checkpoint_file
from evaluators.records import read_records

REPO = Path(__file__).resolve().parents[2]
# 420 steps: checkpoints at 200, 400 and 420, so prev.pt is the step before the last
ARGS = ["+experiment=tinyrepro_synth", "scale=smoke", "method_cfg.steps=420"]
VOLATILE = ("started", "wall_s", "git", "hardware", "environment")


def _env(cfg_dir: Path, runs: Path, **extra) -> dict:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), MOTIONREPRO_CONFIG_PATH=str(cfg_dir),
                MOTIONREPRO_PLUGINS="tests.runner.tiny_plugin", MOTIONREPRO_RUNS=str(runs), **extra)


def _start(cfg_dir: Path, runs: Path, **extra) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "evaluators.run", *ARGS], cwd=REPO, env=_env(cfg_dir, runs, **extra),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _stable(rec: dict) -> dict:
    out = {k: v for k, v in rec.items() if k not in VOLATILE}
    out["extra"] = {k: v for k, v in rec["extra"].items() if not k.endswith("wall_s")}
    # the hash of the (absolute) work-folder path, which differs between the two runs_dirs
    out["provenance"] = {**rec["provenance"], "weights": {k: v for k, v in rec["provenance"]["weights"].items()
                                                          if k != "workdir_sha256"}}
    return out


def _tensors(path: Path) -> dict:
    obj = load_checkpoint_file(path)  # the suite's own reader (RNG states need its allow-list)
    return {k: v for k, v in obj["modules"].items()} | {"step": obj["step"]}


def _workdir(runs: Path) -> Path:
    (w,) = (runs / "work" / "tinyrepro" / "tiny_synth").glob("smoke_s0_*")
    return w


@pytest.mark.slow
def test_three_identical_runs_at_once_match_a_lone_run(cfg_dir, tmp_path):
    lone = _start(cfg_dir, tmp_path / "lone")
    out, err = lone.communicate(timeout=300)
    assert lone.returncode == 0, err[-3000:]
    (ref,) = read_records(tmp_path / "lone" / "records")

    shared = tmp_path / "shared"
    procs = [_start(cfg_dir, shared) for _ in range(3)]
    results = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err[-3000:]

    recs = read_records(shared / "records")
    assert len(recs) == 3  # none lost to a name taken at the same second
    # paths inside a record name its runs_dir: compare with the runs_dir replaced
    ref_text = json.dumps(_stable(ref), sort_keys=True).replace(str(tmp_path / "lone"), "<runs>")
    for rec in recs:
        assert json.dumps(_stable(rec), sort_keys=True).replace(str(shared), "<runs>") == ref_text
    w_ref, w = _workdir(tmp_path / "lone"), _workdir(shared)
    for name in ("pretrain/last.pt", "pretrain/prev.pt"):
        a, b = _tensors(w_ref / name), _tensors(w / name)
        assert a["step"] == b["step"]
        for k in a:
            if k != "step":
                for key, t in a[k].items():
                    assert torch.equal(t, b[k][key]), (name, k, key)
    # no temporary file left behind, and one hydra folder per process
    assert not [p for p in shared.rglob("*") if ".tmp" in p.name]
    assert len(list((shared / "hydra").rglob("run.log"))) == 3


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_a_busy_run_folder_stops_in_one_line_when_asked_not_to_wait(cfg_dir, tmp_path):
    runs = tmp_path / "runs"
    first = _start(cfg_dir, runs)
    assert first.wait(timeout=300) == 0
    with hold_run_folder(_workdir(runs), wait=False):
        p = subprocess.run([sys.executable, "-m", "evaluators.run", *ARGS], cwd=REPO, capture_output=True, text=True,
                           env=_env(cfg_dir, runs, MOTIONREPRO_RUN_LOCK_WAIT="0"), timeout=300)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines()[-1].startswith("error: run folder") and "in use by" in p.stderr
