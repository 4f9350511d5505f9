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
        # a bad record beside this run's (published or local) is skipped with a warning naming it:
        # the run's own records are written already and must not end in a traceback
        results = [REPO / "leaderboards" / "results", runs_dir / "records"]
        make_tables.regenerate(results_dirs=results, out_dir=runs_dir / "leaderboards", lenient=results)
        log.info("leaderboards regenerated under %s", runs_dir / "leaderboards")
    return make_tables.summary_table(records) + "\n\n" + where_things_are(records, runs_dir, regenerate)


def where_things_are(records: list[dict], runs_dir: Path, regenerated: bool = True) -> str:
    """The closing pointer: where the records, leaderboards and each run's work folder are."""
    work = sorted({str(Path(r["extra"]["checkpoint"]).parent) for r in records
                   if str(r.get("extra", {}).get("checkpoint", "")).startswith(str(runs_dir))})
    lines = [f"records:      {runs_dir / 'records'}"]
    if regenerated:
        lines.append(f"leaderboards: {runs_dir / 'leaderboards'} (regenerated)")
    lines += [f"work folder:  {w} (checkpoints, samples/*.gif)" for w in work]
    return "\n".join(lines)
