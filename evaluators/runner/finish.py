"""The end of a run: regenerate ``runs_dir/leaderboards`` and the short summary table."""

from __future__ import annotations

import logging
from pathlib import Path

from leaderboards import make_tables

log = logging.getLogger("evaluators.runner.run")
REPO = Path(__file__).resolve().parents[2]


def finish(records: list[dict], runs_dir: Path, regenerate: bool = True) -> str:
    """Regenerate ``runs_dir/leaderboards`` from published + local records; the summary table."""
    if regenerate:
        make_tables.regenerate(results_dirs=[REPO / "leaderboards" / "results", runs_dir / "records"],
                   out_dir=runs_dir / "leaderboards", lenient=[runs_dir / "records"])
        log.info("leaderboards regenerated under %s", runs_dir / "leaderboards")
    return make_tables.summary_table(records)
