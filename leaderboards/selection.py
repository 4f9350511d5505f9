"""Which records a leaderboard shows, and where: loading, newest per key, comparability, columns.

The decisions :mod:`leaderboards.make_tables` renders: a record is *comparable* when its
provenance equals the method config's ``paper_setting`` on real data at paper scale
(``evaluators/provenance.py``), *submitted* when scored from files generated elsewhere, a
*pipeline check* on synthetic data or smoke scale; newest per key wins, a clean tree before a
dirty one. Kept apart from the rendering so the rules read on one page and are tested alone.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from evaluators import provenance as P
from evaluators.core.config import config_dirs
from evaluators.records import RecordError, read_record, read_records
from leaderboards.references import Table


# -- records ---------------------------------------------------------------------------------------
def load_results(dirs: Iterable[Path], lenient: Iterable[Path] = ()) -> list[dict]:
    """All records in ``dirs`` (a malformed one raises RecordError naming its file; in a ``lenient``
    folder, such as a run's own ``runs/records``, it is skipped with a warning naming the file)."""
    soft = {Path(p).resolve() for p in lenient}
    recs: list[dict] = []
    for d in dirs:
        recs.extend(read_records(d, skip_invalid=Path(d).resolve() in soft))
    return recs


def warn_unknown_methods(dirs: Iterable[Path], known: Iterable[str], lenient: Iterable[Path] = ()) -> list[str]:
    """One warning (naming the file) per record whose method no leaderboard lists: never dropped silently."""
    known, soft = set(known), {Path(p).resolve() for p in lenient}
    out = []
    for d in dirs:
        for path in sorted(Path(d).glob("*.json")) if Path(d).exists() else []:
            try:
                rec = read_record(path)
            except RecordError:
                if Path(d).resolve() in soft:
                    continue
                raise
            if rec["method"] not in known:
                msg = (f"{path}: method {rec['method']!r} is on no leaderboard (known: {', '.join(sorted(known))}); "
                       f"record not shown")
                logging.getLogger(__name__).warning(msg)
                out.append(msg)
    return out


def record_key(rec: dict) -> tuple:
    ablation = str(rec.get("config", {}).get("ablation") or "")
    return (rec["method"], rec["dataset"], rec["protocol"], rec["variant"], rec["data"], rec["scale"], ablation)


def latest(records: Iterable[dict]) -> list[dict]:
    """Newest record per key, preferring records from a clean tree over dirty ones."""
    best: dict[tuple, dict] = {}
    for r in records:
        k = record_key(r)
        cur = best.get(k)
        rank = (not r["git"].get("dirty", True), r["started"])
        if cur is None or rank > (not cur["git"].get("dirty", True), cur["started"]):
            best[k] = r
    return sorted(best.values(), key=lambda r: record_key(r))


_SETTINGS: dict[str, Any] = {}


def paper_setting(method: str, rec: dict | None = None) -> dict | None:
    """The ``paper_setting:`` declared in ``configs/method/<method>.yaml`` (searched like every group
    config); else the one in the record's resolved method config; None when neither declares one."""
    if method not in _SETTINGS:
        found = None
        for d in config_dirs():
            f = d / "method" / f"{method}.yaml"
            if f.exists():
                found = (yaml.safe_load(f.read_text(encoding="utf-8")) or {}).get("paper_setting")
                break
        _SETTINGS[method] = found
    got = _SETTINGS[method]
    if got is None and rec is not None:
        got = ((rec.get("config") or {}).get("method") or {}).get("paper_setting")
    return dict(got) if isinstance(got, dict) else None


def not_comparable_reasons(rec: dict) -> list[str]:
    """Why ``rec`` may not stand beside the paper (``[]`` = comparable); see evaluators/provenance.py."""
    prov = rec.get("provenance") if rec.get("schema", 1) >= 2 else None
    if is_submitted(rec):  # the evaluator side only (the record's own setting), whatever the model is named
        setting = ((rec.get("config") or {}).get("method") or {}).get("paper_setting")
        return P.differences(prov, dict(setting or {}), data=rec["data"], scale=rec["scale"])
    return P.differences(prov, paper_setting(rec["method"], rec), data=rec["data"], scale=rec["scale"])


def is_comparable(rec: dict) -> bool:
    return not not_comparable_reasons(rec)


def is_submitted(rec: dict) -> bool:
    """Scored from files generated elsewhere (``./reproduce.sh score``): provenance ``weights: submitted``.
    Such a record is listed under *Submitted*, never as a reproduction of a paper."""
    return ((rec.get("provenance") or {}).get("weights") or {}).get("id") == "submitted"


def is_pipeline_check(rec: dict) -> bool:
    """Synthetic data or smoke scale: shows the chain runs, says nothing about the paper."""
    return rec["data"] != "real" or rec["scale"] != "paper"


def flagged(rec: dict) -> bool:
    ns = rec.get("n_samples", {})
    under = "expected" in ns and "evaluated" in ns and ns["evaluated"] < ns["expected"]
    return bool(rec["git"].get("dirty", True)) or under


# -- variants --------------------------------------------------------------------------------------
def _variant_pairs(variant: str) -> list[str]:
    return [p.strip() for p in variant.split(",") if p.strip()]


def match_column(col: str, rec: dict) -> tuple[bool, str]:
    """For dataset-axis columns ``ds[@k=v,...]``: does ``rec`` fill it, and what variant is left."""
    ds, _, need = col.partition("@")
    if rec["dataset"] != ds:
        return False, rec["variant"]
    pairs = _variant_pairs(rec["variant"])
    needed = _variant_pairs(need)
    if not all(n in pairs for n in needed):
        return False, rec["variant"]
    return True, ",".join(p for p in pairs if p not in needed)


def protocol_matches(table: Table, rec: dict) -> bool:
    return rec["protocol"] == table.protocol or rec["protocol"].startswith(table.protocol)
