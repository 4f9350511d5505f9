"""The top layer of ``speed.md``: what each method costs, read in ten seconds.

Three blocks come before the engineering detail of :mod:`leaderboards.speed`:

- one short table per machine (paper-scale benchmark files; every file when none is paper
  scale): parameters, GMACs per step, sampling time per sample at batch 1 and batch 32,
  memory of one batch-32 call and training samples/s, each cell with the machine named in its
  row and a † where the timed region was contended;
- one sentence per method saying where it stands against its fraction-of-peak target;
- "versus the authors' code": the side-by-side timings in ``benchmarks/side_by_side/<cpu>/*.json``
  (the same workload run through the authors' code and through this suite, alternating calls
  in one process, :mod:`benchmarks.alternate`; one folder per CPU model), each ratio beside its
  target, the machines that measured one workload in adjacent rows.

The notes that restated a row's verdict ("misses target by N points") become one column of
:func:`target_table`, so the detail sections keep every number without repeating the table.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd

from leaderboards.md_format import BenchmarkFileError, _fmt, _md

SIDE_BY_SIDE = "side_by_side"
SIDE_BY_SIDE_KEYS = ("workload", "method", "batch", "official_s", "suite_s", "ratio", "target", "machine")
VERDICT_NOTE = re.compile(r"^(misses target by [0-9.]+ points of peak|meets target)$")


def _fp32(e: dict) -> bool:
    return e.get("precision", "fp32") == "fp32"


def _dagger(e: dict | None) -> str:
    return " †" if e and e.get("contended") else ""


def short_machine(mi: dict[str, Any]) -> str:
    """``AMD EPYC (2 cpus)`` or the GPU's name: the hardware a reader needs beside a time."""
    if mi.get("gpu"):
        return str(mi["gpu"])
    cpu = mi.get("cpu", {})
    name = cpu.get("brand_raw") if isinstance(cpu, dict) else str(cpu)
    count = cpu.get("count") if isinstance(cpu, dict) else None
    return f"{name or mi.get('processor') or '?'} ({count or mi.get('cpu_count', '?')} cpus)"


def _reference_rows(es: list[dict], method: str) -> tuple[dict | None, dict | None]:
    """The fp32 batch-1 and batch-32 sampling rows of ``method`` at its default step count
    (the batch-32 row's steps; the per-method table of the detail section uses the same rows)."""
    samp = [e for e in es if e.get("what") == "sampling" and _fp32(e) and e.get("method") == method]
    b32 = next((e for e in samp if e.get("batch") == 32), None)
    b1s = [e for e in samp if e.get("batch") == 1]
    ref = b32.get("steps") if b32 else None
    b1 = next((e for e in b1s if e.get("steps") == ref), None) or (b1s[-1] if b1s else None)
    return b1, b32


def _methods(es: list[dict]) -> list[str]:
    return sorted({e["method"] for e in es if e.get("method") and e.get("what") in
                   ("sampling", "one denoiser forward", "train step")})


def headline_table(es: list[dict], machine: str) -> pd.DataFrame:
    """One row per method: the cost to sample and to train, with the machine in every row."""
    den = {e["method"]: e for e in es if e.get("what") == "one denoiser forward"}
    train = {e["method"]: e for e in es if e.get("what") == "train step"}
    rows = []
    for m in _methods(es):
        b1, b32 = _reference_rows(es, m)
        d, t = den.get(m, {}), train.get(m)
        steps = (b32 or b1 or {}).get("steps")
        rows.append({
            "method": m,
            "on": machine,
            "params (M)": _fmt(d.get("params_m")),
            "GMACs / step": _fmt(d.get("gmacs")),
            "steps": _fmt(steps),
            "sample, batch 1 (s / sample)": _fmt(b1.get("aits_s")) + _dagger(b1) if b1 else "",
            "sample, batch 32 (s / sample)": _fmt(b32.get("aits_s")) + _dagger(b32) if b32 else "",
            "memory, batch-32 call (MiB)": _fmt(b32.get("heap_delta_mib")) if b32 else "",
            "train (samples/s, batch)": f"{_fmt(t.get('samples_per_s'))}{_dagger(t)} ({t.get('batch')})" if t else "",
        })
    return pd.DataFrame(rows)


def _against(e: dict | None) -> str | None:
    if not e or e.get("fraction_of_peak") is None:
        return None
    frac, target = e["fraction_of_peak"], e.get("target_fraction")
    if target is None:
        return f"{frac:.2f} of peak at batch {e.get('batch')} (no target)"
    verdict = "meets it" if frac >= target else f"misses by {100 * (target - frac):.1f} points"
    return f"{frac:.2f} of peak at batch {e.get('batch')} against a target of {target:.2f} ({verdict})"


def standing_sentences(es: list[dict]) -> list[str]:
    """One sentence per method: its fraction of the fp32 peak against its target at batch 1 and 32."""
    out = []
    for m in _methods(es):
        b1, b32 = _reference_rows(es, m)
        parts = [p for p in (_against(b32), _against(b1)) if p]
        if parts:
            out.append(f"- **{m}**: " + "; ".join(parts) + ".")
        else:
            out.append(f"- **{m}**: no sampling row measured against a target.")
    return out


def target_table(es: list[dict]) -> pd.DataFrame:
    """Every timed sampling row with a fraction of peak: its verdict as a column, and what the
    row's note adds beyond the verdict (e.g. a step cap)."""
    rows = []
    timed = [e for e in es if e.get("what") == "sampling" and e.get("fraction_of_peak") is not None]
    for e in sorted(timed, key=lambda e: (not _fp32(e), e["method"], e.get("batch") or 0, e.get("steps") or 0)):
        frac, target = e["fraction_of_peak"], e.get("target_fraction")
        verdict = "" if target is None else ("met" if frac >= target else f"misses by {100 * (target - frac):.1f} pts")
        extra = [p for p in str(e.get("note") or "").split("; ") if p and not VERDICT_NOTE.match(p)]
        rows.append({"method": e["method"], "batch": _fmt(e.get("batch")), "steps": _fmt(e.get("steps")),
                     "precision": e.get("precision", "fp32"), "fraction of peak": f"{frac:.3f}" + _dagger(e),
                     "target": _fmt(target), "against target": verdict, "note": "; ".join(extra)})
    return pd.DataFrame(rows)


def headline(files: list[tuple[Path, dict]], entries) -> list[str]:
    """The short tables (one per machine) and the standing sentences; ``entries`` flattens a file."""
    paper = [(p, d) for p, d in files if d["machine_info"].get("scale") == "paper"]
    chosen = paper or files
    if not chosen:
        return []
    parts = ["## At a glance: what each method costs\n",
             "Time to generate one sample (text2motion, action) or one pose estimate, at "
             + ("the papers' model sizes" if paper else "the scale each file names")
             + ", fp32, at each method's default step count, on the machine in each row. `batch 32` is the "
             "amortised time per sample of one batch-32 call. † = measured while the cores were contended "
             "(the figure is an upper bound). Training samples/s: one optimizer step at the batch shown.\n"]
    for path, data in chosen:
        mi = data["machine_info"]
        es = entries(data)
        parts.append(f"### {short_machine(mi)}: {mi.get('scale', '?')} scale ({path.stem}, "
                     f"{str(data.get('datetime', '?'))[:10]})\n")
        parts.append(_md(headline_table(es, short_machine(mi))))
        parts.append("Against the fraction-of-peak targets (achieved FLOP/s over this machine's fp32 matmul peak):\n")
        parts.append("\n".join(standing_sentences(es)) + "\n")
    return parts


# -- versus the authors' code ------------------------------------------------------------------

def load_side_by_side(bench_dirs: list[Path]) -> list[tuple[Path, dict]]:
    """The side-by-side files of every benchmark folder, each checked for the fields the table reads,
    ordered by workload and then machine. A ratio holds on the CPU that measured it, so each CPU model
    keeps its files in its own folder (``side_by_side/<cpu>/``; files directly in ``side_by_side/``
    are read too)."""
    out = []
    for d in bench_dirs:
        root = Path(d) / SIDE_BY_SIDE
        for p in sorted(root.glob("*.json")) + sorted(root.glob("*/*.json")):
            try:
                doc = json.loads(p.read_text(encoding="utf-8"))
            except json.JSONDecodeError as e:
                raise BenchmarkFileError(f"{p}: not valid JSON ({e})") from e
            missing = [k for k in SIDE_BY_SIDE_KEYS if not isinstance(doc, dict) or k not in doc]
            if missing:
                raise BenchmarkFileError(f"{p}: a side-by-side file needs {', '.join(missing)}")
            out.append((p, doc))
    return sorted(out, key=lambda pd_: (str(pd_[1]["workload"]), str(pd_[1]["machine"])))


def _speedup_ratio(doc: dict) -> bool:
    """Whether ``ratio`` is the authors' time over the suite's (higher is better) rather than the
    inverse: decided from the two times the file also stores, so either convention renders right."""
    off, suite, ratio = float(doc["official_s"]), float(doc["suite_s"]), float(doc["ratio"])
    if off <= 0 or suite <= 0:
        return True
    return abs(ratio - off / suite) <= abs(ratio - suite / off)


def side_by_side_table(docs: list[tuple[Path, dict]]) -> pd.DataFrame:
    rows = []
    for _, d in docs:
        up = _speedup_ratio(d)
        ratio, target = float(d["ratio"]), d.get("target")
        if target is None:
            verdict = ""
        else:
            ok = ratio >= float(target) if up else ratio <= float(target)
            verdict = "met" if ok else "missed"
            if d.get("distorted"):  # a loaded machine skews the ratio either way: no claim from it
                verdict = f"not judged (distorted; would read {verdict})"
        sense = "authors / suite" if up else "suite / authors"
        cw = d.get("cpu_over_wall")
        rows.append({
            "workload": d["workload"], "method": d["method"], "batch": _fmt(d["batch"]),
            "authors' code (s)": _fmt(float(d["official_s"]), 4), "suite (s)": _fmt(float(d["suite_s"]), 4),
            "ratio": f"{ratio:.2f} ({sense})",
            "target": "" if target is None else f"{'≥' if up else '≤'} {float(target):.2f}",
            "against target": verdict,
            "machine": f"{d['machine']}, {d.get('threads', '?')} thr",
            "cpu/wall": ("" if cw is None else f"{float(cw):.2f}") + (" **distorted**" if d.get("distorted") else ""),
            "first call (s)": ", ".join(f"{k} {_fmt(v)}" for k, v in (d.get("first_call_s") or {}).items()),
            "commit, date": f"{d.get('commit', '?')}, {str(d.get('date', '?'))[:10]}",
        })
    return pd.DataFrame(rows)


def versus_authors(bench_dirs: list[Path]) -> list[str]:
    docs = load_side_by_side(bench_dirs)
    if not docs:
        return []
    return ["## Versus the authors' code\n",
            "The same workload through the authors' code and through this suite, timed by alternating their "
            "calls in one process (`benchmarks/alternate.py`), so both see the same machine load; the ratio of "
            "the medians is the result, the absolute seconds hold only on the machine named. `distorted`: the "
            "run's CPU/wall ratio was under 0.9 × its threads (another process held the cores), so the ratio is "
            "not trusted. Files: `benchmarks/side_by_side/<cpu>/*.json`, one folder per CPU model: where two "
            "machines measured a workload their rows sit together, and the ratio to compare with a target is "
            "each machine's own.\n",
            _md(side_by_side_table(docs))]
