"""The lock files: they pin every requirement of pyproject.toml, and the check
that CI runs reports a disagreement instead of passing it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lock():
    spec = importlib.util.spec_from_file_location("motionrepro_lock", ROOT / "requirements" / "lock.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("kind", ["cpu", "cuda"])
def test_locks_agree_with_pyproject(lock, kind):
    assert lock.check_consistent(kind) == []
    pins = lock.read_pins(lock.LOCKS[kind])
    assert pins["torch"] == ("2.13.0+cpu" if kind == "cpu" else "2.13.0")
    text = lock.LOCKS[kind].read_text()
    assert text.count("--hash=sha256:") >= len(pins)  # every pin carries at least one hash


def test_check_reports_a_range_the_lock_violates(lock, monkeypatch):
    monkeypatch.setattr(lock, "project_requirements", lambda: ["numpy<1.0", "not-a-locked-package>=1"])
    problems = lock.check_consistent("cpu")
    assert any("numpy==" in p and "numpy<1.0" in p for p in problems)
    assert any("not-a-locked-package" in p and "not pinned" in p for p in problems)


def test_pinned_twice_is_an_error(lock, tmp_path):
    bad = tmp_path / "x.lock"
    bad.write_text("numpy==2.0 \\\n    --hash=sha256:00\nNumPy==2.1\n")
    with pytest.raises(SystemExit, match="pinned twice"):
        lock.read_pins(bad)


def test_project_requirements_stay_ranges(lock):
    """The project stays installable as a library: no exact pins in pyproject (the lock pins)."""
    exact = [r for r in lock.project_requirements() if "==" in r]
    assert exact == []


def test_lock_info_names_the_lock_and_differences(lock):
    info = lock.lock_info("cpu")
    assert info["lock"] == "requirements/cpu.lock" and len(info["sha256"]) == 64
    assert isinstance(info["matches_installed"], bool) and isinstance(info["differs"], list)


def test_record_environment_lists_the_locked_versions(monkeypatch):
    from evaluators.records import environment_info

    monkeypatch.setenv("MOTIONREPRO_LOCK", "cpu")
    env = environment_info()
    assert env["lock"]["lock"] == "requirements/cpu.lock"
    assert env["lock"]["locked"]["torch"] == "2.13.0+cpu"
    assert set(env["lock"]["locked"]) == set(env["packages"])
    monkeypatch.setenv("MOTIONREPRO_LOCK", "none")
    assert environment_info()["lock"]["lock"] is None
