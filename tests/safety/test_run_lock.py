"""Two processes and one run folder: the second waits, or stops with one line naming the holder's pid.

Each process is a real ``python`` subprocess running :func:`hold_run_folder`; ordering is checked
through a shared log file and signal files, never through timings.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evaluators.core.run_lock import RunFolderBusy, hold_run_folder, owner_pid

REPO = Path(__file__).resolve().parents[2]

# holds FOLDER, logs "<tag>-start", waits for RELEASE to exist, logs "<tag>-end", then releases
HOLDER = """
import sys, time
from pathlib import Path
from evaluators.core.run_lock import RunFolderBusy, hold_run_folder
folder, log, release, tag, wait = sys.argv[1:6]
wait = {"true": True, "false": False}.get(wait, None) if wait in ("true", "false") else float(wait)
def note(s):
    with open(log, "a") as fh:
        fh.write(s + "\\n")
note(f"{tag}-trying")
try:
    with hold_run_folder(folder, wait=wait):
        note(f"{tag}-start")
        while not Path(release).exists():
            time.sleep(0.01)
        note(f"{tag}-end")
except RunFolderBusy as e:
    print(e, file=sys.stderr)
    sys.exit(3)
"""


def _start(tmp: Path, tag: str, wait: str, release: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp / "run"), str(tmp / "log"), str(tmp / release),
                             tag, wait], env=env, stderr=subprocess.PIPE, text=True)


def _log(tmp: Path) -> list[str]:
    p = tmp / "log"
    return p.read_text().split() if p.exists() else []


def _until(cond, proc: subprocess.Popen | None = None) -> None:
    """Poll for a condition (bounded only so that a broken lock fails the test instead of hanging it)."""
    for _ in range(6000):
        if cond():
            return
        if proc is not None and proc.poll() is not None and not cond():
            raise AssertionError(f"process ended early: {proc.returncode} {proc.stderr.read()}")
        time.sleep(0.01)
    raise AssertionError("condition never became true")


@pytest.mark.parametrize("wait", ["false", "0.3"])
def test_second_process_refused_with_the_holders_pid(tmp_path, wait):
    a = _start(tmp_path, "A", "false", "release-A")
    try:
        _until(lambda: "A-start" in _log(tmp_path), a)
        _until(lambda: owner_pid(tmp_path / "run") == a.pid)
        b = _start(tmp_path, "B", wait, "release-B")
        _, err = b.communicate(timeout=120)
        assert b.returncode == 3
        lines = err.strip().splitlines()
        assert len(lines) == 1 and f"pid {a.pid}" in lines[0] and str(tmp_path / "run") in lines[0]
        assert "B-start" not in _log(tmp_path)
    finally:
        (tmp_path / "release-A").touch()
        a.wait(timeout=120)
    assert a.returncode == 0


def test_second_process_waits_for_the_first(tmp_path):
    a = _start(tmp_path, "A", "false", "release-A")
    b = None
    try:
        _until(lambda: "A-start" in _log(tmp_path), a)
        (tmp_path / "release-B").touch()  # B leaves as soon as it gets in
        b = _start(tmp_path, "B", "true", "release-B")
        _until(lambda: "B-trying" in _log(tmp_path), b)
    finally:
        (tmp_path / "release-A").touch()
        a.wait(timeout=120)
        if b is not None:
            b.wait(timeout=120)
    assert (a.returncode, b.returncode) == (0, 0)
    log = _log(tmp_path)
    assert log.index("A-start") < log.index("A-end") < log.index("B-start") < log.index("B-end")
    assert not (tmp_path / "run" / ".lock.owner").exists()


def test_a_killed_holder_does_not_leave_the_folder_locked(tmp_path):
    a = _start(tmp_path, "A", "false", "never")
    _until(lambda: "A-start" in _log(tmp_path), a)
    with pytest.raises(RunFolderBusy):
        with hold_run_folder(tmp_path / "run", wait=False):
            pass
    os.kill(a.pid, signal.SIGKILL)
    a.wait(timeout=120)
    with hold_run_folder(tmp_path / "run", wait=False) as folder:  # the kernel dropped A's lock
        assert owner_pid(folder) == os.getpid()
    assert owner_pid(tmp_path / "run") is None


@pytest.mark.parametrize("wait", [-1, "yes", None])
def test_bad_wait_values_are_refused(tmp_path, wait):
    with pytest.raises(ValueError, match="wait must be"):
        with hold_run_folder(tmp_path / "run", wait=wait):
            pass
