"""A method written outside the repository gets the demo, the benchmarks, ``--estimate`` and the
leaderboards for free, and nothing in the repository changes on the way.

``python -m methods new`` scaffolds a toy text-to-motion method into a temporary folder; every
later command finds it only through ``$MOTIONREPRO_PLUGINS`` and ``$MOTIONREPRO_CONFIG_PATH``,
with runs, records and caches under the same temporary folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from methods import list_methods
from methods import scaffold as S
from methods.__main__ import main as methods_cli

REPO = Path(__file__).resolve().parents[2]
TOYS = {"outsidet2m": ("MotionGenerator", "synth-t2m", "synth_t2m"),
        "outsidessl": ("RepresentationLearner", "synth-ntu", "synth_ntu")}


def _repo_state() -> tuple[str, dict[str, str]]:
    """``git status`` (untracked files included) and the sha256 of every tracked file as it is on disk."""
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=REPO, text=True,
                            capture_output=True, check=True).stdout
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    hashes = {}
    for rel in filter(None, files.decode().split("\0")):
        path = REPO / rel
        hashes[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "<absent>"
    return status, hashes


def _env(tmp: Path) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(REPO), str(tmp), os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, PYTHONPATH=path, MOTIONREPRO_PLUGINS=":".join(TOYS), MOTIONREPRO_CONFIG_PATH=str(tmp / "configs"),
                MOTIONREPRO_RUNS=str(tmp / "runs"), MOTIONREPRO_CACHE=str(tmp / "cache"), OMP_NUM_THREADS="1",
                HF_HUB_OFFLINE="1", MOTIONREPRO_FALLBACK_RECORDS=str(tmp / "fallback"))


def _run(args: list[str], env: dict[str, str], timeout: int = 300) -> subprocess.CompletedProcess:
    p = subprocess.run([sys.executable, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f"{' '.join(args)} exited {p.returncode}:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p


@pytest.mark.slow
def test_scaffolded_outside_methods_run_everywhere_without_touching_the_repo(tmp_path):
    before = _repo_state()
    env = _env(tmp_path)
    for name, (capability, _, _) in TOYS.items():
        _run(["-m", "methods", "new", name, "--capability", capability, "--dir", str(tmp_path)], env)
        assert (tmp_path / name / "method.py").is_file() and (tmp_path / "configs" / "method" / f"{name}.yaml").is_file()
        readme = (tmp_path / name / "README.md").read_text()
        assert all(h in readme for h in ("## What it implements", "## Deviations", "## How to run"))

    # the demo: train, checkpoint, protocols, records, leaderboards under runs_dir
    demo = _run(["-m", "evaluators.run", "--demo", "--only", *TOYS], env, timeout=600)
    assert f"{len(TOYS)}/{len(TOYS)} methods ok" in demo.stdout
    records = [json.loads(p.read_text()) for p in (tmp_path / "runs" / "records").glob("*.json")]
    assert {r["method"] for r in records} == set(TOYS)
    assert any(r["protocol"] == "text2motion" and "fid" in r["metrics"] for r in records)
    assert any(r["protocol"] == "linear" and "top1" in r["metrics"] for r in records)
    for name in TOYS:
        assert list((tmp_path / "runs" / "work" / name).rglob("method.pt"))

    # the smoke benchmarks parametrise over the registry: the outside methods have their rows
    bench = tmp_path / "bench" / "toy.json"
    bench.parent.mkdir()
    _run(["-m", "pytest", "benchmarks/test_methods.py", "-k", " or ".join(TOYS), "-q", "-p", "no:cacheprovider",
          f"--benchmark-json={bench}"], env, timeout=600)
    rows = [r["extra_info"] for r in json.loads(bench.read_text())["benchmarks"]]
    assert {r["method"] for r in rows} == set(TOYS)
    for name in TOYS:  # batch sizes: the sampling rows' 1 and 32, the train step's smoke config (16 / 32)
        whats = {(r["what"], r.get("batch")) for r in rows if r["method"] == name}
        assert {("sampling", 1), ("sampling", 32)} <= whats and any(w == "train step" for w, _ in whats)

    for name, (_, alias, dataset) in TOYS.items():
        est = _run(["-m", "evaluators.run", "--experiment", name, alias, "--estimate"], env)
        assert f"cost estimate: {name} on {dataset}" in est.stdout

    out = tmp_path / "lb"
    _run(["-m", "leaderboards", "--results", str(tmp_path / "runs" / "records"), "--bench", str(bench.parent),
          "--out", str(out)], env)
    speed = (out / "speed.md").read_text()
    assert all(f"| {name} " in speed for name in TOYS)

    assert _repo_state() == before, "a command wrote into the repository"


def test_scaffold_into_the_repository_writes_the_method_folder_and_configs(tmp_path, monkeypatch):
    """Without --dir: ``methods/NAME/`` (imported as ``methods.NAME``) and the repository's ``configs/``."""
    monkeypatch.setattr(S, "REPO", tmp_path)
    files = S.scaffold("intree", "RepresentationLearner")
    rel = sorted(str(p.relative_to(tmp_path)) for p in files)
    assert rel == ["configs/experiment/intree_synth-ntu.yaml", "configs/method/intree.yaml", "methods/intree/README.md",
                   "methods/intree/__init__.py", "methods/intree/method.py"]
    assert "from methods.intree.method import Intree" in (tmp_path / "methods/intree/__init__.py").read_text()
    for p in files:
        if p.suffix == ".py":
            compile(p.read_text(), str(p), "exec")
    cfg = yaml.safe_load((tmp_path / "configs/method/intree.yaml").read_text())
    assert cfg["demo_experiment"] == "intree_synth-ntu" and set(cfg["scales"]) == {"paper", "smoke"}
    exp = yaml.safe_load((tmp_path / "configs/experiment/intree_synth-ntu.yaml").read_text())
    assert exp["method"] == "intree" and exp["datasets"] == ["synth_ntu"]


@pytest.mark.parametrize("args, says", [
    (["1bad"], "method name '1bad'"),
    (["Bad-Name"], "method name 'Bad-Name'"),
    (["class"], "method name 'class'"),
    (["mld"], "already registered"),
    (["fine", "--capability", "Teleporter"], "--capability 'Teleporter'"),
])
def test_scaffold_refuses_bad_input_in_one_line_and_writes_nothing(tmp_path, capsys, args, says):
    if args == ["mld"] and "mld" not in list_methods():
        pytest.skip("mld is not registered in this checkout")
    assert methods_cli([*["new", *args], "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and says in err, err
    assert list(tmp_path.iterdir()) == []


def test_scaffold_refuses_an_existing_folder(tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "mine.py").write_text("# someone's work\n")
    assert methods_cli(["new", "taken", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["mine.py", "taken"]
