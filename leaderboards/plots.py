"""The leaderboard plots, written under ``plots/``: sampling latency against steps (benchmark JSON),
and quality against steps and against time per sample (the ``steps=N`` run records of the step
sweeps), one figure per protocol.

Each quality figure has a panel per metric, each with its own axis and its direction in the
title ("lower is better"), error bars from the records' 95 % intervals where they have one, the
x axis labelled at every measured step count (log scale: the sweeps double), the step count
written beside each point of the time plot, and every method in its one colour
(:mod:`leaderboards.style`), the same in every figure and on the site.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

from evaluators.core.io import atomic_open
from leaderboards.plot_cache import cached_plot
from leaderboards.speed import _entries, _fp32, load_benchmarks
from leaderboards.style import color_of, lower_is_better

# the headline metrics of each protocol, in the order the papers' tables print them
PANELS = {
    "text2motion": ("fid", "r_precision_top1", "mm_dist", "diversity"),
    "coco_ap": ("ap", "ap50", "ar"),
    "mpii_pckh": ("pckh_0.5", "pckh_0.1"),
}
TIME_KEYS = ("aits_s", "infer_s_per_instance")  # seconds per sample, per protocol
TITLES = {"fid": "FID", "r_precision_top1": "R-Precision top 1", "mm_dist": "MM-Dist", "diversity": "Diversity",
          "ap": "AP", "ap50": "AP50", "ar": "AR"}


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=90, metadata={"Software": None})
    return path


def _figure(rows: int, cols: int, width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: only plotting needs matplotlib
    from matplotlib.figure import Figure  # lazy: as above

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(rows, cols, squeeze=False)[0]


def _label_steps(ax, steps: list[float]) -> None:
    """Log x axis with a tick at every measured step count (not only at the powers of ten)."""
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter  # lazy: as above

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(sorted(set(steps))))
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_locator(NullLocator())


def _label_seconds(ax) -> None:
    """Log x axis of seconds labelled at 1, 2 and 5 times the powers of ten, in plain numbers."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # lazy: as above

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def write_latency_plot(bench_dirs: list[Path], out_dir: Path) -> list[Path]:
    """``sampling_latency_vs_steps.png``: batch-1 sampling latency against steps, one curve per
    (method, benchmark file), from the committed pytest-benchmark JSON; a file is a line style."""
    curves = {}
    for path, data in load_benchmarks(bench_dirs):
        for e in _entries(data):
            if e.get("what") == "sampling" and e.get("batch") == 1 and e.get("steps") and e.get("median") and _fp32(e):
                curves.setdefault((e["method"], path.stem), []).append((e["steps"], e["median"]))
    if not curves:
        return []
    inputs = {"plot": "sampling_latency", "curves": sorted([*k, sorted(v)] for k, v in curves.items())}
    return [cached_plot(out_dir / "sampling_latency_vs_steps.png", inputs, partial(_draw_latency, curves))]


def _draw_latency(curves: dict[tuple[str, str], list[tuple[float, float]]], path: Path) -> Path:
    fig, (ax,) = _figure(1, 1, 6.5, 4.2)
    styles = {stem: ls for stem, ls in zip(sorted({s for _, s in curves}), ("-", "--", ":", "-."))}
    for (method, stem), pts in sorted(curves.items()):
        pts = sorted(pts)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", color=color_of(method),
                linestyle=styles.get(stem, "-"), label=f"{method} ({stem})")
    _label_steps(ax, [p[0] for pts in curves.values() for p in pts])
    ax.set_yscale("log")
    ax.set_xlabel("sampling steps / decoding iterations")
    ax.set_ylabel("seconds per sample at batch 1 (lower is better)")
    ax.set_title("Sampling latency against steps (batch 1, fp32)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return _save(fig, path)


def _panel_metrics(protocol: str, recs: list[dict]) -> list[str]:
    have = {k for r in recs for k, m in r["metrics"].items() if m.get("value") is not None}
    wanted = PANELS.get(protocol) or tuple(sorted(have - set(TIME_KEYS)))[:4]
    return [k for k in wanted if k in have]


def _steps_of(rec: dict) -> float:
    return float(rec["variant"].split("=", 1)[1].split(",")[0])


def _time_of(rec: dict) -> float | None:
    for k in TIME_KEYS:
        v = rec["metrics"].get(k, {}).get("value")
        if v is not None:
            return float(v)
    return None


def quality_figures(sweep: list[dict], out_dir: Path) -> list[Path]:
    """Per protocol: ``quality_vs_steps_<protocol>.png`` and ``quality_vs_time_<protocol>.png``."""
    written = []
    for protocol in sorted({r["protocol"] for r in sweep}):
        recs = [r for r in sweep if r["protocol"] == protocol]
        metrics = _panel_metrics(protocol, recs)
        if not metrics:
            continue
        shown = [{k: r[k] for k in ("method", "dataset", "data", "scale", "variant", "metrics")} for r in recs]
        for kind in ("steps", "time"):
            inputs = {"plot": "quality", "protocol": protocol, "kind": kind, "metrics": metrics, "records": shown}
            written.append(cached_plot(out_dir / f"quality_vs_{kind}_{protocol}.png", inputs,
                                       partial(_draw_quality, protocol, recs, metrics, kind)))
    return written


def _draw_quality(protocol: str, recs: list[dict], metrics: list[str], kind: str, path: Path) -> Path:
    series: dict[tuple, list[dict]] = {}
    for r in recs:
        series.setdefault((r["method"], r["dataset"], r["data"], r["scale"]), []).append(r)
    fig, axes = _figure(1, len(metrics), 3.6 * len(metrics), 3.6)
    for ax, key in zip(axes, metrics):
        xs_all = []
        for (method, ds, data, scale), rs in sorted(series.items()):
            pts = sorted((_steps_of(r), _time_of(r), r["metrics"].get(key, {})) for r in rs)
            pts = [p for p in pts if p[2].get("value") is not None and (kind == "steps" or p[1] is not None)]
            if not pts:
                continue
            xs = [p[0] if kind == "steps" else p[1] for p in pts]
            ys = [p[2]["value"] for p in pts]
            errs = [p[2].get("ci95") or 0.0 for p in pts]
            ax.errorbar(xs, ys, yerr=errs if any(errs) else None, marker="o", capsize=3,
                        color=color_of(method), label=f"{method} ({ds}, {data}, {scale})")
            if kind == "time":  # which point is which step count
                for x, y, p in zip(xs, ys, pts):
                    ax.annotate(f"{p[0]:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7,
                                color=color_of(method))
            xs_all += xs
        unit = next((r["metrics"][key].get("unit") for r in recs if key in r["metrics"]), "") or ""
        hib = next((r["metrics"][key].get("higher_is_better") for r in recs if key in r["metrics"]), None)
        better = "lower" if lower_is_better(key, hib) else "higher"
        ax.set_title(f"{TITLES.get(key, key)} ({better} is better)", fontsize=9)
        ax.set_ylabel(f"{key}" + (f" ({unit})" if unit else ""), fontsize=8)
        if kind == "steps":
            _label_steps(ax, xs_all)
            ax.set_xlabel("sampling steps / decoding iterations", fontsize=8)
        else:
            _label_seconds(ax)
            ax.set_xlabel("seconds per sample, batch 1 (point labels: steps)", fontsize=8)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=7)
    what = "sampling steps" if kind == "steps" else "time per sample"
    fig.suptitle(f"{protocol}: quality against {what} (error bars: 95 % interval over repetitions)",
                 fontsize=10)
    return _save(fig, path)


def write_plots(records: list[dict], out_dir: Path, bench_dirs: list[Path] | None = None) -> list[Path]:
    """Every plot; a ``quality_vs_*.png`` this run did not write (a protocol no longer swept, an
    older name) is removed, so the folder holds exactly what the pages name."""
    if bench_dirs is None:
        bench_dirs = [Path(__file__).resolve().parent / "benchmarks"]
    written = write_latency_plot(bench_dirs, out_dir)
    sweep = [r for r in records if r["variant"].startswith("steps=")]
    written += quality_figures(sweep, out_dir)
    for stale in sorted(Path(out_dir).glob("quality_vs_*.png")):
        if stale not in written:
            stale.unlink()
    return written

