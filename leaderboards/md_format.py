"""Markdown cells and tables shared by the leaderboard pages (the paper tables, ``speed.md`` and its drift section)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from leaderboards.references import Table


class BenchmarkFileError(ValueError):
    """A benchmark JSON that is not pytest-benchmark output; names the file."""


def _fmt(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return ""
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    if isinstance(v, list):
        return ", ".join(map(str, v))
    return str(v)


def _md(df: pd.DataFrame) -> str:
    return df.fillna("").to_markdown(index=False, disable_numparse=True) + "\n" if len(df) else "_empty_\n"


def render_reference(table: Table) -> str:
    """A paper-reported table as printed in the paper (with its row notes), never mixed with our cells."""
    rows = [{"Method": r.name, **{lab: (r.cells[c].render() if c in r.cells else "")
                                  for c, lab in table.columns.items()}} for r in table.rows]
    out = pd.DataFrame(rows, columns=["Method", *table.columns.values()]).to_markdown(
        index=False, disable_numparse=True) + "\n"
    notes = [f"- {r.name}: {r.note}" for r in table.rows if r.note]
    return out + ("\n" + "\n".join(notes) + "\n" if notes else "")
