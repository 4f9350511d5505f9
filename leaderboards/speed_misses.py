"""``speed.md``'s "Why the misses": the evidence behind each ratio against the authors' code.

A side-by-side file (``benchmarks/side_by_side/<cpu>/<workload>.json``) may carry, beside its timing:

- ``profile``: one extra untimed call of each side under torch.profiler, its top ops by self CPU
  time (:func:`benchmarks.profiling.top_ops`): where the time goes before (the authors' code,
  the suite's eager path where it is timed) and after the suite's changes;
- ``floor``: the suite's dense products (matmuls, convolutions) replayed alone with the model's
  weights, alternated in one process with both sides (:mod:`benchmarks.floor`). No
  implementation of the same math with these kernels runs faster than the floor, so
  ``official_s / floor_s`` is the best ratio any of them could reach.

Both survive a loaded machine (shares of one call; a ratio of medians alternated in one
process), so a file may hold a quiet timing and evidence from a later, loaded run
(``evidence_run``). This module renders that evidence; the timing table is
:func:`leaderboards.speed_summary.versus_authors`.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from leaderboards.md_format import _fmt, _md
from leaderboards.speed_summary import _speedup_ratio, load_side_by_side

PROFILE_SIDES = (("official", "authors' code"), ("suite_eager", "suite, eager path"), ("suite", "suite"))


def _verdict(doc: dict) -> str:
    target = doc.get("target")
    if target is None:
        return "no target"
    ok = float(doc["ratio"]) >= float(target) if _speedup_ratio(doc) else float(doc["ratio"]) <= float(target)
    return "met" if ok else "missed"


def _reach(doc: dict, floor: dict) -> str:
    """What the floor says about the target: unreachable, or how close to its floor the suite must get."""
    target, best = doc.get("target"), floor.get("best_possible_ratio")
    if target is None or best is None:
        return ""
    need = float(best) / float(target)  # the suite's allowed time (official / target) over the floor
    if need < 1.0:
        return f"unreachable (best possible {best:.2f} < {float(target):.2f})"
    return f"suite ≤ {need:.2f} × floor"


def floor_table(docs: list[tuple[Path, dict]]) -> pd.DataFrame:
    rows = []
    for _, d in docs:
        f = d.get("floor")
        if not isinstance(f, dict) or f.get("floor_s") is None:
            continue
        rows.append({
            "workload": d["workload"], "machine": f"{d['machine']}, {d.get('threads', '?')} thr",
            "ratio / target": f"{float(d['ratio']):.2f} / " + ("" if d.get("target") is None
                                                               else f"{float(d['target']):.2f}"),
            "verdict": _verdict(d),
            "authors (s)": _fmt(f.get("official_s"), 4), "suite (s)": _fmt(f.get("suite_s"), 4),
            "floor (s)": _fmt(f.get("floor_s"), 4), "floor, cache-resident weights (s)": _fmt(f.get("hot_s"), 4),
            "best possible ratio": _fmt(f.get("best_possible_ratio")),
            "suite / floor": _fmt(f.get("suite_over_floor")),
            "target needs": _reach(d, f),
            "products replayed": ", ".join(f"{k} {v}" for k, v in (f.get("products") or {}).items()),
            "cpu/wall": _fmt(f.get("cpu_over_wall")),
        })
    return pd.DataFrame(rows)


def _profile_line(prof: dict) -> str:
    ops = ", ".join(f"`{o['op']}` {100 * o['share']:.1f} %" for o in prof.get("top_ops", [])
                    if o.get("share") is not None)
    ops_s, wall, dense = prof.get("ops_self_s"), prof.get("profiled_wall_s"), prof.get("dense_self_s")
    tail = []
    if ops_s and wall:
        tail.append(f"ops {100 * ops_s / wall:.0f} % of the profiled call's {_fmt(wall)} s")
    if ops_s and dense is not None:
        tail.append(f"dense products {100 * dense / ops_s:.0f} % of the ops' time")
    return ops + (f" ({'; '.join(tail)})" if tail else "")


def profile_lines(docs: list[tuple[Path, dict]]) -> list[str]:
    out = []
    for _, d in docs:
        prof = d.get("profile")
        if not isinstance(prof, dict):
            continue
        ev = d.get("evidence_run")
        when = (f" (profile and floor measured at {ev.get('commit')}, {str(ev.get('date'))[:16]}, cpu/wall "
                f"{_fmt(ev.get('cpu_over_wall'))}; the timing above is the earlier quiet run's)" if ev else "")
        out.append(f"- **{d['workload']}** on {d['machine']} ({float(d['ratio']):.2f}, {_verdict(d)}){when}:")
        out += [f"  - {label}: {_profile_line(prof[key])}" for key, label in PROFILE_SIDES
                if isinstance(prof.get(key), dict)]
    return out


def why_the_misses(bench_dirs: list[Path]) -> list[str]:
    """The "Why the misses" subsection: the floor table and the per-side profiles (empty without evidence)."""
    docs = load_side_by_side(bench_dirs)
    ft, lines = floor_table(docs), profile_lines(docs)
    if not len(ft) and not lines:
        return []
    parts = ["## Why the misses: profiles and floors against the authors' code\n",
             "For each side-by-side workload whose file carries its evidence. `floor`: the suite's dense "
             "products (every matmul and convolution one call launches, recorded by torch.profiler) replayed "
             "back to back with the model's own weights and nothing else (`benchmarks/floor.py`), timed "
             "alternating with both sides in one process; `cache-resident weights`: the same products, each "
             "against the first weight of its shape (where it is much faster, the floor is reading weights "
             "from memory). Attention inside one fused SDPA kernel and every other op are left out, so the "
             "floor is a lower bound and `best possible ratio` = authors' time / floor an upper bound on what "
             "any implementation of the same math with these kernels could reach. The kernels are the row's "
             "own: oneMKL's for the default paths, oneDNN's packed linear for the `_onednn` rows "
             "(`methods/common/onednn_linear.py`; on AMD CPUs oneMKL runs its AVX2 code, oneDNN its AVX-512 "
             "code), so an `unreachable` verdict holds for that row's kernels only. `target needs`: the suite's "
             "time at its target, as a multiple of the floor. The seconds are from the floor's own alternation "
             "(cpu/wall in the last column), not the timing table above.\n"]
    if len(ft):
        parts.append(_md(ft))
    if lines:
        parts += ["Where each side's time goes (one extra untimed call under torch.profiler; top ops by self CPU "
                  "time as shares of all ops' self time; the rest of the call is Python and dispatch outside "
                  "ops):\n", "\n".join(lines) + "\n"]
    return parts
