"""The leaderboard plots: sampling latency against steps (benchmark JSON), and quality against
steps / AITS (the ``steps=N`` run records of the step sweeps), written under ``plots/``."""

from __future__ import annotations

from pathlib import Path

from evaluators.core.io import atomic_open
from leaderboards.speed import _entries, _fp32, load_benchmarks


def _quality_key(rec: dict) -> str | None:
    for k in ("fid", "ap", "pck_0.2", "top1", "mpjpe_mm"):
        if k in rec["metrics"] and rec["metrics"][k].get("value") is not None:
            return k
    return None


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png", metadata={"Software": None})
    return path


def write_latency_plot(bench_dirs: list[Path], out_dir: Path) -> list[Path]:
    """``sampling_latency_vs_steps.png``: batch-1 sampling latency against steps, one curve per
    (method, benchmark file), from the committed pytest-benchmark JSON."""
    curves = {}
    for path, data in load_benchmarks(bench_dirs):
        for e in _entries(data):
            if e.get("what") == "sampling" and e.get("batch") == 1 and e.get("steps") and e.get("median") and _fp32(e):
                curves.setdefault((e["method"], path.stem), []).append((e["steps"], e["median"]))
    if not curves:
        return []
    import matplotlib  # lazy: only plotting needs matplotlib; the tables render without it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: after matplotlib.use("Agg"), which must precede it

    fig, ax = plt.subplots(figsize=(6, 4))
    for (method, stem), pts in sorted(curves.items()):
        pts = sorted(pts)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"{method} ({stem})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("sampling steps / decoding iterations")
    ax.set_ylabel("latency per sample at batch 1 (s)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    out = _save(fig, out_dir / "sampling_latency_vs_steps.png")
    plt.close(fig)
    return [out]


def write_plots(records: list[dict], out_dir: Path, bench_dirs: list[Path] | None = None) -> list[Path]:
    """Quality vs steps and vs AITS (run records), one curve per (method, dataset, data, scale),
    and the sampling latency plot from ``bench_dirs`` (default ``leaderboards/benchmarks``)."""
    if bench_dirs is None:
        bench_dirs = [Path(__file__).resolve().parent / "benchmarks"]
    written = write_latency_plot(bench_dirs, out_dir)
    sweep = [r for r in records if r["variant"].startswith("steps=") and _quality_key(r)]
    if not sweep:
        return written
    import matplotlib  # lazy: only plotting needs matplotlib; the tables render without it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: after matplotlib.use("Agg"), which must precede it

    curves: dict[tuple, list[tuple[float, float, float | None]]] = {}
    for r in sweep:
        q = _quality_key(r)
        steps = float(r["variant"].split("=", 1)[1].split(",")[0])
        aits = r["metrics"].get("aits_s", {}).get("value")
        curves.setdefault((r["method"], r["dataset"], q, r["data"], r["scale"]), []).append(
            (steps, r["metrics"][q]["value"], aits))
    for fname, xi, xlabel in (("quality_vs_steps.png", 0, "sampling steps / iterations"),
                              ("quality_vs_aits.png", 2, "AITS (s, batch 1)")):
        fig, ax = plt.subplots(figsize=(6, 4))
        for (method, ds, q, data, scale), pts in sorted(curves.items()):
            pts = sorted(p for p in pts if p[xi] is not None)
            if pts:
                ax.plot([p[xi] for p in pts], [p[1] for p in pts], marker="o", label=f"{method} {ds} {q} ({data}, {scale})")
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("quality metric (FID lower / AP, PCK higher is better)")
        ax.legend(fontsize=7)
        fig.tight_layout()
        written.append(_save(fig, out_dir / fname))
        plt.close(fig)
    return written
