"""Time two or more implementations of one workload by alternating their calls in one process.

Alternation (A, B, A, B, ...) exposes every contender to the same machine load, so the *ratio*
of their medians stays meaningful on a shared machine where absolute times do not. The CPU/wall
ratio of the whole measurement is returned with it: well below the thread count means another
process took the cores, and the run is flagged as distorted rather than trusted.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from evaluators.records import git_info, hardware_info


@dataclass
class Alternation:
    """Per-contender call times (seconds) and the load indicator of the run."""

    times: dict[str, list[float]]
    first_call_s: dict[str, float]
    cpu_over_wall: float
    threads: int
    notes: list[str] = field(default_factory=list)

    def median(self, name: str) -> float:
        return statistics.median(self.times[name])

    def ratio(self, slow: str, fast: str) -> float:
        """How many times faster ``fast`` is than ``slow`` (median over median)."""
        return self.median(slow) / self.median(fast)

    @property
    def distorted(self) -> bool:
        # ours: a run whose processes got under 90% of the cores they asked for is not a quiet run
        return self.cpu_over_wall < 0.9 * self.threads


def alternate(contenders: dict[str, Callable[[], object]], *, repeats: int, warmup: int = 1,
              threads: int = 1) -> Alternation:
    """Call each contender ``warmup`` times (the first call timed apart), then ``repeats`` rounds
    of one call each, in turn. ``threads`` is the torch thread count the caller set."""
    if repeats < 1 or warmup < 1:
        raise ValueError(f"repeats={repeats}, warmup={warmup}: both must be >= 1")
    first: dict[str, float] = {}
    for name, fn in contenders.items():
        t0 = time.perf_counter()
        fn()
        first[name] = time.perf_counter() - t0
        for _ in range(warmup - 1):
            fn()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for _ in range(repeats):
        for name, fn in contenders.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    cpu_over_wall = (time.process_time() - cpu0) / max(time.perf_counter() - wall0, 1e-9)
    return Alternation(times=times, first_call_s=first, cpu_over_wall=cpu_over_wall, threads=threads)


THREADS_ENV = "MOTIONREPRO_SIDE_BY_SIDE_THREADS"


@contextlib.contextmanager
def side_by_side_threads() -> Iterator[int]:
    """Torch's thread count for a side-by-side run: ``$MOTIONREPRO_SIDE_BY_SIDE_THREADS`` (default 1, as
    the published ratios; a pytest plugin may have raised it), restored after."""
    before = torch.get_num_threads()
    n = int(os.environ.get(THREADS_ENV, "1"))
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(before)


EVIDENCE_KEYS = ("profile", "floor")  # what a run under load may still add to a file: op shares, the floor ratio


def keep_quiet_timing(old: dict | None, new: dict) -> dict:
    """The side-by-side record to keep: ``new``, unless ``new`` is distorted and ``old`` (the file
    already there) is not. A loaded machine skews a ratio, but not the op shares of a profile nor a
    ratio alternated in one process against a floor; so the quiet timing stays and only ``new``'s
    evidence (:data:`EVIDENCE_KEYS`) joins it, with the run that measured it (``evidence_run``)."""
    if not old or not new.get("distorted") or old.get("distorted", True):
        return new
    kept = {**old, **{k: new[k] for k in EVIDENCE_KEYS if k in new}}
    kept["evidence_run"] = {k: new.get(k) for k in ("commit", "date", "cpu_over_wall", "ratio")}
    return kept


def write_side_by_side(path: Path, rec: dict) -> dict:
    """Write ``rec`` to ``path`` as :func:`keep_quiet_timing` decides against the file there; return what was written."""
    old = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    out = keep_quiet_timing(old, rec)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    return out


def machine_folder(cpu: str) -> str:
    """The folder one CPU model's side-by-side files go to: its name in lower case without trademark
    marks or the word "processor" ("Intel(R) Xeon(R) Processor" -> ``intel-xeon``, "AMD EPYC" ->
    ``amd-epyc``). A ratio holds on the CPU that measured it (the authors' code and the suite gain
    unequally from one vendor's kernels), so a run on another CPU adds its own files beside the others."""
    name = re.sub(r"\((r|tm)\)|\bprocessor\b|\bcpu\b|@.*$", " ", cpu.lower())
    return re.sub(r"[^a-z0-9]+", "-", name).strip("-") or "unknown-cpu"


def record_side_by_side(out_dir: Path, workload: str, method: str, batch: int, target: float | None,
                        alt: Alternation, official: str = "official", suite: str = "suite", **extra) -> dict:
    """Write the file ``speed.md`` renders for one workload, ``out_dir/<machine_folder>/<workload>.json``
    (:func:`write_side_by_side` decides against a file already there), and return it. The ratio is the
    authors' median over the suite's; ``extra`` carries the evidence (profile, floor) and any other figures."""
    hw = hardware_info()
    rec = {"workload": workload, "method": method, "batch": batch,
           "official_s": alt.median(official), "suite_s": alt.median(suite), "ratio": alt.ratio(official, suite),
           "target": target, "machine": f"{hw['cpu']} ({hw['cpu_count']} cores), torch {hw['torch']}",
           "threads": alt.threads, "cpu_over_wall": round(alt.cpu_over_wall, 3), "distorted": alt.distorted,
           "first_call_s": {"official": alt.first_call_s[official], "suite": alt.first_call_s[suite]},
           "commit": git_info().get("commit"),
           "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), **extra}
    return write_side_by_side(Path(out_dir) / machine_folder(hw["cpu"]) / f"{workload}.json", rec)
