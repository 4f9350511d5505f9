"""Training curves of one stage: TensorBoard event files, a CSV of the same scalars, a loss plot.

:func:`methods.common.training.train` writes, into its checkpoint folder (the stage's run folder,
e.g. ``<workdir>/vae/``), one row per optimizer step:

- ``tb/events.out.tfevents.*`` - TensorBoard scalars (``tensorboard --logdir runs/work``)
- ``scalars.csv``              - the same scalars as ``step,tag,value`` rows (no TensorBoard needed)
- ``loss.png``                 - the ``train/*`` losses (and learning rate, validation metrics) drawn
  from the CSV when the loop ends

Tags: ``train/loss`` (global mean over ranks) and every number the method's ``step_fn`` returns
(``train/<key>``), ``train/lr`` (the learning rate the step used; ``train/lr/<i>`` per param group
when groups differ), ``train/grad_norm`` (total L2 norm of the averaged gradients before clipping),
``train/samples_per_s`` and, at the steps where an ``on_step`` hook validates, ``val/<metric>``.

The step of a row is the optimizer step it follows (1..N). Resume from step ``k`` keeps the CSV
rows with ``step <= k`` and opens the event writer with ``purge_step=k+1`` (TensorBoard then drops
the events of the steps that are trained again), so a killed and resumed run has each step once.
Both files are flushed before every checkpoint, so no step up to a checkpoint's is lost in a kill.

Logging reads numbers the loop already has; it draws no random number and changes no tensor
(tests/methods/common/test_curves.py trains with and without it). Only rank 0 writes.
``$MOTIONREPRO_CURVES=0`` turns it off (default on).
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from evaluators.core import distributed as D
from evaluators.core.io import atomic_write_text

__all__ = ["CURVES_ENV", "CSV_NAME", "TB_DIR", "PNG_NAME", "Curves", "curves_enabled", "open_curves",
           "read_scalars", "grad_norm", "step_scalars"]

log = logging.getLogger(__name__)

CURVES_ENV = "MOTIONREPRO_CURVES"
CSV_NAME = "scalars.csv"
TB_DIR = "tb"
PNG_NAME = "loss.png"
_HEADER = ["step", "tag", "value"]


def curves_enabled() -> bool:
    """``$MOTIONREPRO_CURVES``: unset or ``1`` = write curves, ``0`` = do not."""
    raw = os.environ.get(CURVES_ENV, "1").strip().lower()
    if raw in ("", "1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"${CURVES_ENV}={raw!r}: expected 1 (write training curves) or 0 (do not)")


def read_scalars(path: str | Path) -> list[tuple[int, str, float]]:
    """The ``(step, tag, value)`` rows of a ``scalars.csv``; a row cut by a kill is skipped."""
    rows = []
    p = Path(path)
    if not p.exists():
        return rows
    with p.open(newline="", encoding="utf-8") as f:
        for rec in csv.reader(f):
            if len(rec) != 3 or rec == _HEADER:
                continue
            try:
                rows.append((int(rec[0]), rec[1], float(rec[2])))
            except ValueError:
                continue
    return rows


def grad_norm(params: Sequence[torch.nn.Parameter]) -> torch.Tensor | None:
    """Total L2 norm of the gradients (what ``clip_grad_norm_`` returns), read only."""
    grads = [p.grad for p in params if p.grad is not None]
    return torch.nn.utils.get_total_norm(grads) if grads else None


def step_scalars(logs: dict[str, float], lrs: Sequence[float], gnorm, samples_per_s: float,
                 val: dict[str, float]) -> dict[str, float]:
    """The tags of one step (see the module docstring) from what the loop has at hand."""
    out = {f"train/{k}": float(v) for k, v in logs.items()}
    if lrs:
        if len(set(lrs)) == 1:
            out["train/lr"] = float(lrs[0])
        else:
            out.update({f"train/lr/{i}": float(v) for i, v in enumerate(lrs)})
    if gnorm is not None:
        out["train/grad_norm"] = float(gnorm)
    out["train/samples_per_s"] = float(samples_per_s)
    out.update({f"val/{k}": float(v) for k, v in val.items()})
    return out


class Curves:
    """Rank 0's writer of one stage's curves into ``run_dir``, continuing after ``start_step``."""

    def __init__(self, run_dir: str | Path, start_step: int) -> None:
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.csv_path = self.dir / CSV_NAME
        kept = [r for r in read_scalars(self.csv_path) if r[0] <= start_step]  # resume: drop steps trained again
        atomic_write_text(self.csv_path, _csv_text(kept))
        self._csv = self.csv_path.open("a", newline="", encoding="utf-8")
        self._rows = csv.writer(self._csv)
        self.writer = _event_writer(self.dir / TB_DIR, start_step)

    def log(self, step: int, scalars: dict[str, float]) -> None:
        for tag, value in scalars.items():
            if self.writer is not None:
                self.writer.add_scalar(tag, value, global_step=step)
            self._rows.writerow([step, tag, repr(float(value))])

    def flush(self) -> None:
        """Everything logged so far on disk (called before each checkpoint)."""
        if self.writer is not None:
            self.writer.flush()
        self._csv.flush()

    def close(self, draw: bool = True) -> None:
        if self.writer is not None:
            self.writer.close()
        self._csv.close()
        if draw:
            try:
                plot_scalars(read_scalars(self.csv_path), self.dir / PNG_NAME, title=self.dir.name)
            except Exception as e:  # a plot is a convenience: never fail a finished stage over it
                log.warning("%s: could not draw %s (%s)", self.dir, PNG_NAME, e)


def _event_writer(log_dir: Path, start_step: int):
    """TensorBoard's ``SummaryWriter`` continuing after ``start_step``; None (with a warning) when the
    ``tensorboard`` package is missing, so an environment installed without it still trains (CSV only)."""
    try:
        # torch.utils.tensorboard imports tensorboard and protobuf (about a second), paid only by a
        # process that trains with curves on
        from torch.utils.tensorboard import SummaryWriter  # lazy: slow import, needed only when training
    except ImportError as e:
        log.warning("training curves: no TensorBoard events (%s); writing %s and %s only (pip install tensorboard)",
                    e, CSV_NAME, PNG_NAME)
        return None
    # purge_step: TensorBoard drops the events at steps >= start_step + 1 written before a kill
    return SummaryWriter(log_dir=str(log_dir), purge_step=start_step + 1)


def open_curves(run_dir: str | Path | None, start_step: int) -> Curves | None:
    """The stage's curve writer, or None: no run folder, not rank 0, or ``$MOTIONREPRO_CURVES=0``."""
    if run_dir is None or not curves_enabled() or not D.is_main():
        return None
    return Curves(run_dir, start_step)


def _csv_text(rows: Iterable[tuple[int, str, float]]) -> str:
    lines = [",".join(_HEADER)]
    lines += [f"{s},{t},{v!r}" if "," not in t else f'{s},"{t}",{v!r}' for s, t, v in rows]
    return "\n".join(lines) + "\n"


def plot_scalars(rows: Sequence[tuple[int, str, float]], out: Path, title: str = "") -> Path | None:
    """``loss.png``: the losses, the learning rate and any validation metric."""
    series: dict[str, tuple[list[int], list[float]]] = {}
    for step, tag, value in rows:
        xs, ys = series.setdefault(tag, ([], []))
        xs.append(step)
        ys.append(value)
    if not series:
        return None
    losses = {t: s for t, s in series.items() if t.startswith("train/")
              and not t.startswith(("train/lr", "train/grad_norm", "train/samples_per_s"))}
    panels = [("loss", losses), ("learning rate", {t: s for t, s in series.items() if t.startswith("train/lr")}),
              ("validation", {t: s for t, s in series.items() if t.startswith("val/")})]
    panels = [p for p in panels if p[1]]
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: matplotlib draws once, at a stage's end
    from matplotlib.figure import Figure  # lazy: as above

    fig = Figure(figsize=(7, 2.6 * len(panels)), layout="constrained")
    FigureCanvasAgg(fig)
    for i, (name, group) in enumerate(panels):
        ax = fig.add_subplot(len(panels), 1, i + 1)
        for tag, (xs, ys) in sorted(group.items()):
            ax.plot(xs, ys, label=tag, marker="o" if len(xs) < 20 else None, linewidth=1)
        ax.set_ylabel(name)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    ax.set_xlabel("optimizer step")
    if title:
        fig.suptitle(title)
    fig.savefig(out, dpi=100)
    return out
