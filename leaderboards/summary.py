"""The short table a run, the demo and CI print at their end: one compact table per protocol.

Each table shows the protocol's headline metrics (FID first where a protocol reports it, as every
text-to-motion table does), with the unit in the header and values formatted as the leaderboards
format them, and fits a 120-column terminal: long variant labels wrap inside their cell.
"""

from __future__ import annotations

from collections.abc import Iterable

from tabulate import tabulate

from evaluators.metrics.info import metric_info

WIDTH = 120
N_METRICS = 4  # ours: headline columns per table (the rest stay in the records and leaderboards)
# what a task's tables lead with, where the protocol reports it (text-to-motion: FID, R@3, MM-Dist)
FIRST = ("fid", "r_precision_top3", "mm_dist", "top1", "ap", "pckh_0.5", "mpjpe_mm")


def headline_metrics(records: list[dict], n: int = N_METRICS) -> list[str]:
    """The first ``n`` metric keys of the protocol's records, in their own order, FID (etc.) first."""
    keys: list[str] = []
    for r in records:
        for k in r["metrics"]:
            if k not in keys:
                keys.append(k)
    lead = [k for k in FIRST if k in keys]
    return (lead + [k for k in keys if k not in lead])[:n]


def _decimals(v: float) -> int | None:
    """Decimals the leaderboards show for ``v`` (None: scientific notation)."""
    a = abs(v)
    if a != 0 and (a < 1e-3 or a >= 1e5):
        return None
    return 2 if a >= 10 else 3


def cell(m: dict | None) -> str:
    """``value ± ci95``, both halves in the value's format (``9.142 ± 0.001``, not ``± 5.090e-04``)."""
    if not m or m.get("value") is None:
        return ""
    v = float(m["value"])
    d = _decimals(v)
    txt = f"{v:.2e}" if d is None else f"{v:.{d}f}"
    if m.get("ci95") is not None:
        ci = float(m["ci95"])
        txt += f" ± {ci:.2e}" if d is None else f" ± {ci:.{d}f}"
    return txt


def header(key: str) -> str:
    """``R@3 ↑``, ``mpjpe ↓ [mm]``: short name, direction, unit."""
    info = metric_info(key)
    arrow = "↑" if info.higher_is_better else "↓"
    name = key.replace("r_precision_top", "R@")
    if info.unit and name.endswith("_" + info.unit.split("/")[0]):
        name = name[: -len(info.unit.split("/")[0]) - 1]
    return f"{name} {arrow}" + (f" [{info.unit}]" if info.unit else "")


def _wrap(text: str, width: int) -> str:
    """Break ``a=1,b=2,...`` labels at commas so the column stays ``width`` wide."""
    lines, cur = [], ""
    for part in text.split(","):
        cand = f"{cur},{part}" if cur else part
        if cur and len(cand) > width:
            lines.append(cur + ",")
            cur = part
        else:
            cur = cand
    return "\n".join([*lines, cur]) if cur or lines else ""


def summary_tables(records: Iterable[dict], status=lambda r: "") -> str:
    """One table per protocol (in order of first appearance), ``status(record)`` in the last column."""
    by_protocol: dict[str, list[dict]] = {}
    for r in records:
        by_protocol.setdefault(r["protocol"], []).append(r)
    if not by_protocol:
        return "(no run records)"
    out = []
    for protocol, recs in by_protocol.items():
        keys = headline_metrics(recs)
        rows = [[r["method"], r["dataset"], _wrap(r.get("variant", ""), 22), *(cell(r["metrics"].get(k)) for k in keys),
                 status(r)] for r in recs]
        table = tabulate(rows, headers=["method", "dataset", "variant", *map(header, keys), "status"],
                         tablefmt="simple", disable_numparse=True)
        out.append(f"{protocol}\n{table}")
    return "\n\n".join(out)
