"""Paper reference tables: parse ``leaderboards/references/*.yaml`` into typed cells.

A cell is written in the notation of ``../shared/reference/reported_numbers.md``:

- ``"0.511±.003 [A,H]"``  a number, its printed 95% interval, and the source letters;
- ``"UNVERIFIED"``         no source confirmed the number;
- ``"86.4 UNVERIFIED (seed)"``  a number that stays unverified (why in brackets);
- ``"–"``                   not reported by the paper.

Source letters must exist in ``references/sources.yaml``; an unverified number is never
promoted to a verified one (the renderer always prints the flag beside it).

A table may state ``repetitions`` (with ``repetitions_source``): how many evaluation repetitions
stand behind its ``±`` intervals, which the unpaired comparison against our runs needs
(``leaderboards/head_to_head.py``); without it no such comparison is made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REF_DIR = Path(__file__).resolve().parent / "references"

_CELL = re.compile(
    r"^(?P<value>-?\d+(?:\.\d*)?|-?\.\d+)"
    r"(?:±(?P<ci>\d*\.?\d+))?"
    r"\s*(?:\[(?P<src>[A-Z](?:\s*,\s*[A-Z])*)\])?"
    r"\s*(?P<flag>UNVERIFIED(?:\s*\((?P<why>[^)]*)\))?)?$"
)


class ReferenceError(ValueError):
    """A malformed reference file or cell; the message names the file and the cell."""


@dataclass(frozen=True)
class Cell:
    value: float | None
    ci95: float | None = None
    sources: tuple[str, ...] = ()
    status: str = "verified"  # verified | unverified | not_reported
    why: str = ""
    text: str = ""  # the number exactly as the source prints it (keeps its precision)

    def render(self) -> str:
        if self.status == "not_reported":
            return "–"
        if self.value is None:
            return "UNVERIFIED"
        txt = self.text or f"{self.value:g}"
        if self.status == "unverified":
            return f"{txt} (UNVERIFIED{', ' + self.why if self.why else ''})"
        return f"{txt} [{','.join(self.sources)}]"


@dataclass
class Row:
    name: str
    cells: dict[str, Cell]
    note: str = ""


@dataclass
class Table:
    id: str
    title: str
    source: str
    protocol: str
    columns: dict[str, str]
    rows: list[Row]
    datasets: list[str] = field(default_factory=list)
    column_axis: str = "metric"  # metric | dataset
    metric: str = ""  # the metric when column_axis == "dataset"
    reproduces: dict[str, str] = field(default_factory=dict)
    variant_prefix: str = ""
    hardware: str = ""
    repetitions: int | None = None  # repetitions behind the printed ± (None: not known)
    repetitions_source: str = ""

    def reproduced_row(self, method: str, variant: str) -> str | None:
        """Name of the paper row that a record of ``method`` / ``variant`` reproduces (``reproduces``:
        ``method``, ``method:variant`` or ``:variant`` keys; the plain method key for the main row)."""
        target = (self.reproduces.get(f"{method}:{variant}") or self.reproduces.get(f":{variant}")) if variant else None
        return target or (self.reproduces.get(method) if variant in ("", "generated") else target)


@dataclass
class Paper:
    key: str
    paper: str
    leaderboard: str
    methods: list[str]
    tables: list[Table]
    notes: list[str] = field(default_factory=list)
    path: Path | None = None


def parse_cell(text: Any, *, where: str, known_sources: set[str]) -> Cell:
    """Parse one cell string (see module docstring); raise ReferenceError naming ``where``."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        raise ReferenceError(f"{where}: bare number {text!r} without a source or UNVERIFIED flag")
    if not isinstance(text, str):
        raise ReferenceError(f"{where}: cell must be a string, got {type(text).__name__}")
    s = text.strip()
    if s in ("–", "-", "—"):
        return Cell(None, status="not_reported")
    if s == "UNVERIFIED":
        return Cell(None, status="unverified")
    m = _CELL.match(s)
    if not m:
        raise ReferenceError(f"{where}: cannot parse cell {text!r}")
    src = tuple(x.strip() for x in m["src"].split(",")) if m["src"] else ()
    unknown = [x for x in src if x not in known_sources]
    if unknown:
        raise ReferenceError(f"{where}: unknown source letters {unknown} in {text!r}")
    if m["flag"]:
        return Cell(float(m["value"]), _f(m["ci"]), src, "unverified", (m["why"] or "").strip(), _num_text(m))
    if not src:
        raise ReferenceError(f"{where}: number {text!r} has neither sources nor an UNVERIFIED flag")
    return Cell(float(m["value"]), _f(m["ci"]), src, "verified", "", _num_text(m))


def load_sources(ref_dir: Path = REF_DIR) -> dict[str, str]:
    path = ref_dir / "sources.yaml"
    data = _load_yaml(path)
    if not isinstance(data, dict):
        raise ReferenceError(f"{path}: expected a mapping of source letters")
    return {str(k): str(v) for k, v in data.items()}


def load_papers(ref_dir: Path = REF_DIR) -> list[Paper]:
    """Every paper reference file (all but sources.yaml), parsed and validated."""
    known = set(load_sources(ref_dir))
    papers = []
    for path in sorted(ref_dir.glob("*.yaml")):
        if path.name == "sources.yaml":
            continue
        papers.append(_parse_paper(path, known))
    return papers


def _parse_paper(path: Path, known: set[str]) -> Paper:
    data = _load_yaml(path)
    for key in ("paper", "leaderboard", "methods", "tables"):
        if key not in data:
            raise ReferenceError(f"{path}: missing key {key!r}")
    tables = []
    for i, t in enumerate(data["tables"]):
        where = f"{path.name}: table {t.get('id', i)}"
        for key in ("id", "title", "source", "protocol", "columns", "rows"):
            if key not in t:
                raise ReferenceError(f"{where}: missing key {key!r}")
        rows = []
        for r in t["rows"]:
            cells = {c: parse_cell(v, where=f"{where}, row {r.get('name')!r}, column {c!r}", known_sources=known)
                     for c, v in r.get("cells", {}).items()}
            extra = set(cells) - set(t["columns"])
            if extra:
                raise ReferenceError(f"{where}, row {r.get('name')!r}: cells for unknown columns {sorted(extra)}")
            rows.append(Row(str(r["name"]), cells, str(r.get("note", ""))))
        axis = t.get("column_axis", "metric")
        if axis not in ("metric", "dataset"):
            raise ReferenceError(f"{where}: column_axis must be metric or dataset")
        if axis == "dataset" and not t.get("metric"):
            raise ReferenceError(f"{where}: column_axis dataset needs a 'metric'")
        reps = t.get("repetitions")
        if reps is not None and (isinstance(reps, bool) or not isinstance(reps, int) or reps < 2):
            raise ReferenceError(f"{where}: repetitions must be an integer >= 2, got {reps!r}")
        if reps is not None and not t.get("repetitions_source"):
            raise ReferenceError(f"{where}: repetitions needs a repetitions_source")
        tables.append(Table(
            id=str(t["id"]), title=str(t["title"]), source=str(t["source"]), protocol=str(t["protocol"]),
            columns={str(k): str(v) for k, v in t["columns"].items()}, rows=rows,
            datasets=list(t.get("datasets", [])), column_axis=axis, metric=str(t.get("metric", "")),
            reproduces={str(k): str(v) for k, v in (t.get("reproduces") or {}).items()},
            variant_prefix=str(t.get("variant_prefix", "")), hardware=str(t.get("hardware", "")),
            repetitions=reps, repetitions_source=str(t.get("repetitions_source", "")),
        ))
    return Paper(path.stem, str(data["paper"]), str(data["leaderboard"]), list(data["methods"]), tables,
                 [str(n) for n in data.get("notes", [])], path)


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ReferenceError(f"{path}: invalid YAML ({e})") from e


def _f(x: str | None) -> float | None:
    return float(x) if x else None


def _num_text(m: re.Match) -> str:
    return m["value"] + (f" ± {m['ci']}" if m["ci"] else "")
