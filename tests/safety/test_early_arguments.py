"""Arguments that used to pass validation and fail deep inside: each is refused in one line, early.

Planning rows run :func:`evaluators.runner.plan.build_plan` (what the CLI runs before hydra);
the CLI row checks exit 2, one line, and that hydra created nothing. The others check the full
disk message of the atomic writer, ``python -m methods summary`` going through the runner's
validator, a broken published record skipped by the run's finish step, and a checkpoint of the
wrong size refused before the data is built.
"""

from __future__ import annotations

import errno
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from evaluators.core import io as core_io
from evaluators.core import validate
from evaluators.core.io import DiskFull, atomic_torch_save
from evaluators.core.validate import ConfigError

REPO = Path(__file__).resolve().parents[2]


def _plan(*extra: str, check_data: bool = True):
    from evaluators.runner.compose import upsert
    from evaluators.runner.run import compose, load_plugins, plan

    load_plugins()
    ov = [upsert(o) for o in ("+experiment=mld_synth-t2m", "scale=smoke", *extra)]
    return plan(compose(ov), ov, check_data=check_data)


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("MOTIONREPRO_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("MOTIONREPRO_CACHE", str(tmp_path / "cache"))
    return tmp_path


PLAN_ROWS = {
    "seed-negative": (["seed=-1"], "seed must be in 0..4294967295"),
    "seed-20-digits": (["seed=12345678901234567890"], "seed must be in 0..4294967295"),
    "steps-huge": (["method_cfg.vae.steps=99999999999999"], "vae.steps must be an integer in 1..1000000000"),
    "latent-dim-string": (["method_cfg.vae.latent_dim=abc"], "vae.latent_dim=abc"),
    "num-layers-negative": (["method_cfg.vae.num_layers=-3"], "vae.num_layers must be an integer in 1.."),
    "dropout-bool": (["method_cfg.vae.dropout=true"], "vae.dropout"),
}


@pytest.mark.parametrize("name", sorted(PLAN_ROWS))
def test_out_of_range_values_are_refused_when_planned(name, runs):
    extra, needle = PLAN_ROWS[name]
    with pytest.raises(ConfigError) as ei:
        _plan(*extra)
    assert needle in str(ei.value), str(ei.value)


def test_runs_dir_that_is_a_file_or_a_device(runs):
    afile = runs / "afile"
    afile.write_text("x")
    for target, needle in ((afile, "is a regular file"), (afile / "sub", "is a regular file"),
                           (Path("/dev/null"), "not a folder")):
        with pytest.raises(ConfigError) as ei:
            _plan(f"runs_dir={target}")
        assert f"runs_dir={target}" in str(ei.value) and needle in str(ei.value), str(ei.value)
    assert afile.read_text() == "x"


def test_full_disk_is_named_when_planned(runs, monkeypatch):
    real = validate.shutil.disk_usage
    monkeypatch.setattr(validate.shutil, "disk_usage", lambda p: real(p)._replace(free=4096))
    with pytest.raises(ConfigError, match=r"runs_dir=.*no space left on the disk holding .* \(4096 bytes free\)"):
        _plan()


def test_cache_variable_naming_a_file(runs, monkeypatch):
    (runs / "cachefile").write_text("")
    monkeypatch.setenv("MOTIONREPRO_CACHE", str(runs / "cachefile"))
    with pytest.raises(ConfigError, match=r"MOTIONREPRO_CACHE=.*cachefile: is not a folder"):
        _plan()


def test_valid_plan_still_plans(runs):
    p = _plan("seed=4294967295")
    assert p.seed == 4294967295 and p.runs_dir == runs / "runs"
    assert not (runs / "runs").exists(), "planning creates nothing"


def test_cli_runs_dir_file_exits_2_before_hydra(tmp_path):
    import os

    (tmp_path / "afile").write_text("x")
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", MOTIONREPRO_CACHE=str(tmp_path / "cache"))
    p = subprocess.run([sys.executable, "-m", "evaluators.runner.run", "+experiment=mld_synth-t2m", "scale=smoke",
                        f"runs_dir={tmp_path / 'afile'}"], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=300)
    err = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert p.returncode == 2 and len(err) == 1 and "is a regular file" in err[0], p.stderr[-2000:]
    assert "Traceback" not in p.stderr
    assert sorted(x.name for x in tmp_path.iterdir()) == ["afile"], "hydra or the run created something"


def test_disk_full_names_the_file_and_keeps_the_previous_one(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    atomic_torch_save({"step": 1}, path)
    before = path.read_bytes()

    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(core_io.os, "fsync", no_space)
    with pytest.raises(DiskFull) as ei:
        atomic_torch_save({"step": 2}, path)
    assert str(ei.value) == (f"no space left on the disk holding {tmp_path} while writing last.pt "
                             "(the previous last.pt is kept)")
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["last.pt"]


@pytest.mark.parametrize("override, needle", [("vae.latent_dim=abc", "vae.latent_dim=abc"),
                                              ("vae.num_layers=-3", "vae.num_layers"),
                                              ("vae.stepz=3", "unknown key vae.stepz")])
def test_methods_summary_uses_the_runner_validator(override, needle, capsys):
    from methods.__main__ import main

    assert main(["summary", "mld", override, "--scale", "smoke"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and needle in err, err


def test_finish_skips_a_broken_published_record_with_a_warning(tmp_path, monkeypatch, caplog):
    from evaluators.runner import finish as finish_mod

    fake_repo = tmp_path / "repo"
    (fake_repo / "leaderboards" / "results").mkdir(parents=True)
    bad = fake_repo / "leaderboards" / "results" / "bogus.json"
    bad.write_text(json.dumps({"schema_version": 999, "method": "mld"}))
    monkeypatch.setattr(finish_mod, "REPO", fake_repo)
    runs = tmp_path / "runs"
    (runs / "records").mkdir(parents=True)
    with caplog.at_level("WARNING"):
        out = finish_mod.finish([], runs, regenerate=True)
    assert "records:" in out
    assert any("bogus.json" in r.getMessage() for r in caplog.records)


def test_checkpoint_of_another_size_is_refused_before_the_data(runs, monkeypatch):
    from evaluators.runner import execute

    plan = _plan("method_cfg.vae.latent_dim=32", check_data=False)
    ds = plan.datasets[0]
    other = dict(ds.method_cfg)
    other["vae"] = {**other["vae"], "latent_dim": 16}
    ckpt = runs / "small.pt"
    torch.save(plan.method_cls(other, device="cpu", seed=0, workdir=None).state_dict(), ckpt)
    plan = _plan("method_cfg.vae.latent_dim=32", f"checkpoint={ckpt}")

    def no_data(cfg):
        raise AssertionError("the data was built before the checkpoint was checked")

    monkeypatch.setattr(execute, "load_dataset", no_data)
    with pytest.raises(ConfigError) as ei:
        execute.run_dataset(plan, plan.datasets[0])
    assert f"checkpoint={ckpt}" in str(ei.value) and "\n" not in str(ei.value), str(ei.value)
