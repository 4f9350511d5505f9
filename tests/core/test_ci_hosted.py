"""`.ci/run` on a GitHub-hosted runner: no `../shared` beside the checkout, `CI=true`,
`GITHUB_ACTIONS=true`. The real sample files cannot be committed (their licences), so there the
data-marked tests skip and the job summary says why; everywhere else the gate keeps requiring them.

Each test runs the whole ``.ci/run`` (its data switch, every step, its exit status) in a copy of the
checkout; only its test step is narrowed, through ``MOTIONREPRO_CI_TEST_ARGS``, to what the test
proves, in one process (``-n 0``): the data switch is an environment variable, which xdist workers
inherit unchanged, so two workers each collecting the whole tree again would prove nothing more.
The hosted run also skips pytest's assertion rewriting (``--assert=plain``, a quarter of a
collection's CPU): what it checks is which tests skip, and a failing plain assert fails its test as
a rewritten one does (only the message is shorter).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _clone_tracked(dst: Path) -> Path:
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    for rel in filter(None, files.decode().split("\0")):
        src = REPO / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)
    (dst / ".venv").symlink_to(REPO / ".venv")  # the bootstrap stamp matches: nothing is installed
    return dst


def _ci_env(tmp_path: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOTIONREPRO_", "GITHUB_", "PYTEST_"))}
    env.update(MOTIONREPRO_SHARED_DATA=str(tmp_path / "shared" / "data"),  # what the workflow sets; absent
               MOTIONREPRO_CI_NO_APT="1", MOTIONREPRO_CACHE=str(tmp_path / "cache"), **extra)
    return env


@pytest.mark.slow
def test_hosted_runner_skips_the_data_tests_and_says_why(tmp_path):
    """Every data-marked test of the whole suite is collected and skips, with its reason."""
    repo = _clone_tracked(tmp_path / "checkout")
    summary = tmp_path / "summary.md"
    out = subprocess.run([str(repo / ".ci" / "run")], cwd=repo, capture_output=True, text=True, timeout=900,
                         env=_ci_env(tmp_path, CI="true", GITHUB_ACTIONS="true", GITHUB_STEP_SUMMARY=str(summary),
                                                 MOTIONREPRO_CI_TEST_ARGS="-m data -n 0 --assert=plain -p no:cacheprovider -q"))
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-5000:]
    assert ".ci/run: all checks passed" in log
    assert "Data tests skipped" in summary.read_text() and "not redistributable" in summary.read_text()
    # pytest's closing counts line ("30 skipped, 1300 deselected in 9.1s"; under xdist, which
    # ./reproduce.sh test runs without -n 0, the workers deselect and the line has no "deselected")
    tail = [line for line in log.splitlines() if re.search(r"\d+ skipped\b.* in [\d.]+s", line)]
    assert tail and "failed" not in tail[-1] and "error" not in tail[-1], log[-3000:]
    assert "real sample" in log  # pytest -ra prints each skip's reason


def _a_data_test_file() -> str:
    """The smallest test module that reads the real samples (the ``shared_data`` fixture or
    :func:`tests.conftest.need_shared`; ``tests/conftest.py`` marks those tests ``data``)."""
    files = [p for p in (REPO / "tests").rglob("test_*.py")
             if re.search(r"\bshared_data\b|need_shared\(", p.read_text(encoding="utf-8"))]
    assert files, "no test reads the real samples: the data gate has nothing to check"
    return str(min(files, key=lambda p: (p.stat().st_size, p)).relative_to(REPO))


@pytest.mark.slow
def test_the_gate_still_requires_the_samples(tmp_path):
    """Off GitHub Actions a missing sample folder fails the data tests instead of skipping them.

    The whole ``.ci/run`` runs (its data switch, every step, its exit status), but its test step is
    narrowed to the data tests of one module in one process: that one failing is what fails the
    gate (the run above collects the whole suite to show they all skip)."""
    repo = _clone_tracked(tmp_path / "checkout")
    env = _ci_env(tmp_path, MOTIONREPRO_CI_TEST_ARGS=f"-m data -n 0 -p no:cacheprovider -q {_a_data_test_file()}")
    out = subprocess.run([str(repo / ".ci" / "run")], cwd=repo, capture_output=True, text=True, timeout=900, env=env)
    log = out.stdout + out.stderr
    assert out.returncode != 0, log[-3000:]
    assert "MOTIONREPRO_REQUIRE_DATA=1 forbids skipping" in log
    assert re.search(r"\.ci/run: FAILED:.*\btests\b", log), log[-3000:]  # its test step failed the gate
