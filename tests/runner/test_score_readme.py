"""The README's submission-format examples run as printed ("Score your own model").

Each ```bash block of that section that scores a submission is run verbatim with bash in an
empty folder; ``./reproduce.sh`` there is a stand-in for the repository's script that runs its
``manifest|score|export`` branch (``python -m evaluators.run --CMD ...``) without its bootstrap
and its ``cd`` to the checkout, so the files land in the test's folder. Each must exit 0 and
leave a run record that says ``weights: submitted``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _blocks() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Score your own model", 1)[1].split("\n## ", 1)[0]
    return [b for b in re.findall(r"```bash\n(.*?)```", section, flags=re.S) if "./reproduce.sh score" in b]


def _name(block: str) -> str:
    return re.search(r"reproduce\.sh score (\S+)", block).group(1) + ":" + \
        re.search(r'"representation": "(\w+)"', block).group(1)


BLOCKS = _blocks()


def test_every_submission_format_has_an_example():
    reps = {_name(b).split(":")[1] for b in BLOCKS}
    assert reps == {"features", "joints", "coco_results", "skeleton_features", "reconstruction_pairs"}
    assert len(BLOCKS) == 6  # text2motion features and joints, action2motion joints, COCO, probes, pairs


def _script(path: Path, body: str) -> None:
    path.write_text(f"#!/usr/bin/env bash\n{body}\n")
    path.chmod(0o755)


@pytest.mark.slow
@pytest.mark.parametrize("block", BLOCKS, ids=[_name(b) for b in BLOCKS])
def test_readme_submission_example_runs(block, tmp_path):
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    # ``.venv/bin/python`` is this interpreter (a script, not a link: a venv is found from the path it runs as)
    _script(tmp_path / ".venv" / "bin" / "python", f'exec "{sys.executable}" "$@"')
    _script(tmp_path / "reproduce.sh", f'cmd="$1"; shift\nexec "{sys.executable}" -m evaluators.run "--$cmd" "$@"')
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    out = subprocess.run(["bash", "-c", "set -euo pipefail\n" + block], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    records = list((tmp_path / "runs" / "records").glob("*.json"))
    assert records, out.stderr[-2000:]
    for path in records:
        rec = json.loads(path.read_text())
        assert rec["provenance"]["weights"]["id"] == "submitted"
