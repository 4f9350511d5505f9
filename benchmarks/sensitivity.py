"""Metric sensitivity to known defects: GT test motions, corrupted at increasing strength.

``python -m benchmarks.sensitivity [--dataset synth_t2m] [--levels N] [--out DIR] [--publish]``

The ground-truth test motions of a text-to-motion dataset (HumanML3D layout) are corrupted by
the defects of :mod:`benchmarks.sensitivity_corruptions` (joint noise, jitter, foot sliding,
temporal warp, truncation, caption shuffle) at strengths ``linspace(0, 1, N)``, and each
corrupted set is scored as if it were a method's generations:

- FID, R-Precision top-1..3, MM-Dist, Diversity with the suite's T2M evaluator, obtained as the
  text2motion protocol obtains it (``_t2m_helpers.build_evaluator``: the official checkpoint
  for real data when ``$T2M_EVALUATOR_ROOT`` is set, else retrained on the dataset and cached),
  with the protocol's loader pass (``draw_repetition``: shuffled, batches of 32, drop_last,
  one random caption and the official crop per motion; seed ``seed + r`` for repetition r) and
  the protocol's metric functions (``text2motion._retrieval`` / ``_fid`` / ``_diversity``).
  FID is taken against the protocol's second, independent GT pass (seed ``10000 + seed + r``),
  so that strength 0 reproduces the protocol's real row (FID, R-Precision, MM-Dist and
  Diversity of the GT motions) and the clean FID is the sampling floor, not 0.
- the physical metrics (:func:`evaluators.metrics.physical.physical_metrics`) on the whole
  corrupted motions, as positions from the suite's ``recover_from_ric``.

Each value is the mean over ``repetitions`` with its 95% interval (the protocol's
``confidence_interval``); the corruption noise of repetition r is seeded by (seed + r,
corruption, level). Output: ``<out>/sensitivity.json`` and one plot per corruption
(:mod:`benchmarks.sensitivity_report`); ``--publish`` copies them into
``leaderboards/sensitivity/`` and writes ``leaderboards/sensitivity.md``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.sensitivity_corruptions import CORRUPTIONS, corrupt_split, round_trip
from benchmarks.sensitivity_report import render_markdown, write_plots
from evaluators.core.config import load_config
from evaluators.datasets import load_dataset
from evaluators.datasets.motion.humanml3d import recover_from_ric
from evaluators.metrics import generation as G
from evaluators.metrics.physical import physical_metrics
from evaluators.networks.t2m_data import T2MSplit, t2m_split
from evaluators.protocols import _t2m_helpers as H
from evaluators.protocols import text2motion as P
from evaluators.protocols.registry import RunContext
from evaluators.records import git_info

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
# ours: 4 levels (0, 1/3, 2/3, 1) and 2 repetitions keep a synth_t2m run within a few minutes on
# 2 CPU cores (the paper protocol has 20 repetitions; the trends here need far fewer).
DEFAULT_LEVELS = 4
DEFAULT_REPETITIONS = 2
DEFAULT_SCALE = "smoke"  # ours: the smoke evaluator (64-d) on synth_t2m; paper scale for real data
SECOND_PASS_OFFSET = 10_000  # text2motion.py: the real row's second GT pass is seeded 10_000 + seed
EVAL_KEYS = ("fid", "r_precision_top1", "r_precision_top2", "r_precision_top3", "mm_dist", "diversity")
_SKELETON = {263: ("humanml3d", 22, 1.0), 251: ("kit", 21, 1000.0)}  # feature dim -> skeleton, joints, units/m


class Setup:
    """Everything shared by the levels: the test split, the evaluator, the protocol's settings."""

    def __init__(self, dataset: str, scale: str, seed: int, device: str = "cpu") -> None:
        self.dataset, self.scale, self.seed = dataset, scale, int(seed)
        dcfg = load_config("dataset", dataset, scale)
        self.data_source = str(dcfg.get("source") or "real")
        self.fps = float(dcfg.get("fps") or 20.0)
        self.data = load_dataset(dcfg)
        self.pcfg = load_config("protocol", "text2motion", scale)
        self.split = t2m_split(self.data, self.pcfg["split"])
        if self.split.dim not in _SKELETON:
            raise ValueError(f"dataset {dataset!r}: {self.split.dim}-d features; expected 263 (HumanML3D) or 251 (KIT)")
        self.skeleton, self.joints_num, self.unit_scale = _SKELETON[self.split.dim]
        ctx = RunContext(seed=self.seed, device=device, data_source=self.data_source, scale=scale)
        self.ev = H.build_evaluator(self.data, self.pcfg["evaluator"], ctx)
        self.bs = int(self.pcfg["batch_size"])
        self.top_k = int(self.pcfg["top_k"])
        self.diversity_times = int(self.pcfg["diversity_times"])
        self.unit, self.max_len = self.ev.cfg.unit_length, self.ev.cfg.max_motion_length
        self._second: dict[int, np.ndarray] = {}

    def second_pass(self, seed: int) -> np.ndarray:
        """GT embeddings of the protocol's second GT pass of repetition ``seed`` (clean motions)."""
        if seed not in self._second:
            draw = H.draw_repetition(self.split, np.random.default_rng(SECOND_PASS_OFFSET + seed), self.bs,
                                     self.unit, self.max_len)
            self._second[seed] = H.embed_batches(self.ev, draw, self.bs, H.gt_motion_fn(draw, self.max_len),
                                                 text=False)[1]
        return self._second[seed]

    def round_trip_error(self) -> dict[str, float]:
        """How far features -> positions -> features (the joint-space corruptions' path, at no
        corruption) is from the identity: fp32 rounding, except the IK rotation (6-D) of isolated
        frames near a singular pose, where the solver picks another branch of the same positions."""
        err = [np.abs(round_trip(m, self.joints_num) - m) for m in self.split.motions]
        return {"max_abs": float(max(e.max() for e in err)),
                "fraction_of_entries_above_1e-3": float(np.mean(np.concatenate([e.ravel() for e in err]) > 1e-3))}

    def provenance(self) -> dict[str, Any]:
        meta = {k: v for k, v in self.ev.meta.items() if k != "hparams"}
        return {"evaluator": {"config": self.ev.cfg.dataset, "dim_pose": self.ev.cfg.dim_pose, **meta},
                "provenance": self.ev.provenance()}


def evaluate(setup: Setup, split: T2MSplit, seed: int) -> dict[str, float]:
    """One repetition of the text2motion generated row, with ``split``'s motions as the generations."""
    draw = H.draw_repetition(split, np.random.default_rng(seed), setup.bs, setup.unit, setup.max_len)
    text_emb, emb, _ = H.embed_batches(setup.ev, draw, setup.bs, H.gt_motion_fn(draw, setup.max_len))
    row = P._retrieval(text_emb, emb, setup.top_k)
    row["fid"] = P._fid(setup.second_pass(seed), emb)
    row["diversity"] = P._diversity(emb, setup.diversity_times, seed)
    return row


def physical(setup: Setup, split: T2MSplit) -> dict[str, dict]:
    """Physical metrics of every motion of ``split`` (whole motions, positions by ``recover_from_ric``)."""
    lens = np.array([len(m) for m in split.motions])
    joints = np.zeros((len(lens), lens.max(), setup.joints_num, 3), np.float32)
    for i, m in enumerate(split.motions):
        joints[i, :len(m)] = recover_from_ric(m, setup.joints_num)
        joints[i, len(m):] = joints[i, len(m) - 1]  # padding never enters a value; keep it finite
    return physical_metrics(joints, lens, skeleton=setup.skeleton, fps=setup.fps)


def _summarise(rows: list[dict[str, float]], units: dict[str, str]) -> dict[str, dict]:
    out = {}
    for k in rows[0]:
        mean, ci = G.confidence_interval([r[k] for r in rows])
        out[k] = {"value": float(mean), "ci95": float(ci), "unit": units.get(k, "")}
    return out


def run_sensitivity(dataset: str = "synth_t2m", *, levels: int = DEFAULT_LEVELS,
                    repetitions: int = DEFAULT_REPETITIONS, seed: int = 0, scale: str = DEFAULT_SCALE,
                    corruptions: list[str] | None = None, setup: Setup | None = None) -> dict[str, Any]:
    """All corruptions at ``levels`` strengths -> the result dict written as ``sensitivity.json``."""
    if levels < 2:
        raise ValueError(f"--levels must be >= 2 (strength 0 and at least one defect), got {levels}")
    if repetitions < 1:
        raise ValueError(f"--repetitions must be >= 1, got {repetitions}")
    names = list(corruptions or CORRUPTIONS)
    bad = [n for n in names if n not in CORRUPTIONS]
    if bad:
        raise ValueError(f"unknown corruption(s) {bad}; choose from {sorted(CORRUPTIONS)}")
    t0 = time.perf_counter()
    setup = setup or Setup(dataset, scale, seed)
    strengths = [float(s) for s in np.linspace(0.0, 1.0, levels)]
    units = {k: ("" if k != "mm_dist" else "distance") for k in EVAL_KEYS}
    clean_phys = physical(setup, setup.split)
    clean_rows = [evaluate(setup, setup.split, setup.seed + r) for r in range(repetitions)]
    results: dict[str, Any] = {}
    for ci, name in enumerate(names):
        c = CORRUPTIONS[name]
        per_level = []
        for li, s in enumerate(strengths):
            rows = []
            for r in range(repetitions):
                if s == 0.0:  # the split itself: the clean rows (identical computation, done once)
                    rows.append({**clean_rows[r], **{k: v["value"] for k, v in clean_phys.items()}})
                    continue
                rng = np.random.default_rng([setup.seed + r, ci, li])
                split = corrupt_split(setup.split, name, s, rng, joints_num=setup.joints_num, fps=setup.fps,
                                      unit_scale=setup.unit_scale)
                phys = {k: v["value"] for k, v in physical(setup, split).items()}
                rows.append({**evaluate(setup, split, setup.seed + r), **phys})
            per_level.append({"strength": s, "amount": s * c.max_amount,
                              "metrics": _summarise(rows, {**units, **{k: v["unit"] for k, v in clean_phys.items()}})})
            log.info("%s s=%.2f: %s", name, s, {k: round(v["value"], 4) for k, v in per_level[-1]["metrics"].items()})
        results[name] = {"representation": c.representation, "parameter": c.parameter, "unit": c.unit,
                         "max_amount": c.max_amount, "description": c.description, "levels": per_level}
    return {
        "kind": "metric_sensitivity", "dataset": dataset, "data_source": setup.data_source,
        "pipeline_check": setup.data_source != "real", "scale": scale, "seed": setup.seed,
        "repetitions": repetitions, "strengths": strengths, "batch_size": setup.bs,
        "test_motions": len(setup.split), "evaluated_per_pass": (len(setup.split) // setup.bs) * setup.bs,
        "skeleton": setup.skeleton, "fps": setup.fps, "joint_round_trip": setup.round_trip_error(),
        "fid_reference": "clean GT, the text2motion protocol's second GT pass (seed 10000 + seed + r)",
        **setup.provenance(), "git": git_info(REPO), "wall_s": round(time.perf_counter() - t0, 1),
        "corruptions": results,
    }


def write_outputs(result: dict[str, Any], out: Path) -> list[Path]:
    """``out/sensitivity.json`` and ``out/<corruption>.png``; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "sensitivity.json"
    path.write_text(json.dumps(result, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    return [path, *write_plots(result, out)]


def publish(files: list[Path], result: dict[str, Any], leaderboards: Path = REPO / "leaderboards") -> Path:
    """Copy the JSON and plots to ``leaderboards/sensitivity/`` and write ``leaderboards/sensitivity.md``."""
    dest = leaderboards / "sensitivity"
    dest.mkdir(parents=True, exist_ok=True)
    for f in files:
        shutil.copy2(f, dest / f.name)
    page = leaderboards / "sensitivity.md"
    page.write_text(render_markdown(result, plot_dir="sensitivity"), encoding="utf-8")
    return page


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.sensitivity", description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="synth_t2m", help="text-to-motion dataset config (HumanML3D layout)")
    ap.add_argument("--levels", type=int, default=DEFAULT_LEVELS, help="strengths linspace(0, 1, N)")
    ap.add_argument("--repetitions", type=int, default=DEFAULT_REPETITIONS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scale", default=DEFAULT_SCALE, choices=("smoke", "paper"))
    ap.add_argument("--corruptions", nargs="+", default=None, choices=sorted(CORRUPTIONS))
    ap.add_argument("--out", type=Path, default=Path("runs/sensitivity"))
    ap.add_argument("--publish", action="store_true", help="copy into leaderboards/sensitivity/ + sensitivity.md")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    result = run_sensitivity(args.dataset, levels=args.levels, repetitions=args.repetitions, seed=args.seed,
                             scale=args.scale, corruptions=args.corruptions)
    files = write_outputs(result, args.out)
    log.info("wrote %s", ", ".join(str(f) for f in files))
    if args.publish:
        log.info("published %s", publish(files, result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
