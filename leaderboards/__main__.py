"""``python -m leaderboards [--check] [--results DIR ...] [--out DIR] [--summary]``.

Regenerates every ``leaderboards/*.md`` from ``leaderboards/references/*.yaml``,
``leaderboards/results/*.json`` and ``leaderboards/benchmarks/*.json``. ``--check`` writes
nothing and exits 1 when a committed markdown is stale (CI runs it). A malformed record is skipped
with one warning naming its file, except under ``--check``, where it is an error (exit 2).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from evaluators.records import RecordError
from leaderboards.make_tables import LB_DIR, load_results, regenerate, summary_table
from leaderboards.references import ReferenceError
from leaderboards.speed import BenchmarkFileError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m leaderboards", description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a generated markdown is stale; write nothing")
    ap.add_argument("--results", nargs="*", type=Path, default=None,
                    help="record folders (default: leaderboards/results)")
    ap.add_argument("--bench", nargs="*", type=Path, default=None,
                    help="benchmark JSON folders (default: leaderboards/benchmarks)")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: leaderboards/)")
    ap.add_argument("--summary", action="store_true", help="print a short table of the records")
    args = ap.parse_args(argv)
    results = args.results if args.results is not None else [LB_DIR / "results"]
    try:
        # regenerating skips a broken record with one warning naming it; --check (CI) refuses it
        lenient = [] if args.check else results
        changed = regenerate(results, args.out, args.bench, check=args.check, lenient=lenient)
        if args.summary:
            print(summary_table(load_results(results, lenient)))
    except (RecordError, ReferenceError, BenchmarkFileError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.check:
        if changed:
            print("stale leaderboards (run `python -m leaderboards` and commit):", file=sys.stderr)
            for p in changed:
                print(f"  {p}", file=sys.stderr)
            return 1
        print("leaderboards up to date")
        return 0
    for p in changed:
        print(f"wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
