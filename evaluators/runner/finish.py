"""The end of a run: regenerate ``runs_dir/leaderboards`` and the short summary table."""

from __future__ import annotations

import logging
from pathlib import Path

from evaluators.records import RecordError, read_record
from leaderboards import make_tables

log = logging.getLogger("evaluators.runner.run")
REPO = Path(__file__).resolve().parents[2]


def results_dirs(runs_dir: Path) -> list[Path]:
    """The records the regenerated leaderboards read: the published ones and this runs_dir's."""
    return [REPO / "leaderboards" / "results", runs_dir / "records"]


def check_records_folders(runs_dir: Path) -> list[str]:
    """Before any work: one warning per record the end of the run will skip (named, with what is
    wrong), so a broken neighbour is seen now rather than after hours of training; the messages."""
    broken = []
    for d in results_dirs(runs_dir):
        for p in sorted(d.glob("*.json")) if d.is_dir() else []:
            try:
                read_record(p)
            except RecordError as e:
                broken.append(str(e))
                log.warning("a broken record will be left out of the leaderboards: %s", e)
    return broken


def finish(records: list[dict], runs_dir: Path, regenerate: bool = True) -> str:
    """Regenerate ``runs_dir/leaderboards`` from published + local records; the summary table."""
    if regenerate:
        # a bad record beside this run's (published or local) is skipped with a warning naming it:
        # the run's own records are written already and must not end in a traceback
        results = results_dirs(runs_dir)
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
