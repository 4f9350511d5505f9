"""The training curves of the published runs, small enough to commit: ``curves/<method>.csv`` and
``curves/<method>.png``.

A run's stages write full curves (``<stage>/scalars.csv``, every optimizer step, every tag;
``methods/common/curves.py``) into the run folder, which is not in git. What the site needs is
the shape of each stage's loss: :func:`publish_curves` keeps the loss and validation tags of every
stage, thinned to at most ``max_points`` evenly spaced steps per tag (the first and last step
always kept), in one CSV per method (``stage,step,tag,value``), and draws from that CSV one
figure with a panel per stage in the method's colour (:mod:`leaderboards.style`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from evaluators.core.io import atomic_open, atomic_write_text
from leaderboards.style import color_of

CURVES_DIR = "curves"
HEADER = ("stage", "step", "tag", "value")
KEPT_PREFIXES = ("train/loss", "val/")


def read_stage_csv(path: str | Path) -> list[tuple[int, str, float]]:
    """``step,tag,value`` rows of one stage's ``scalars.csv``; a malformed row names the file."""
    rows = []
    with open(path, newline="", encoding="utf-8") as fh:
        for i, row in enumerate(csv.DictReader(fh), start=2):
            try:
                rows.append((int(row["step"]), row["tag"], float(row["value"])))
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(f"{path}:{i}: not a step,tag,value row ({e})") from e
    return rows


def thin(rows: Sequence[tuple[int, str, float]], max_points: int) -> list[tuple[int, str, float]]:
    """At most ``max_points`` rows per tag, evenly spaced over its steps, first and last kept."""
    by_tag: dict[str, list[tuple[int, str, float]]] = {}
    for r in sorted(rows):
        by_tag.setdefault(r[1], []).append(r)
    out = []
    for tag_rows in by_tag.values():
        n = len(tag_rows)
        if n <= max_points:
            out += tag_rows
            continue
        keep = sorted({round(i * (n - 1) / (max_points - 1)) for i in range(max_points)})
        out += [tag_rows[i] for i in keep]
    return sorted(out)


def publish_curves(method: str, stages: dict[str, Path], out_dir: Path, max_points: int = 150) -> list[Path]:
    """Write ``curves/<method>.csv`` (thinned loss / validation tags of every stage) and draw
    ``curves/<method>.png`` from it; ``stages`` maps a stage name to its ``scalars.csv``."""
    table = []
    for stage, path in sorted(stages.items()):
        kept = [r for r in read_stage_csv(path) if r[1].startswith(KEPT_PREFIXES)]
        table += [(stage, *r) for r in thin(kept, max_points)]
    if not table:
        return []
    folder = Path(out_dir) / CURVES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(HEADER)
    w.writerows((s, step, tag, f"{v:.6g}") for s, step, tag, v in table)
    csv_path = folder / f"{method}.csv"
    atomic_write_text(csv_path, buf.getvalue())
    return [csv_path, draw_curves(method, csv_path, folder / f"{method}.png")]


def read_published(path: str | Path) -> dict[str, dict[str, tuple[list[int], list[float]]]]:
    """A published ``curves/<method>.csv``: stage -> tag -> (steps, values)."""
    out: dict[str, dict[str, tuple[list[int], list[float]]]] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            xs, ys = out.setdefault(row["stage"], {}).setdefault(row["tag"], ([], []))
            xs.append(int(row["step"]))
            ys.append(float(row["value"]))
    return out


def draw_curves(method: str, csv_path: Path, png_path: Path) -> Path:
    """One panel per stage: its training loss (solid, the method's colour) and validation metrics
    (dashed, on a second axis, since their units differ from the loss)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: only drawing needs matplotlib
    from matplotlib.figure import Figure  # lazy: as above

    data = read_published(csv_path)
    colour = color_of(method)
    fig = Figure(figsize=(3.2 * len(data), 2.6), layout="constrained")
    FigureCanvasAgg(fig)
    for i, (stage, tags) in enumerate(sorted(data.items())):
        ax = fig.add_subplot(1, len(data), i + 1)
        for tag, (xs, ys) in sorted(tags.items()):
            if tag == "train/loss":
                ax.plot(xs, ys, color=colour, linewidth=1.2, label=tag)
        ax.set_title(stage, fontsize=9)
        ax.set_xlabel("optimizer step", fontsize=8)
        ax.set_ylabel("training loss (lower is better)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        val = {t: s for t, s in tags.items() if t.startswith("val/")}
        if val:
            ax2 = ax.twinx()
            for tag, (xs, ys) in sorted(val.items()):
                ax2.plot(xs, ys, color=colour, linestyle="--", marker="o", markersize=3, linewidth=1, label=tag)
            ax2.set_ylabel(", ".join(sorted(val)), fontsize=7)
            ax2.tick_params(labelsize=7)
    fig.suptitle(f"{method}: training curves", fontsize=10)
    png_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(png_path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=80, metadata={"Software": None})
    return png_path
