"""``python -m evaluators.datasets inspect PATH``: JSON summary of a dataset file or folder (exit 2 on a
DatasetError, as the runner)."""

from __future__ import annotations

import argparse
import json
import sys

from evaluators.datasets.base import DatasetError, inspect_path, list_datasets


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluators.datasets")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("inspect", help="print a JSON summary of a supported file or dataset folder",
                       description="Print a JSON summary of a supported file or dataset folder. On bad input it "
                                   "prints the DatasetError (naming the file) and exits 2, the runner's code "
                                   "for the same error.")
    p.add_argument("path")
    sub.add_parser("list", help="list registered datasets")
    args = ap.parse_args(argv)
    if args.cmd == "list":
        print("\n".join(list_datasets()))
        return 0
    try:
        summary = inspect_path(args.path)
    except DatasetError as e:
        print(f"DatasetError: {e}", file=sys.stderr)
        return 2  # the runner's exit code for the same error
    print(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
