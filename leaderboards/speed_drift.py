"""The "bf16 quality drift" section of ``speed.md``, from the JSON ``python -m benchmarks.bf16_drift``
writes into ``leaderboards/benchmarks/`` (``kind: bf16_drift``; not a pytest-benchmark file)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from leaderboards.md_format import BenchmarkFileError, _fmt, _md

DRIFT_KIND = "bf16_drift"  # ``kind`` of the JSON written by ``python -m benchmarks.bf16_drift``
DRIFT_TITLE = "bf16 quality drift (synth_t2m, smoke scale, same seeds)"
DRIFT_METRICS = {"fid": "FID", "r_precision_top1": "R-precision top-1", "r_precision_top2": "R-precision top-2",
                 "r_precision_top3": "R-precision top-3", "mm_dist": "MM-Dist"}


def load_drift(dirs: list[Path]) -> list[tuple[Path, dict]]:
    """The bf16 drift JSONs (``kind: bf16_drift``) in ``dirs``; none -> ``[]``."""
    out = []
    for d in dirs:
        for p in sorted(Path(d).glob("*.json")) if Path(d).exists() else []:
            try:
                data = json.loads(p.read_text(encoding="utf-8"))
            except json.JSONDecodeError as e:
                raise BenchmarkFileError(f"{p}: not valid JSON ({e})") from e
            if not isinstance(data, dict) or data.get("kind") != DRIFT_KIND:
                continue
            missing = [k for k in ("methods", "label", "command", "data", "scale") if k not in data]
            if missing or not isinstance(data["methods"], dict):
                raise BenchmarkFileError(f"{p}: bf16 drift JSON without {missing or ['methods (a mapping)']}")
            out.append((p, data))
    return out


def _drift_rows(doc: dict) -> pd.DataFrame:
    """One row per (method, metric): fp32, bf16, Δ, fp32 between-repetition σ and |Δ|/σ."""
    rows = []
    for m, r in sorted(doc["methods"].items()):
        for key, name in DRIFT_METRICS.items():
            v = (r.get("metrics") or {}).get(key)
            if not v:
                continue
            std, ratio = v.get("fp32_std"), v.get("abs_diff_over_fp32_std")
            rows.append({"method": m, "metric": name, "fp32": f"{v['fp32']:.4g}", "bf16": f"{v['bf16']:.4g}",
                         "Δ (bf16 − fp32)": f"{v['diff']:+.3g}", "σ fp32 (between reps)": _fmt(std),
                         "abs(Δ) / σ": "" if ratio is None else f"{ratio:.2f}"})
    return pd.DataFrame(rows)


def _drift_checks(doc: dict) -> pd.DataFrame:
    """Per method: where the weights came from, the raw-output check and the two protocol wall times."""
    rows = []
    for m, r in sorted(doc["methods"].items()):
        raw, ck, wall = r.get("raw_output_check") or {}, r.get("checkpoint") or {}, r.get("protocol_wall_s") or {}
        rows.append({"method": m, "precision setting": f"`method_cfg.{r.get('precision_key', '?')}`",
                     "weights": _weights_cell(ck),
                     "raw max abs(bf16 − fp32) (rel.)": f"{_fmt(raw.get('bf16_max_abs_diff'))} "
                     f"({_fmt(raw.get('bf16_rel_max_abs_diff'))})" if raw else "",
                     "fp32 repeat max abs diff": _fmt(raw.get("fp32_repeat_max_abs_diff")),
                     "tokens changed by bf16": _fmt(raw.get("bf16_token_mismatch_fraction")),
                     "evaluated motions": _fmt((r.get("n_samples") or {}).get("evaluated")),
                     "protocol wall fp32 / bf16 (s)": f"{_fmt(wall.get('fp32'))} / {_fmt(wall.get('bf16'))}"
                     if wall else ""})
    return pd.DataFrame(rows)


def _weights_cell(ck: dict) -> str:
    """Where the drift run's weights came from: a finished run (how it was matched) or trained by it."""
    match = ck.get("match", "")
    if match == "trained by this run":
        return "trained by this run"
    diff = ", ".join(f"`{k}`" for k in ck.get("config_differences") or [])
    return f"reused run ({match}" + (f"; differs only in {diff}" if diff else "") + ")" if match else ""


def render_drift(path: Path, doc: dict) -> list[str]:
    """The "bf16 quality drift" section of speed.md from one drift JSON (``benchmarks/bf16_drift.py``)."""
    hw, git = doc.get("hardware") or {}, doc.get("git") or {}
    machine = f"{hw.get('cpu', '?')} ({hw.get('cpu_count', '?')} cpus)" + (f", {hw['gpu']}" if hw.get("gpu") else "")
    nice = f" at niceness {doc['niceness']}" if doc.get("niceness") else ""
    return [f"## {DRIFT_TITLE}\n",
            f"**{str(doc['data']).upper()} data, {str(doc['scale']).upper()} scale: not paper numbers.** "
            f"{doc['label']}. Each method's text2motion protocol ran twice on the same trained weights with the same "
            f"seeds (captions, crops, batches, generation noise and evaluator identical), once with the sampler at "
            f"fp32 and once at bf16; {doc.get('repetitions', '?')} repetitions each (seed {doc.get('seed', '?')}). "
            "Δ = bf16 − fp32 of the protocol means; σ = between-repetition std of the fp32 pass (ddof 1): "
            "abs(Δ) / σ below 1 puts the drift inside the evaluation noise.\n",
            f"File `{path.name}`. Command: `{doc['command']}`{nice}. Machine: {machine}; torch "
            f"{doc.get('torch', hw.get('torch', '?'))}, {doc.get('torch_threads', '?')} threads; commit "
            f"{git.get('commit', '?')}{' (dirty)' if git.get('dirty') else ''}; started {doc.get('started', '?')}.\n",
            _md(_drift_rows(doc)),
            "Checks: the raw `generate` output of one seeded batch at bf16 against fp32 (must differ: the switch "
            "took effect) and fp32 against itself (0: same seed, same output); token generators: the fraction of "
            "generated codes that bf16 changed. Wall times are whole protocol passes on a shared CPU, not benchmarks.\n",
            _md(_drift_checks(doc))]
