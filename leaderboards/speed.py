"""Speed leaderboard (``speed.md``) from pytest-benchmark JSON; the plots are :mod:`leaderboards.plots`.

Inputs: ``leaderboards/benchmarks/*.json`` written by
``pytest benchmarks --benchmark-only --benchmark-json=...`` (``machine_info`` is filled by
``benchmarks/conftest.py``), and run records whose variant is ``steps=N`` (the step /
iteration sweeps of the text2motion and pose protocols). Every table states the machine
it was measured on; paper-reported inference numbers are shown beside, labelled with
their own hardware, never mixed into measured cells.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from leaderboards.md_format import BenchmarkFileError, _fmt, _md, render_reference
from leaderboards.references import load_papers
from leaderboards.speed_drift import DRIFT_KIND, load_drift, render_drift
from leaderboards.speed_misses import why_the_misses
from leaderboards.speed_summary import headline, target_table, versus_authors

log = logging.getLogger(__name__)

def machine_label(mi: dict[str, Any]) -> str:
    cpu = mi.get("cpu", {})
    cpu_name = cpu.get("brand_raw") if isinstance(cpu, dict) else str(cpu)
    parts = [mi.get("gpu") or "", f"{cpu_name or mi.get('processor', '?')} ({cpu.get('count', '?') if isinstance(cpu, dict) else '?'} cpus)",
             f"torch {mi.get('torch', '?')}"]
    if mi.get("cuda"):
        parts.append(f"CUDA {mi['cuda']}")
    if mi.get("driver"):
        parts.append(f"driver {mi['driver']}")
    return ", ".join(p for p in parts if p)


def load_benchmarks(dirs: list[Path]) -> list[tuple[Path, dict]]:
    out = []
    for d in dirs:
        if not Path(d).exists():
            continue
        for p in sorted(Path(d).glob("*.json")):
            try:
                data = json.loads(p.read_text(encoding="utf-8"))
            except json.JSONDecodeError as e:
                raise BenchmarkFileError(f"{p}: not valid JSON ({e})") from e
            if isinstance(data, dict) and data.get("kind") == DRIFT_KIND:
                continue  # the bf16 drift file: rendered by render_drift, not a pytest-benchmark run
            if not isinstance(data, dict) or "benchmarks" not in data or "machine_info" not in data:
                raise BenchmarkFileError(f"{p}: not a pytest-benchmark JSON (needs 'benchmarks' and 'machine_info')")
            out.append((p, data))
    return out


def _entries(data: dict) -> list[dict]:
    """Flatten pytest-benchmark entries: name, test function, median/IQR (s), rounds, extra_info."""
    out = []
    for b in data["benchmarks"]:
        st = b.get("stats", {}) or {}
        out.append({"name": b.get("name", "?"), "test": b.get("name", "?").split("[", 1)[0],
                    "median": st.get("median"), "iqr": st.get("iqr"), "rounds": st.get("rounds"),
                    **(b.get("extra_info") or {})})
    return out


def _fp32(e: dict) -> bool:
    """A row run at the fp32 default (rows without a ``precision`` predate the setting: fp32)."""
    return e.get("precision", "fp32") == "fp32"


def _cw(e: dict | None) -> str:
    """``0.95 (1 thr)`` or ``0.41 (2 thr) contended``: CPU time / wall time of the timed region."""
    if not e or e.get("cpu_over_wall") is None:
        return ""
    return f"{e['cpu_over_wall']:.2f} ({e.get('threads', '?')} thr)" + (" **contended**" if e.get("contended") else "")


def _c(e: dict | None) -> str:
    """`` †`` after a figure measured while contended."""
    return " †" if e and e.get("contended") else ""


def _frac_cell(frac: float | None, target: float | None) -> str:
    """``0.12 / 0.35 (−23 pts)``: achieved fraction of fp32 peak, target, and the miss."""
    if frac is None:
        return ""
    if target is None:
        return f"{frac:.3f}"
    verdict = "met" if frac >= target else f"misses by {100 * (target - frac):.1f} pts"
    return f"{frac:.3f} / {target:.2f} ({verdict})"


def _method_table(es: list[dict]) -> pd.DataFrame:
    """One row per method: size, per-step cost, AITS, memory, fraction of peak vs target, training."""
    samp = [e for e in es if e.get("what") == "sampling" and _fp32(e)]
    den = {e["method"]: e for e in es if e.get("what") == "one denoiser forward"}
    train = {e["method"]: e for e in es if e.get("what") == "train step"}
    methods = sorted({e["method"] for e in samp} | set(den) | set(train))
    rows = []
    for m in methods:
        b32 = next((e for e in samp if e["method"] == m and e.get("batch") == 32), None)
        ref_steps = b32.get("steps") if b32 else None
        b1s = [e for e in samp if e["method"] == m and e.get("batch") == 1]
        b1 = next((e for e in b1s if e.get("steps") == ref_steps), None) or (b1s[-1] if b1s else None)
        d, t = den.get(m, {}), train.get(m, {})
        rows.append({
            "method": m,
            "params (M, step module)": _fmt(d.get("params_m")),
            "GMACs / step (b1, fvcore)": _fmt(d.get("gmacs")),
            "step latency (ms, b1)": _fmt(1e3 * d["median"]) if d.get("median") else "",
            "steps": _fmt(b1.get("steps") if b1 else ref_steps),
            "AITS b1 (s)": _fmt(b1.get("aits_s")) + _c(b1) if b1 else "",
            "AITS b32 amortised (s)": _fmt(b32.get("aits_s")) + _c(b32) if b32 else "",
            "cpu/wall b1; b32": "; ".join(x for x in (_cw(b1), _cw(b32)) if x),
            "call memory b32 (MiB)": _fmt(b32.get("heap_delta_mib")) if b32 else "",
            "peak fraction b1 / target": _frac_cell(b1.get("fraction_of_peak"), b1.get("target_fraction")) if b1 else "",
            "peak fraction b32 / target": _frac_cell(b32.get("fraction_of_peak"), b32.get("target_fraction"))
            if b32 else "",
            "train samples/s (batch)": f"{_fmt(t.get('samples_per_s'))} ({t.get('batch')})" if t else "",
        })
    return pd.DataFrame(rows)


def _steps_table(es: list[dict]) -> pd.DataFrame:
    """Median sampling latency (ms) at batch 1, methods × step counts."""
    samp = [e for e in es if e.get("what") == "sampling" and e.get("batch") == 1 and e.get("median") and _fp32(e)]
    if not samp:
        return pd.DataFrame()
    steps = sorted({e.get("steps") for e in samp if e.get("steps") is not None})
    rows = []
    for m in sorted({e["method"] for e in samp}):
        row = {"method": m}
        for e in samp:
            if e["method"] == m:
                row["default" if e.get("steps") is None else str(e["steps"])] = f"{1e3 * e['median']:.1f}" + _c(e)
        rows.append(row)
    cols = ["method", *[str(s) for s in steps]] + (["default"] if any(e.get("steps") is None for e in samp) else [])
    return pd.DataFrame(rows, columns=cols)


def _precision_table(es: list[dict]) -> pd.DataFrame:
    """Full sampling at ``precision: bf16`` beside the fp32 row of the same call (batch 1 and 32, the
    default step count): AITS, speed-up, and the fraction of the bf16 peak against the same target."""
    samp = [e for e in es if e.get("what") == "sampling" and e.get("median")]
    low = [e for e in samp if not _fp32(e)]
    rows = []
    for e in sorted(low, key=lambda e: (e["method"], e.get("batch", 0), e.get("precision"))):
        ref = next((r for r in samp if _fp32(r) and r["method"] == e["method"] and r.get("batch") == e.get("batch")
                    and r.get("steps") == e.get("steps")), None)
        rows.append({
            "method": e["method"], "batch": _fmt(e.get("batch")), "steps": _fmt(e.get("steps")),
            "precision": e.get("precision"),
            "AITS fp32 (s)": _fmt(ref.get("aits_s")) + _c(ref) if ref else "",
            "AITS (s)": _fmt(e.get("aits_s")) + _c(e),
            "speed-up": f"×{ref['median'] / e['median']:.2f}" if ref else "",
            "cpu/wall": _cw(e),
            "peak fraction / target": _frac_cell(e.get("fraction_of_peak"), e.get("target_fraction"))
            + (f" (of the {e.get('peak_dtype', e.get('precision'))} peak)" if e.get("fraction_of_peak") is not None else ""),
        })
    return pd.DataFrame(rows)


def _switch_table(es: list[dict]) -> pd.DataFrame:
    """Denoiser forward (batch 8) under fp32 / bf16 autocast / bf16 weights cast once (what
    ``precision: bf16`` samples with) / torch.compile: ms, speed-up, error."""
    sw = [e for e in es if str(e.get("what", "")).startswith("denoiser forward (")]
    rows = []
    for m in sorted({e["method"] for e in sw}):
        by = {e["what"][len("denoiser forward ("):-1]: e for e in sw if e["method"] == m}
        base = by.get("fp32", {}).get("median")
        row = {"method": m}
        for mode in ("fp32", "bf16_autocast", "bf16_weights", "compile"):
            e = by.get(mode)
            if e and e.get("median"):
                cell = f"{1e3 * e['median']:.2f}" + _c(e)
                if mode != "fp32" and base:
                    cell += f" (×{base / e['median']:.2f}, {e.get('note', '').replace('rel. max error vs fp32 ', 'err ')})"
                if e.get("first_call_s") is not None:
                    cell += f"; first call {e['first_call_s']:.2f} s"
                row[f"{mode} (ms)"] = cell
        rows.append(row)
    return pd.DataFrame(rows)


def _other_table(es: list[dict]) -> pd.DataFrame:
    rows = []
    for e in es:
        if e.get("method"):
            continue
        rows.append({"benchmark": e["name"], "what": _fmt(e.get("what")),
                     "median (ms)": _fmt(1e3 * e["median"], 4) + _c(e) if e.get("median") else "",
                     "rounds": _fmt(e.get("rounds")), "cpu/wall": _cw(e),
                     "result": "; ".join(f"{k}={_fmt(e[k])}" for k in ("gflops", "samples_per_s", "batch", "alone_s", "concurrent_s",
                                                                         "concurrent_over_alone", "threads_per_process",
                                                                         "omp_wait_policy",
                                                                         "feeder_over_step", "files_per_s")
                                         if e.get(k) is not None)})
    return pd.DataFrame(rows)


def _miss_profiles(es: list[dict]) -> list[str]:
    """Under the per-method table: for each sampling row that misses its target, the top ops by
    self CPU time of one profiled call (``extra_info["profile"]``, benchmarks/profiling.py)."""
    lines = []
    for e in es:
        frac, target, prof = e.get("fraction_of_peak"), e.get("target_fraction"), e.get("profile")
        if e.get("what") != "sampling" or frac is None or target is None or frac >= target or not prof:
            continue
        ops = ", ".join(f"`{o['op']}` {100 * o['share']:.1f} %" for o in prof.get("top_ops", [])
                        if o.get("share") is not None)
        in_ops = (f"; time in ops {100 * prof['ops_self_s'] / e['median']:.0f} % of the timed median"
                  if e.get("median") and prof.get("ops_self_s") is not None else "")
        label = (None if _fp32(e) else e.get("precision")) or e.get("mode")
        lines.append(f"- {e['method']} b{e.get('batch')}{f' ({label})' if label else ''}, "
                     f"{frac:.3f} of peak against {target:.2f}: {ops}{in_ops}.")
    if not lines:
        return []
    return ["Profiles of the rows that miss their target (one extra untimed call under torch.profiler; "
            "share of the ops' total self CPU time; the rest of the call, if any, is Python and dispatch "
            "outside ops):\n", "\n".join(lines) + "\n"]


def _repetition_table(es: list[dict]) -> pd.DataFrame:
    """One text2motion repetition per method: seconds per part and the share outside generation."""
    rows = []
    for e in es:
        if e.get("what") != "text2motion repetition":
            continue
        share, target = e.get("share_outside_generation"), e.get("target_share_outside")
        verdict = "" if share is None or target is None else (
            "met" if share < target else f"misses by {100 * (share - target):.1f} pts")
        rows.append({
            "method": e.get("method"),
            "evaluated / MM gens": f"{e.get('evaluated_samples', '')} / {e.get('mm_generations', '')}",
            "generation (s)": _fmt(e.get("generation_s")),
            "evaluator GT (s)": _fmt(e.get("evaluator_gt_s")),
            "evaluator generated (s)": _fmt(e.get("evaluator_motion_s")),
            "evaluator text (s)": _fmt(e.get("evaluator_text_s")),
            "metrics (s)": _fmt(e.get("metrics_s")),
            "data + other (s)": _fmt((e.get("data_s") or 0.0) + (e.get("other_s") or 0.0)),
            "repetition (s)": _fmt(e.get("repetition_wall_s")) + _c(e),
            "outside generation / target": (f"{100 * share:.1f} % / < {100 * target:.0f} % ({verdict})"
                                            if share is not None and target is not None else _fmt(share)),
            "2nd repetition (GT windows reused)": _share_cell(e.get("share_outside_generation_warm"), target),
            "cpu/wall": _cw(e),
        })
    return pd.DataFrame(rows)


def _share_cell(share: float | None, target: float | None) -> str:
    if share is None:
        return ""
    if target is None:
        return f"{100 * share:.1f} %"
    return f"{100 * share:.1f} % ({'met' if share < target else f'misses by {100 * (share - target):.1f} pts'})"


def _repetition_section(es: list[dict]) -> list[str]:
    rt = _repetition_table(es)
    if not len(rt):
        return []
    notes = sorted({e["note"] for e in es if e.get("what") == "text2motion repetition" and e.get("note")})
    metric_parts = sorted({k for e in es if e.get("what") == "text2motion repetition"
                           for k in (e.get("parts_s") or {}) if k.startswith("metric_")})
    return ["### One text2motion repetition on synth_t2m (target: < 10 % outside generation)\n",
            "The protocol's own code path (`evaluators/protocols/text2motion.py`) timed by its exclusive spans "
            "(`evaluators/protocols/_timing.py`): `generation` = `method.generate` (main pass and MultiModality), "
            "`evaluator GT` = the T2M motion network on GT crops (GT pass and the real row's second GT pass), "
            "`evaluator generated` = on the generations, `metrics` = "
            + ", ".join(f"`{m[len('metric_'):]}`" for m in metric_parts) + ". "
            + ("Reduced run: " + "; ".join(notes) + ". " if notes else "")
            + "Shares, not absolute seconds, carry over to a full run. `2nd repetition`: the second repetition of "
            "the same call, reusing the GT crop windows the first embedded (`cache_gt_windows`, per call); the "
            "later repetitions of a 20-repetition run reuse more.\n", _md(rt)]


def _file_peak(es: list[dict], mi: dict) -> tuple[float | None, float | None]:
    """The file's one ceiling: ``machine_info["peak_gflops"]`` (measured once per run); older files
    without it: the fp32 / bf16 matmul rows."""
    if isinstance(mi.get("peak_gflops"), dict):
        return mi["peak_gflops"].get("fp32"), mi["peak_gflops"].get("bf16")
    rows = {e["what"]: e.get("peak_gflops") or e.get("gflops") for e in es
            if e.get("what") in ("fp32 matmul", "bf16 matmul")}
    return rows.get("fp32 matmul"), rows.get("bf16 matmul")


def _render_file(path: Path, data: dict) -> list[str]:
    es = _entries(data)
    mi = data["machine_info"]
    fp32, bf16 = _file_peak(es, mi)
    scale = mi.get("scale", "?")
    n_cont = sum(1 for e in es if e.get("contended"))
    parts = [f"## {path.stem}\n",
             f"Machine: {machine_label(mi)}; torch threads {mi.get('torch_threads', '?')}. Scale: **{scale}**. "
             f"Date: {data.get('datetime', '?')}. "
             + (f"fp32 matmul peak measured once in this run: {_fmt(fp32)} GFLOP/s"
                + (f" (bf16 {_fmt(bf16)})" if bf16 else "") + "." if fp32 else "No matmul peak in this file.")
             + (f" **{n_cont} timed rows contended** (marked †: "
                + ("other processes ran on more than a fifth of a core, on average, while the row was timed "
                   "(the machine's CPU time from /proc/stat less this process's)" if any(
                       e.get("others_cores") is not None for e in es) else
                   "CPU time / wall time of the timed region below 0.9 × threads: the threads did not all run, "
                   "because another process held the cores or because the call has serial parts (Python, "
                   "kernels too small to split); the file's note says whether the machine was shared")
                + ")." if n_cont else "")
             + (f" Note: {mi['note']}." if mi.get("note") else "") + "\n"]
    mt = _method_table(es)
    if len(mt):
        parts += ["### Per method\n",
                  "`peak fraction` = FLOPs of the whole sampling call (torch FlopCounterMode) / median time / fp32 "
                  "peak; targets are those stored in each row when it was measured (the current ones of `benchmarks/test_methods.py` since then; paper scale, fp32, CPU) and apply only to paper-scale files. "
                  "`GMACs / step` = fvcore on the module run once per step (CFG methods: the cond + uncond batch). "
                  "`call memory` = peak heap bytes in use above their level at the call's start (glibc mallinfo2, "
                  "polled; CPU) — the activations and workspaces of one batch-32 sampling call.\n", _md(mt)]
        skipped = {e["method"]: e.get("skipped_ops") for e in es if e.get("what") == "one denoiser forward"}
        if any(skipped.values()):
            parts.append("Ops fvcore skipped (not in GMACs): "
                         + "; ".join(f"{m}: {', '.join(v)}" for m, v in sorted(skipped.items()) if v) + ".\n")
        tt = target_table(es)
        if len(tt):
            parts += ["### Targets and misses (every timed sampling row)\n",
                      "The verdict of each sampling row against the fraction-of-peak target stored with it, and "
                      "what the row's note adds (e.g. a step cap).\n", _md(tt)]
        parts += _miss_profiles(es)
    pt = _precision_table(es)
    if len(pt):
        parts += ["### Sampling at bf16 (`precision: bf16`: weights cast once, sampler state fp32)\n",
                  "The same sampling call as the per-method rows at the default step count, with the method's "
                  "sampler `precision` set to bf16; `peak fraction` divides by this file's bf16 matmul peak and is "
                  "held to the same targets.\n", _md(pt)]
    st = _steps_table(es)
    if len(st):
        parts += ["### Sampling latency against steps (batch 1, median ms)\n", _md(st)]
    sw = _switch_table(es)
    if len(sw):
        parts += ["### bf16 autocast, bf16 weights (cast once) and torch.compile against fp32 (one denoiser forward, batch 8)\n", _md(sw)]
    parts += _repetition_section(es)
    ot = _other_table(es)
    if len(ot):
        parts += ["### Machine ceiling, evaluators and loaders\n", _md(ot)]
    return parts


def render_speed(bench_dirs: list[Path], records: list[dict]) -> str:
    parts = ["<!-- generated by `python -m leaderboards`; do not edit by hand -->\n", "# Speed, memory and FLOPs\n",
             "Measured with `pytest benchmarks --benchmark-only --benchmark-json=leaderboards/benchmarks/<name>.json` "
             "(`--paper-scale` for the papers' model sizes). Absolute times hold only on the machine named in each "
             "section; compare methods by the ratios measured in one run (`fraction_of_peak` is achieved FLOP/s over "
             "this machine's fp32 matmul peak measured in the same run).\n"]
    files = load_benchmarks(bench_dirs)
    parts += headline(files, _entries)
    parts += versus_authors(bench_dirs)
    parts.append("---\n\n# Details\n\nEverything behind the short tables: why the ratios against the authors' "
                 "code miss (profiles and floors); per file, the full per-method "
                 "table, every row against its target, the profiles of the misses, bf16, the step sweep, the "
                 "precision switches, the text2motion repetition and the machine ceiling; then the bf16 quality "
                 "drift, quality against steps and the papers' own inference numbers.\n")
    parts += why_the_misses(bench_dirs)
    if not files:
        parts.append("_No benchmark results committed yet (`leaderboards/benchmarks/` is empty)._\n")
    else:
        parts.append("Plot: `plots/sampling_latency_vs_steps.png` (batch-1 latency against steps, one curve per "
                     "method and benchmark file).\n")
    for path, data in files:
        parts += _render_file(path, data)
    for path, doc in load_drift(bench_dirs):
        parts += render_drift(path, doc)
    sweep = [r for r in records if r["variant"].startswith("steps=")]
    if sweep:
        rows = [{"method": r["method"], "dataset": r["dataset"], "steps": r["variant"].split("=", 1)[1],
                 **{k: f"{m['value']:.4g}" for k, m in r["metrics"].items() if m.get("value") is not None},
                 "data": r["data"], "scale": r["scale"]} for r in sweep]
        names = [f"`plots/quality_vs_{kind}_{p}.png`" for p in sorted({r["protocol"] for r in sweep})
                 for kind in ("steps", "time")]
        parts.append("## Quality against sampling steps (from the step-sweep run records)\n\n"
                     f"Plots (a panel per metric, 95 % intervals as error bars): {', '.join(names)}.\n")
        parts.append(pd.DataFrame(rows).fillna("").to_markdown(index=False, disable_numparse=True) + "\n")
    parts.append("## Paper-reported inference numbers (their hardware, not measured here)\n")
    for paper in load_papers():
        for t in paper.tables:
            if "aits_s" in t.columns or t.variant_prefix:
                parts.append(f"### {paper.leaderboard}: {t.title}\n\nSource: {t.source}."
                             + (f" Hardware: {t.hardware}." if t.hardware else "") + "\n")
                parts.append(render_reference(t))
    return "\n".join(parts).rstrip() + "\n"
