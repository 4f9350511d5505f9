"""Small modules: no project ``.py`` file over 400 lines (STYLE/DESIGN: one responsibility per module).

A module that grows past the limit is split by responsibility (as MLD's training and sampling,
or the estimate's cost model and its measurements), not trimmed line by line. Scanned: every
``.py`` under the repository, except hidden folders (``.venv``, ``.git``, tool caches) and the
run outputs (``runs/``), which are not the project's code.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LIMIT = 400  # lines
SKIP_DIRS = {"runs", "__pycache__"}  # plus every hidden folder


def project_modules(root: Path) -> list[Path]:
    out = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS)
        out += [Path(folder) / f for f in sorted(files) if f.endswith(".py")]
    return out


def oversized(root: Path, limit: int = LIMIT) -> list[str]:
    """``path: N lines`` for every project module longer than ``limit`` lines."""
    too_long = []
    for path in project_modules(root):
        with open(path, encoding="utf-8") as fh:
            n = sum(1 for _ in fh)
        if n > limit:
            too_long.append(f"{path.relative_to(root)}: {n} lines")
    return too_long


def test_no_module_over_the_limit():
    assert len(project_modules(REPO)) > 100  # the walk found the project (not an empty folder)
    assert oversized(REPO) == [], f"split these by responsibility (limit {LIMIT} lines)"


def test_the_check_sees_a_long_module_and_skips_venv_and_runs(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "ok.py").write_text("x = 1\n" * LIMIT)
    (tmp_path / "pkg" / "long.py").write_text("x = 1\n" * (LIMIT + 1))
    for skipped in (".venv/lib", "runs/work"):
        (tmp_path / skipped).mkdir(parents=True)
        (tmp_path / skipped / "big.py").write_text("x = 1\n" * 1000)
    assert oversized(tmp_path) == [f"pkg{os.sep}long.py: {LIMIT + 1} lines"]
