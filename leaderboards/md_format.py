"""Cell and table formatting shared by the speed and drift sections of ``speed.md``."""

from __future__ import annotations

from typing import Any

import pandas as pd


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
