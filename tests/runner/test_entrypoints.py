"""reproduce.sh (argument handling and the bootstrap decisions, with a fake venv), every experiment
config composing, and README examples naming real experiments."""

from __future__ import annotations

import hashlib
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest

from evaluators.core.config import list_configs

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "reproduce.sh"


def _sh(args: list[str], **env_extra) -> subprocess.CompletedProcess:
    env = dict(os.environ, **env_extra)
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=120)


def test_scripts_are_executable_and_parse():
    for path in (SCRIPT, REPO / ".ci" / "run"):
        assert path.stat().st_mode & stat.S_IXUSR, f"{path} is not executable"
        assert subprocess.run(["bash", "-n", str(path)]).returncode == 0


@pytest.mark.parametrize("args", [[], ["mld"], ["--bogus"], ["mld", "scale=smoke"]])
def test_bad_arguments_exit_2_before_bootstrapping(args, tmp_path):
    p = _sh(args, MOTIONREPRO_VENV=str(tmp_path / "never"))
    assert p.returncode == 2
    assert not (tmp_path / "never").exists()  # no venv was created for a usage error
    assert "reproduce.sh" in p.stdout + p.stderr


def _fake_venv(tmp_path: Path, wheel_dir: Path | None) -> tuple[Path, Path]:
    """A venv whose python logs every call; ``import torch`` fails until torch is 'installed'."""
    venv, log = tmp_path / "venv", tmp_path / "calls.log"
    (venv / "bin").mkdir(parents=True)
    fl = str(wheel_dir) if wheel_dir else ""
    (venv / "bin" / "python").write_text(f"""#!/bin/bash
echo "$*" >> {log}
if [ "$1" = "-c" ]; then [ -f {venv}/torch_ok ]; exit $?; fi
if [ "$1 $2 $3" = "-m pip config" ]; then echo "{fl}"; exit 0; fi
if [ "$1 $2 $3" = "-m pip install" ]; then touch {venv}/torch_ok; exit 0; fi
exit 0
""")
    (venv / "bin" / "python").chmod(0o755)
    return venv, log


def _path_with_nvidia_smi(tmp_path: Path, works: bool) -> str:
    d = tmp_path / "bin"
    d.mkdir(exist_ok=True)
    (d / "nvidia-smi").write_text(f"#!/bin/bash\nexit {0 if works else 1}\n")
    (d / "nvidia-smi").chmod(0o755)
    return f"{d}:{os.environ['PATH']}"


LOCKED = ["-m pip install --quiet --require-hashes --no-deps -r requirements/{kind}.lock",
          "-m pip install --quiet --no-deps --no-build-isolation -e ."]


def _lock_stamp(kind: str) -> str:
    digest = hashlib.sha256((REPO / "pyproject.toml").read_bytes() + (REPO / f"requirements/{kind}.lock").read_bytes())
    return f"{kind} {digest.hexdigest()}"


def test_bootstrap_without_gpu_installs_the_cpu_lock_then_the_project(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"")
    venv, log = _fake_venv(tmp_path, wheels)
    env = {"MOTIONREPRO_VENV": str(venv), "PATH": _path_with_nvidia_smi(tmp_path, works=False), "PIP_FIND_LINKS": ""}
    assert _sh(["bootstrap"], **env).returncode == 0
    installs = [ln for ln in log.read_text().splitlines() if "pip install" in ln]
    assert installs == [c.format(kind="cpu") for c in LOCKED]  # the local +cpu wheel is found by pip's find-links
    assert (venv / ".motionrepro-stamp").read_text().strip() == _lock_stamp("cpu")
    assert (venv / ".motionrepro-lock").read_text().strip() == "cpu"
    log.write_text("")
    assert _sh(["bootstrap"], **env).returncode == 0  # stamp matches: reuse, install nothing
    assert "pip install" not in log.read_text()


def test_bootstrap_without_wheel_adds_the_cpu_index_and_with_gpu_takes_the_cuda_lock(tmp_path):
    venv, log = _fake_venv(tmp_path / "a", None)
    env = {"MOTIONREPRO_VENV": str(venv), "PATH": _path_with_nvidia_smi(tmp_path / "a", works=False),
           "PIP_FIND_LINKS": ""}
    assert _sh(["bootstrap"], **env).returncode == 0
    first = [ln for ln in log.read_text().splitlines() if "pip install" in ln][0]
    assert first == ("-m pip install --quiet --require-hashes --no-deps --extra-index-url "
                     "https://download.pytorch.org/whl/cpu -r requirements/cpu.lock")
    venv, log = _fake_venv(tmp_path / "b", None)
    env.update(MOTIONREPRO_VENV=str(venv), PATH=_path_with_nvidia_smi(tmp_path / "b", works=True))
    assert _sh(["bootstrap"], **env).returncode == 0
    assert [ln for ln in log.read_text().splitlines() if "pip install" in ln] == [c.format(kind="cuda") for c in LOCKED]
    assert (venv / ".motionrepro-stamp").read_text().strip() == _lock_stamp("cuda")


def test_unlocked_bootstrap_installs_torch_first_then_the_newest_project_deps(tmp_path):
    venv, log = _fake_venv(tmp_path, None)
    env = {"MOTIONREPRO_VENV": str(venv), "PATH": _path_with_nvidia_smi(tmp_path, works=False), "PIP_FIND_LINKS": "",
           "MOTIONREPRO_UNLOCKED": "1"}
    assert _sh(["bootstrap"], **env).returncode == 0
    installs = [ln for ln in log.read_text().splitlines() if "pip install" in ln]
    assert installs == ["-m pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu",
                        "-m pip install --quiet --upgrade -e .[dev]"]
    assert (venv / ".motionrepro-lock").read_text().strip() == "unlocked"


def test_test_fast_runs_pytest_without_the_slow_marked_tests(tmp_path):
    """``./reproduce.sh test --fast ARGS`` is ``pytest -m "not slow" ARGS``; without it, ``pytest ARGS``; both on
    one worker per core (pytest-xdist), the user's ARGS last so that they win (``-n 0``)."""
    venv, log = _fake_venv(tmp_path, None)
    env = {"MOTIONREPRO_VENV": str(venv), "PATH": _path_with_nvidia_smi(tmp_path, works=False), "PIP_FIND_LINKS": ""}
    assert _sh(["test", "--fast", "-k", "resume"], **env).returncode == 0
    assert _sh(["test", "-k", "resume"], **env).returncode == 0
    runs = [ln for ln in log.read_text().splitlines() if ln.startswith("-m pytest")]
    xdist = "-n auto --maxprocesses 8 --dist loadscope --no-loadscope-reorder"
    assert runs == [f"-m pytest {xdist} -m not slow -k resume", f"-m pytest {xdist} -k resume"]


@pytest.mark.parametrize("experiment", [e for e in list_configs("experiment")])
def test_every_experiment_composes_and_fits_its_method(experiment):
    """Each experiment's method, datasets and protocols exist and fit (capability, task), at both scales."""
    from evaluators.runner.run import compose, load_plugins, plan

    load_plugins()
    for scale in ("smoke", "paper"):
        cfg = compose([f"+experiment={experiment}", f"scale={scale}"])
        p = plan(cfg, [], check_data=False)
        assert p.datasets and p.protocols


def test_readme_commands_name_real_experiments():
    from evaluators.runner.run import experiment_name, load_plugins

    load_plugins()
    text = (REPO / "README.md").read_text()
    head = text.split("## Reproducing")[0]
    assert "./reproduce.sh demo" in head and "./reproduce.sh test" in head
    examples = re.findall(r"^\./reproduce\.sh ([a-z0-9_]+) ([a-z0-9_-]+)", text, flags=re.M)
    examples = [(m, d) for m, d in examples if m not in ("demo", "test", "lock", "bootstrap", "manifest", "score", "export")]
    assert examples
    for method, dataset in examples:
        experiment_name(method, dataset)  # raises ConfigError if the README names a missing one
