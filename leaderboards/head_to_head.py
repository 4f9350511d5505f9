"""Head-to-head comparisons: is method A better than method B on this metric, beyond noise?

Tables compare single means from different machines and seeds, so a 0.01 difference in R@3 may
be noise. When two methods were evaluated by this suite on the same dataset, protocol, variant,
scale and seed with the same number of repetitions, repetition ``r`` of both used the same draw
(the same captions, lengths and ground-truth windows: the protocols seed repetition ``r`` with
``seed + r``), so the per-repetition values in the records (``extra.per_repetition``) are paired.
For each pair of methods and each metric this page shows the mean paired difference A - B, its
95 % interval by the paired t distribution (:func:`evaluators.metrics.paired.paired_difference`)
and whether it excludes 0. A difference whose interval contains 0 is printed as not significant
and is not ranked. With fewer than 2 shared repetitions no interval exists and the pair is left out.

Against a paper, only the published ``mean ± interval`` exists, so the comparison is **unpaired**
(:func:`evaluators.metrics.paired.unpaired_vs_published`): Welch's interval for our mean minus the
paper's, our standard error from our repetitions, the paper's recovered from its ``±`` and the
repetitions its table states (``repetitions`` in ``references/*.yaml``; the T2M evaluation prints
``1.96 * std_pop / sqrt(R)``). Only comparable records (the predicate the caller passes: real
data, paper scale, the paper's setting) and paper cells with an interval are compared. Nothing is
shared between the two runs, so the interval is much wider than a paired one, and it covers the
repetition noise of both runs only, not a difference of setting.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable

import pandas as pd

from evaluators.metrics.info import metric_info
from evaluators.metrics.paired import paired_difference, unpaired_from_intervals, unpaired_vs_published
from leaderboards.references import Cell, Paper, Table

MIN_REPS = 2


def _group_key(rec: dict) -> tuple:
    ev = (rec.get("extra") or {}).get("evaluator") or {}
    ev_id = ev.get("sha256") or ev.get("cache_key") or ev.get("config") or ""
    return (rec["dataset"], rec["protocol"], rec.get("variant", ""), rec["data"], rec["scale"], rec["seed"], str(ev_id))


def paired_groups(records: Iterable[dict]) -> dict[tuple, list[dict]]:
    """Records whose repetitions share their draws, grouped; only groups of two or more methods."""
    groups: dict[tuple, list[dict]] = {}
    for r in records:
        reps = (r.get("extra") or {}).get("per_repetition")
        if isinstance(reps, list) and len(reps) >= MIN_REPS and r.get("variant", "") != "real":
            groups.setdefault(_group_key(r), []).append(r)
    return {k: sorted(v, key=lambda r: r["method"]) for k, v in groups.items() if len({r["method"] for r in v}) > 1}


def compare(a: dict, b: dict) -> dict[str, dict]:
    """Metric -> paired comparison of records ``a`` and ``b`` (A - B) over their shared repetitions."""
    ra, rb = a["extra"]["per_repetition"], b["extra"]["per_repetition"]
    if len(ra) != len(rb):
        return {}
    out = {}
    for key in ra[0]:
        if all(key in x and key in y for x, y in zip(ra, rb, strict=True)):
            va, vb = [float(x[key]) for x in ra], [float(y[key]) for y in rb]
            out[key] = paired_difference(va, vb, higher_is_better=metric_info(key).higher_is_better)
    return out


def cell(c: dict) -> str:
    text = f"{c['diff']:+.3f} [{c['low']:+.3f}, {c['high']:+.3f}]"
    verdict = c.get("verdict", "")
    return f"{text} **{verdict}**" if c["excludes_zero"] else f"{text} not significant"


def vs_paper(rec: dict, key: str, ref: Cell, paper_reps: int) -> dict | None:
    """Unpaired comparison of ``rec``'s metric ``key`` (ours - paper) with a paper cell; None when
    the cell has no interval or the record has fewer than 2 repetitions of the metric."""
    if ref.value is None or ref.ci95 is None:
        return None
    hib = metric_info(key).higher_is_better
    reps = (rec.get("extra") or {}).get("per_repetition")
    if isinstance(reps, list) and len(reps) >= MIN_REPS and all(key in r for r in reps):
        return unpaired_vs_published([float(r[key]) for r in reps], ref.value, ref.ci95, published_reps=paper_reps,
                                     higher_is_better=hib)
    m = (rec.get("metrics") or {}).get(key) or {}
    n = int((rec.get("extra") or {}).get("repetitions") or 0)
    if m.get("value") is None or m.get("ci95") is None or n < MIN_REPS:
        return None
    # a record without per-repetition values: its own mean ± 1.96 std_pop / sqrt(R), as the paper's
    return unpaired_from_intervals(float(m["value"]), float(m["ci95"]), n, ref.value, ref.ci95, paper_reps,
                                   higher_is_better=hib)


def _paper_tables(papers: Iterable[Paper]) -> list[tuple[Paper, Table]]:
    return [(p, t) for p in papers for t in p.tables
            if t.repetitions is not None and t.column_axis == "metric" and t.reproduces]


def render_vs_paper(records: list[dict], papers: Iterable[Paper], comparable: Callable[[dict], bool]) -> list[str]:
    """The unpaired section: one table per paper table that states its repetitions."""
    lines = ["## Against the paper (unpaired)", "",
             "Only a mean and its 95 % interval are published, so nothing is paired: each cell is our mean minus "
             "the paper's with Welch's 95 % interval (our standard error from our repetitions; the paper's from "
             "its ± as half / 1.96 · sqrt(R / (R - 1)), assuming the ± is 1.96 · population std / sqrt(R) over "
             "the R repetitions its table states, as the T2M evaluation prints it; Welch-Satterthwaite degrees of "
             "freedom; repetition means taken as normal). Labelled *unpaired*; **ours better** / **ours worse** only "
             "when the interval excludes 0. It covers the repetition noise of "
             "both runs, not a difference of setting. Only comparable records (real data, paper scale, the "
             "paper's setting) and paper cells with a ± are compared.", ""]
    shown = False
    for paper, table in _paper_tables(papers):
        rows = []
        for rec in records:
            if not comparable(rec) or not (rec["protocol"] == table.protocol or rec["protocol"].startswith(table.protocol)):
                continue
            if table.datasets and rec["dataset"] not in table.datasets:
                continue
            if table.variant_prefix and not rec.get("variant", "").startswith(table.variant_prefix):
                continue
            target = table.reproduced_row(rec["method"], rec.get("variant", ""))
            prow = next((r for r in table.rows if r.name == target), None) if target else None
            if prow is None:
                continue
            extra = rec.get("extra") or {}
            r_ours = len(extra.get("per_repetition") or []) or extra.get("repetitions", "")
            row = {"Measured": rec["method"] + (f" [{rec['variant']}]" if rec.get("variant") else ""),
                   "vs paper row": prow.name, "R ours": str(r_ours), "R paper": str(table.repetitions)}
            for key, label in table.columns.items():
                ref = prow.cells.get(key)
                if ref is None or ref.status == "not_reported":
                    row[label] = ""
                elif ref.value is None or ref.ci95 is None:
                    row[label] = "no ± published"
                else:  # empty when this record does not measure the metric
                    comp = vs_paper(rec, key, ref, table.repetitions)
                    flag = " (paper value UNVERIFIED)" if ref.status == "unverified" else ""
                    text = "" if comp is None else "unpaired " + cell(comp).replace("**A ", "**ours ") + flag
                    row[label] = text
            rows.append(row)
        if rows:
            shown = True
            lines += [f"### {table.title}: {table.source} ({paper.leaderboard}.md)", "",
                      f"paper repetitions: {table.repetitions} ({table.repetitions_source})", "",
                      pd.DataFrame(rows).fillna("").to_markdown(index=False, disable_numparse=True), ""]
    if not shown:
        lines += ["_No comparable record (real data, paper scale, the paper's setting) of a table that states its "
                  "repetitions yet._", ""]
    return lines


def render_head_to_head(records: Iterable[dict], papers: Iterable[Paper] = (),
                        comparable: Callable[[dict], bool] | None = None) -> str:
    """The page: paired comparisons between methods, then (with ``papers`` and a ``comparable``
    predicate) the unpaired comparisons of comparable records with the papers' numbers."""
    records = list(records)
    vs = render_vs_paper(records, papers, comparable) if comparable is not None else []
    groups = paired_groups(records)
    lines = ["# Head-to-head comparisons", "",
             "Generated by `python -m leaderboards` from the run records. Each cell is the mean paired difference "
             "A - B over the repetitions both methods share (same seeds, so the same captions, lengths and "
             "ground-truth windows), with its 95 % interval (paired t, R - 1 degrees of freedom). **A better** / "
             "**A worse** only when the interval excludes 0 (the metric's direction decides which); otherwise "
             "*not significant*, and the pair is not ranked. Synthetic-data and smoke-scale rows are pipeline "
             "checks of the comparison, not claims about the papers.", ""]
    if not groups:
        return "\n".join(lines + ["_No two methods have records with shared repetitions yet._", ""] + vs)
    for (dataset, protocol, variant, data, scale, seed, _), recs in sorted(groups.items()):
        rows = []
        for a, b in itertools.combinations(recs, 2):
            comp = compare(a, b)
            if comp:
                rows.append({"A vs B": f"{a['method']} vs {b['method']}", "R": str(len(a["extra"]["per_repetition"])),
                             **{k: cell(v) for k, v in comp.items()}})
        if not rows:
            continue
        title = f"## {protocol} on {dataset}" + (f" [{variant}]" if variant else "")
        lines += [title, "", f"data: {data}, scale: {scale}, seed: {seed}", "",
                  pd.DataFrame(rows).fillna("").to_markdown(index=False, disable_numparse=True), ""]
    return "\n".join(lines + vs)
