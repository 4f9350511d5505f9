"""``python -m evaluators.run`` end to end with the test-only method (subprocesses, real CLI)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from evaluators.records import read_records
from tests.runner.tiny_method import TinyRepro  # noqa: F401  (registers the test-only method in this process)

REPO = Path(__file__).resolve().parents[2]

CONFIGS = {
    "method/tinyrepro.yaml": "dim: 4\nbatch_size: 8\nsteps: 50\ndemo_experiment: tinyrepro_synth\n"
                             "scales:\n  paper: {steps: 40}\n  smoke: {steps: 12}\n",
    "dataset/tiny_synth.yaml": "name: tiny_synth\ntask: skeleton_ssl\nsource: synthetic\nsize: 64\n"
                               "scales:\n  smoke: {size: 40}\n",
    "dataset/tiny_real.yaml": "name: tiny_real\ntask: skeleton_ssl\nsource: real\nroot: null\n"
                              "env_var: TINY_REAL_ROOT\nsize: 40\nurl: https://example.org/tiny-real\n"
                              "layout: |\n  tiny_real/\n    samples/*.npy\n",
    "protocol/tiny_probe.yaml": "name: tiny_probe\nk: 1\nscales:\n  smoke: {k: 2}\n",
    "experiment/tinyrepro_synth.yaml": "# @package _global_\nmethod: tinyrepro\ndatasets: [tiny_synth]\n"
                                       "protocols: [tiny_probe]\n",
    "dataset/tiny_synth_b.yaml": "name: tiny_synth_b\ntask: skeleton_ssl\nsource: synthetic\nsize: 48\n",
    # two datasets whose per-dataset method settings differ in a key the provenance reports (ours.*)
    "experiment/tinyrepro_two.yaml": "# @package _global_\nmethod: tinyrepro\ndatasets: [tiny_synth, tiny_synth_b]\n"
                                     "protocols: [tiny_probe]\nmethod_cfg:\n  non_paper: [{batch_size: test value}]\n"
                                     "per_dataset:\n  tiny_synth: {method: {batch_size: 4}}\n"
                                     "  tiny_synth_b: {method: {batch_size: 6}}\n",
    "experiment/tinyrepro_real.yaml": "# @package _global_\nmethod: tinyrepro\ndatasets: [tiny_real]\n"
                                      "protocols: [tiny_probe]\n",
}


def runner(args: list[str], cfg_dir: Path, runs: Path, torchrun: bool = False, **env_extra):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO), MOTIONREPRO_CONFIG_PATH=str(cfg_dir),
               MOTIONREPRO_PLUGINS="tests.runner.tiny_plugin", MOTIONREPRO_RUNS=str(runs), **env_extra)
    env.pop("TINY_REAL_ROOT", None) if "TINY_REAL_ROOT" not in env_extra else None
    pre = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m"] if torchrun \
        else [sys.executable, "-m"]
    return subprocess.run([*pre, "evaluators.runner.run", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=180)


@pytest.fixture(scope="module")
def single_run(cfg_dir, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    runs = tmp_path_factory.mktemp("single")
    p = runner(["+experiment=tinyrepro_synth", "scale=smoke", "method_cfg.steps=7"], cfg_dir, runs)
    assert p.returncode == 0, p.stderr[-3000:]
    return runs, p


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_experiment_runs_end_to_end(single_run):
    runs, p = single_run
    (rec,) = read_records(runs / "records")  # validated on read
    assert (rec["method"], rec["dataset"], rec["protocol"], rec["data"], rec["scale"]) == \
        ("tinyrepro", "tiny_synth", "tiny_probe", "synthetic", "smoke")
    assert rec["n_samples"] == {"expected": 20, "evaluated": 20}  # smoke size=40 -> 20 test samples
    assert rec["config"]["method"]["steps"] == 7  # the user override beats the smoke block (12)
    assert rec["config"]["protocol"]["k"] == 2 and rec["extra"]["k"] == 2
    assert rec["schema"] == 2 and rec["provenance"]["weights"]["id"] == "trained-here"  # default entry
    assert "torch" in rec["environment"]["packages"]
    (ckpt,) = (runs / "work" / "tinyrepro" / "tiny_synth").glob("smoke_s0_*/method.pt")
    assert rec["extra"]["checkpoint"] == str(ckpt)
    assert torch.load(ckpt.parent / "pretrain" / "last.pt", weights_only=False)["step"] == 7
    assert "tinyrepro" in p.stdout and "top1" in p.stdout  # the summary table
    assert list((runs / "leaderboards").glob("*.md"))


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_each_record_provenance_describes_its_own_dataset_method_config(cfg_dir, tmp_path):
    """A record's provenance comes from the method config that record stores (``config.method``),
    not from another dataset's: per_dataset gives tiny_synth batch_size 4 and tiny_synth_b 6."""
    p = runner(["+experiment=tinyrepro_two", "scale=smoke", "method_cfg.steps=3", "leaderboards=false"], cfg_dir,
               tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    recs = {r["dataset"]: r for r in read_records(tmp_path / "records")}
    assert sorted(recs) == ["tiny_synth", "tiny_synth_b"]
    for name, want in (("tiny_synth", 4), ("tiny_synth_b", 6)):
        rec = recs[name]
        assert rec["config"]["method"]["batch_size"] == want
        assert rec["provenance"]["ours.batch_size"]["value"] == want, (name, rec["provenance"]["ours.batch_size"])


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_checkpoint_is_evaluated_without_training(single_run, cfg_dir, tmp_path):
    runs, _ = single_run
    (rec,) = read_records(runs / "records")
    ckpt = rec["extra"]["checkpoint"]
    p = runner(["+experiment=tinyrepro_synth", "scale=smoke", f"checkpoint={ckpt}", "leaderboards=false"], cfg_dir,
               tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    (rec2,) = read_records(tmp_path / "records")
    assert rec2["metrics"]["top1"]["value"] == rec["metrics"]["top1"]["value"]
    w = rec2["provenance"]["weights"]
    assert w["id"] == "official-converted" and w["sha256"] == hashlib.sha256(Path(ckpt).read_bytes()).hexdigest()
    assert not list((tmp_path / "work").glob("*/*/*/pretrain"))  # nothing trained


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_rerunning_the_same_command_resumes_its_finished_training(single_run, cfg_dir, tmp_path):
    runs, _ = single_run
    (first,) = read_records(runs / "records")
    p = runner(["+experiment=tinyrepro_synth", "scale=smoke", "method_cfg.steps=7", "leaderboards=false",
                f"records_dir={tmp_path}"], cfg_dir, runs)
    assert p.returncode == 0, p.stderr[-3000:]
    out = p.stdout + p.stderr
    assert "resumed from" in out and "at step 7" in out
    (again,) = read_records(tmp_path)
    assert again["metrics"] == first["metrics"]


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_missing_real_dataset_stops_at_once_with_layout(cfg_dir, tmp_path):
    p = runner(["+experiment=tinyrepro_real"], cfg_dir, tmp_path / "runs")
    assert p.returncode == 2
    for needle in ("tiny_real/", "samples/*.npy", "TINY_REAL_ROOT", "dataset.root=", "https://example.org/tiny-real"):
        assert needle in p.stderr, p.stderr
    assert "Traceback" not in p.stderr
    assert not (tmp_path / "runs" / "work").exists()  # nothing was built or trained
    root = tmp_path / "tiny_data"
    root.mkdir()
    ok = runner(["+experiment=tinyrepro_real", "scale=smoke", f"dataset.root={root}"], cfg_dir, tmp_path / "runs")
    assert ok.returncode == 0, ok.stderr[-3000:]
    (rec,) = read_records(tmp_path / "runs" / "records")
    assert rec["data"] == "real" and rec["config"]["dataset"]["root"] == str(root)


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_unknown_method_or_dataset_is_one_line_exit_2(cfg_dir, tmp_path):
    p = runner(["+experiment=tinyrepo_synth"], cfg_dir, tmp_path)
    assert p.returncode == 2
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "did you mean tinyrepro" in lines[0] and "available:" in lines[0], p.stderr


@pytest.mark.parametrize("experiment, needle", [("tinyrepo_synth", "unknown method 'tinyrepo'; did you mean tinyrepro"),
                                                ("tinyrepro_synht", "did you mean synth? available: real, synth")])
def test_unknown_name_messages(cfg_dir, monkeypatch, experiment, needle):
    from evaluators.runner.run import ConfigError, check_experiment_override

    monkeypatch.setenv("MOTIONREPRO_CONFIG_PATH", str(cfg_dir))
    with pytest.raises(ConfigError) as e:
        check_experiment_override([f"+experiment={experiment}"])
    assert needle in str(e.value) and "\n" not in str(e.value)


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_cfg_job_prints_composed_and_resolved_config(cfg_dir, tmp_path):
    p = runner(["+experiment=tinyrepro_synth", "scale=smoke", "--cfg", "job"], cfg_dir, tmp_path)
    assert p.returncode == 0, p.stderr
    assert "method: tinyrepro" in p.stdout and "scale: smoke" in p.stdout
    assert "steps: 12" in p.stdout and "size: 40" in p.stdout  # group configs resolved at smoke scale
    assert not (tmp_path / "records").exists()


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_cfg_job_prints_each_datasets_method_config(cfg_dir, tmp_path):
    p = runner(["+experiment=tinyrepro_two", "scale=smoke", "--cfg", "job"], cfg_dir, tmp_path)
    assert p.returncode == 0, p.stderr
    resolved = p.stdout.split("# resolved at scale=smoke")[1]
    per_ds = resolved.split("per_dataset:")[1]
    assert per_ds.index("tiny_synth:") < per_ds.index("batch_size: 4") < per_ds.index("tiny_synth_b:") \
        < per_ds.index("batch_size: 6")


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_list_and_demo_only(cfg_dir, tmp_path):
    p = runner(["--list"], cfg_dir, tmp_path)
    assert p.returncode == 0 and "tiny_probe" in p.stdout and "tiny_synth" in p.stdout
    assert "tinyrepro" not in p.stdout.split("Datasets")[0]  # test-only method hidden
    d = runner(["--demo", "--only", "tinyrepro"], cfg_dir, tmp_path / "runs")
    assert d.returncode == 0, d.stderr[-3000:]
    assert "1/1 methods ok" in d.stdout and "tinyrepro_synth" in d.stdout
    (rec,) = read_records(tmp_path / "runs" / "records")
    assert rec["scale"] == "smoke"


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_demo_runs_every_experiment_the_method_config_names(cfg_dir, tmp_path):
    """``demo_experiment`` may list several experiments (a generator with a text and an action chain):
    the demo runs each in order; a list holding something else than names stops before any run."""
    d = tmp_path / "configs"
    shutil.copytree(cfg_dir, d)
    method = d / "method" / "tinyrepro.yaml"
    method.write_text(CONFIGS["method/tinyrepro.yaml"].replace("demo_experiment: tinyrepro_synth",
                                                               "demo_experiment: [tinyrepro_synth, tinyrepro_two]"))
    p = runner(["--demo", "--only", "tinyrepro"], d, tmp_path / "runs")
    assert p.returncode == 0, p.stderr[-3000:]
    assert "1/1 methods ok" in p.stdout and "tinyrepro_synth" in p.stdout and "tinyrepro_two" in p.stdout
    # tinyrepro_synth trains on tiny_synth, tinyrepro_two on tiny_synth and tiny_synth_b: one record each
    assert sorted(r["dataset"] for r in read_records(tmp_path / "runs" / "records")) == \
        ["tiny_synth", "tiny_synth", "tiny_synth_b"]
    method.write_text(CONFIGS["method/tinyrepro.yaml"].replace("demo_experiment: tinyrepro_synth",
                                                               "demo_experiment: [tinyrepro_synth, 3]"))
    bad = runner(["--demo", "--only", "tinyrepro"], d, tmp_path / "runs_bad")
    assert bad.returncode == 2 and "tinyrepro.yaml: demo_experiment must be" in bad.stderr, bad.stderr[-2000:]
    assert not (tmp_path / "runs_bad" / "records").exists()


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_multirun_sweep_writes_one_record_per_seed(cfg_dir, tmp_path):
    p = runner(["+experiment=tinyrepro_synth", "scale=smoke", "-m", "seed=0,1", "leaderboards=false"], cfg_dir, tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    recs = read_records(tmp_path / "records")
    assert sorted(r["seed"] for r in recs) == [0, 1]
    assert len(list((tmp_path / "multirun").glob("*/*/[01]"))) == 2


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_torchrun_runner_writes_one_record_counting_each_sample_once(single_run, cfg_dir, tmp_path):
    p = runner(["+experiment=tinyrepro_synth", "scale=smoke", "method_cfg.steps=7", "leaderboards=false"], cfg_dir,
               tmp_path, torchrun=True)
    assert p.returncode == 0, p.stderr[-3000:]
    (rec,) = read_records(tmp_path / "records")
    assert rec["extra"]["world_size"] == 2
    assert rec["n_samples"] == {"expected": 20, "evaluated": 20}
    (ref,) = read_records(single_run[0] / "records")
    assert json.dumps(ref["metrics"]) == json.dumps(rec["metrics"])
