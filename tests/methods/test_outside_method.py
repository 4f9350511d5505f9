"""A method written outside the repository gets the demo, the benchmarks, ``--estimate`` and the
leaderboards for free, and nothing in the repository changes on the way.

``python -m methods new`` scaffolds a toy text-to-motion method into a temporary folder; every
later command finds it only through ``$MOTIONREPRO_PLUGINS`` and ``$MOTIONREPRO_CONFIG_PATH``,
with runs, records and caches under the same temporary folder. The commands run in a private copy
of the checkout (its tracked and untracked, not ignored, files, committed into a fresh git
repository), so the check that nothing changed sees only what they wrote, not what tests running
beside this one (``./reproduce.sh test`` runs one pytest worker per core) write meanwhile.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from methods import list_methods
from methods import scaffold as S
from methods.__main__ import main as methods_cli
from tests._model_cache import seed_cache

REPO = Path(__file__).resolve().parents[2]
TOYS = {"outsidet2m": ("MotionGenerator", "synth-t2m", "synth_t2m"),
        "outsidessl": ("RepresentationLearner", "synth-ntu", "synth_ntu")}


def _git(repo: Path, *args: str) -> bytes:
    return subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@localhost", *args], cwd=repo,
                          capture_output=True, check=True).stdout


def _checkout_copy(dst: Path) -> Path:
    """The checkout's tracked and untracked-but-not-ignored files (the code as it is on disk), copied
    into ``dst`` and committed there, so ``git status`` in the copy starts clean."""
    files = _git(REPO, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    for rel in filter(None, files.decode().split("\0")):
        src = REPO / rel
        if src.is_file() and not src.is_symlink():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)
    _git(dst, "init", "-q")
    _git(dst, "add", "-A")
    _git(dst, "commit", "-q", "-m", "the checkout as the test found it")
    return dst


def _repo_state(repo: Path) -> tuple[str, dict[str, str]]:
    """``git status`` (untracked files included) and the sha256 of every tracked file as it is on disk."""
    status = _git(repo, "status", "--porcelain", "--untracked-files=all").decode()
    hashes = {}
    for rel in filter(None, _git(repo, "ls-files", "-z").decode().split("\0")):
        path = repo / rel
        hashes[rel] = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "<absent>"
    return status, hashes


def _env(tmp: Path, repo: Path) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(repo), str(tmp), os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, PYTHONPATH=path, MOTIONREPRO_PLUGINS=":".join(TOYS), MOTIONREPRO_CONFIG_PATH=str(tmp / "configs"),
                MOTIONREPRO_RUNS=str(tmp / "runs"), MOTIONREPRO_CACHE=str(tmp / "cache"), OMP_NUM_THREADS="1",
                HF_HUB_OFFLINE="1", MOTIONREPRO_FALLBACK_RECORDS=str(tmp / "fallback"))


def _run(args: list[str], env: dict[str, str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    p = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f"{' '.join(args)} exited {p.returncode}:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    return p


@pytest.mark.slow
def test_scaffolded_outside_methods_run_everywhere_without_touching_the_repo(tmp_path, smoke_synth_ntu):
    repo = _checkout_copy(tmp_path / "checkout")
    tmp_path = tmp_path / "outside"
    tmp_path.mkdir()
    # the private cache starts with the session's finished entries (linked, not shared), the smoke
    # synth_ntu set among them: the outsidessl demo reads it instead of generating it again
    seed_cache(tmp_path / "cache", smoke_synth_ntu)
    before = _repo_state(repo)
    env = _env(tmp_path, repo)

    def run(args: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
        return _run(args, env, repo, timeout)

    for name, (capability, _, _) in TOYS.items():
        run(["-m", "methods", "new", name, "--capability", capability, "--dir", str(tmp_path)])
        assert (tmp_path / name / "method.py").is_file() and (tmp_path / "configs" / "method" / f"{name}.yaml").is_file()
        readme = (tmp_path / name / "README.md").read_text()
        assert all(h in readme for h in ("## What it implements", "## Deviations", "## How to run"))

    # the demo: train, checkpoint, protocols, records, leaderboards under runs_dir
    demo = run(["-m", "evaluators.run", "--demo", "--only", *TOYS], timeout=600)
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
    run(["-m", "pytest", "benchmarks/test_methods.py", "-k", " or ".join(TOYS), "-q", "-p", "no:cacheprovider",
         f"--benchmark-json={bench}"], timeout=600)
    rows = [r["extra_info"] for r in json.loads(bench.read_text())["benchmarks"]]
    assert {r["method"] for r in rows} == set(TOYS)
    for name in TOYS:  # batch sizes: the sampling rows' 1 and 32, the train step's smoke config (16 / 32)
        whats = {(r["what"], r.get("batch")) for r in rows if r["method"] == name}
        assert {("sampling", 1), ("sampling", 32)} <= whats and any(w == "train step" for w, _ in whats)

    for name, (_, alias, dataset) in TOYS.items():
        est = run(["-m", "evaluators.run", "--experiment", name, alias, "--estimate"])
        assert f"cost estimate: {name} on {dataset}" in est.stdout

    out = tmp_path / "lb"
    run(["-m", "leaderboards", "--results", str(tmp_path / "runs" / "records"), "--bench", str(bench.parent),
         "--out", str(out)])
    speed = (out / "speed.md").read_text()
    assert all(f"| {name} " in speed for name in TOYS)

    assert _repo_state(repo) == before, "a command wrote into the repository"


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
