"""The suite's model cache (``tests/_model_cache.py``) is keyed by the code: an edit anywhere under
evaluators/, methods/ or configs/ gives a new folder, so no test loads what older code trained."""

from __future__ import annotations

import os
import time

from evaluators.datasets.cache import build_staged, cache_problem
from tests._model_cache import STALE_AFTER_S, code_version, model_cache_dir, prune, seed_cache, using_cache


def _tree(root):
    for rel, text in {"evaluators/a.py": "x = 1\n", "methods/m/b.py": "y = 2\n", "configs/c.yaml": "z: 3\n"}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)


def test_any_code_or_config_edit_changes_the_version(tmp_path):
    _tree(tmp_path)
    base = code_version(tmp_path)
    assert code_version(tmp_path) == base  # deterministic
    (tmp_path / "evaluators" / "__pycache__").mkdir()
    (tmp_path / "evaluators" / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "t.py").write_text("pass\n")
    assert code_version(tmp_path) == base  # bytecode caches and other folders are not code
    versions = {base}
    for rel, text in [("methods/m/b.py", "y = 3\n"), ("configs/c.yaml", "z: 4\n"), ("evaluators/new.py", "")]:
        (tmp_path / rel).write_text(text)
        versions.add(code_version(tmp_path))
    (tmp_path / "evaluators" / "new.py").rename(tmp_path / "evaluators" / "renamed.py")
    versions.add(code_version(tmp_path))
    assert len(versions) == 5


def test_prune_removes_only_other_versions_unused_for_a_week(tmp_path):
    keep, fresh, old = (tmp_path / f"tests-{n}" for n in ("keep", "fresh", "old"))
    for d in (keep, fresh, old):
        d.mkdir()
    week_ago = time.time() - STALE_AFTER_S - 60
    os.utime(old, (week_ago, week_ago))
    os.utime(keep, (week_ago, week_ago))  # the current one is kept whatever its age
    (tmp_path / "evaluators").mkdir()
    prune(keep)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evaluators", "tests-fresh", "tests-keep"]


def test_using_cache_restores_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("MOTIONREPRO_CACHE", "/before")
    with using_cache(tmp_path):
        assert os.environ["MOTIONREPRO_CACHE"] == str(tmp_path)
    assert os.environ["MOTIONREPRO_CACHE"] == "/before"
    monkeypatch.delenv("MOTIONREPRO_CACHE")
    with using_cache(tmp_path):
        pass
    assert "MOTIONREPRO_CACHE" not in os.environ


def test_a_pytest_started_inside_the_session_shares_its_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("MOTIONREPRO_CACHE", str(tmp_path))
    outer = model_cache_dir()
    monkeypatch.setenv("MOTIONREPRO_CACHE", str(outer))  # what a subprocess of the session inherits
    assert model_cache_dir() == outer


def test_seed_cache_links_finished_entries_and_skips_locks_and_builds(tmp_path):
    src, dest = tmp_path / "model", tmp_path / "private"
    build_staged(src / "synth" / "abc", lambda stage: (stage / "x.npy").write_bytes(b"data"))
    (src / "evaluators").mkdir()
    (src / "evaluators" / "k.pt").write_bytes(b"weights")
    (src / "evaluators" / "k.pt.lock").write_bytes(b"")
    (src / "evaluators" / ".k2.pt.123-ab.tmp.pt").write_bytes(b"half")  # a save under way
    (src / "synth" / ".def.tmp-xyz").mkdir()  # a dataset build under way
    (src / "synth" / ".def.tmp-xyz" / "y.npy").write_bytes(b"half")
    seed_cache(dest, src)
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert files == ["evaluators/k.pt", "synth/abc/.cache-manifest.json", "synth/abc/x.npy"]
    assert cache_problem(dest / "synth" / "abc") is None  # the manifest still matches
    assert (dest / "evaluators" / "k.pt").read_bytes() == b"weights"
