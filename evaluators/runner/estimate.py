"""What a paper table costs to reproduce: ``./reproduce.sh METHOD DATASET --estimate``.

For every dataset of the experiment and every stage (each training stage of the method, each
protocol and its evaluation repetitions) it prints the optimizer steps and samples, the
seconds per step on this machine, and the resulting wall time, GPU-hours and peak memory at
the configured scale (paper by default), then how the run would split over N GPUs.

Where the seconds come from (printed in the ``source`` column, never mixed silently):

- ``probe``: the method is built at the run's scale on this machine and timed for a few steps:
  one optimiser step of its main stage (``Method.train_step_example``) at a small probe batch,
  and one sampling call (``Method.denoiser_example`` times the sampler's step count). The cost
  per sample is taken as constant in the batch size, which over-estimates large-batch GPU
  runs (their per-sample cost falls with the batch); that is said in the output.
- ``bench:FILE``: the committed benchmark JSON of a named machine
  (``--estimate-from leaderboards/benchmarks/gpu-paper.json``): its ``test_train_step`` and
  ``test_sampling_batch32`` entries for the method, at that machine's speed.

The seconds are measured in :mod:`evaluators.runner.estimate_costs`; this module holds the
cost model (split sizes, stages, steps) and prints the table. Stages other than the method's
main training stage use the main stage's cost per sample (``~main`` in the table); a
frozen-encoder pass (linear probe) is one forward, taken as a third of a training step
(``# ours:`` the usual forward:backward = 1:2 rule). Dataset split sizes are the published
ones (``SPLIT_SIZES``, with their source); a dataset this table does not know is reported as
such instead of guessed.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
from tabulate import tabulate

from evaluators.core.config import list_configs
from evaluators.runner.compose import compose
from evaluators.runner.estimate_costs import (
    OTHER_LOAD_LIMIT,
    Costs,
    bench_costs,
    contention_note,
    probe_costs,
    probe_failures,
    probe_load,
)
from evaluators.runner.names import load_plugins
from evaluators.runner.plan import build_plan, resolve_device

# Published split sizes (samples after each dataset's standard preprocessing).
SPLIT_SIZES: dict[str, dict[str, Any]] = {
    # MAMP/MacDiff seq_transformation.py npz (302 missing skeletons removed); CTR-GCN data statistics
    "ntu60_xsub": {"train": 40091, "test": 16487, "source": "MAMP NTU60_XSub.npz"},
    "ntu60_xview": {"train": 37646, "test": 18932, "source": "MAMP NTU60_XView.npz"},
    "ntu120_xsub": {"train": 63026, "test": 50919, "source": "MAMP NTU120_XSub.npz"},
    "ntu120_xset": {"train": 54468, "test": 59477, "source": "MAMP NTU120_XSet.npz"},
    # PKU-MMD cut into action instances (CrosSCLR/AimCLR data statistics)
    "pku1_xsub": {"train": 18841, "test": 3247, "source": "AimCLR PKU-MMD I xsub statistics"},
    "pku1_xview": {"train": 14734, "test": 7354, "source": "AimCLR PKU-MMD I xview statistics"},
    "pku2_xsub": {"train": 5332, "test": 1613, "source": "AimCLR PKU-MMD II xsub statistics"},
    "pku2_xview": {"train": 5332, "test": 1613, "source": "approximate: xsub counts (no published xview count)"},
    # text-to-motion: motions (each with ~3 captions) of the official split files
    "humanml3d": {"train": 23384, "test": 4384, "source": "HumanML3D train.txt/test.txt (after length filter)"},
    "kit_ml": {"train": 4888, "test": 830, "source": "KIT-ML train.txt/test.txt"},
    "humanact12": {"train": 1191, "test": 1191, "source": "ACTOR HumanAct12Poses (evaluation samples the train set)"},
    "uestc": {"train": 10650, "test": 13350, "source": "ACTOR UESTC split"},
    # pose: person instances
    "coco_kpt": {"train": 149813, "test": 6352, "source": "MMPose COCO train2017 / val2017 person instances"},
    "mpii": {"train": 22246, "test": 2958, "source": "MMPose mpii_train.json / mpii_val.json"},
}
FORWARD_FRACTION = 1 / 3  # ours: a forward pass ~ 1/3 of forward+backward (the usual 1:2 rule)
# the stage Method.train_step_example runs (Method.train_batch reads the same main stage)
MAIN_STAGE_KEYS = ("denoiser", "mask_transformer", "pretrain", "train")


@dataclass
class Stage:
    dataset: str
    stage: str
    steps: int | None
    samples: int | None
    s_per_step: float | None
    source: str
    note: str = ""

    @property
    def wall_s(self) -> float | None:
        return None if self.steps is None or self.s_per_step is None else self.steps * self.s_per_step


def _training_stages(mcfg: dict) -> list[tuple[str, dict]]:
    """Blocks of the method config that train something: a batch size and epochs or steps."""
    out = []
    for key, v in mcfg.items():
        if isinstance(v, dict) and isinstance(v.get("batch_size"), int) and (v.get("epochs") or v.get("steps")):
            out.append((key, v))
    return out


def plan_stages(method_name: str, mcfg: dict, pcfgs: dict[str, dict], dataset: str, costs: Costs,
                has_checkpoint: bool = False) -> list[Stage]:
    sizes = SPLIT_SIZES.get(dataset)
    if sizes is None:
        return [Stage(dataset, "(all)", None, None, None, "-",
                      f"split sizes of {dataset!r} unknown: add them to evaluators/runner/estimate.py SPLIT_SIZES")]
    n_train, n_test = sizes["train"], sizes["test"]
    tr, inf = costs.train_s, costs.infer_s
    stages: list[Stage] = []
    train_blocks = _training_stages(mcfg)
    main = next((k for k in MAIN_STAGE_KEYS if k in dict(train_blocks)), train_blocks[0][0] if train_blocks else None)
    for key, blk in train_blocks:
        bs = int(blk["batch_size"])
        steps = int(blk["steps"]) if blk.get("steps") else int(blk["epochs"]) * math.ceil(n_train / bs)
        stages.append(Stage(dataset, f"train: {key}", steps, steps * bs, None if tr is None else tr * bs,
                            costs.source if key == main else "~main", "skipped with checkpoint=" if has_checkpoint else ""))
    if not train_blocks and method_name:
        stages.append(Stage(dataset, "train", None, None, None, "-", "no training stage found in the method config"))
    for name, p in pcfgs.items():
        bs = int(p.get("batch_size") or (p.get("joint") or {}).get("batch_size") or 32)
        if name == "linear":
            epochs = int(p.get("epochs", 1))
            steps = epochs * math.ceil(n_train / bs)
            fwd = None if tr is None else tr * FORWARD_FRACTION * bs
            stages.append(Stage(dataset, "linear probe (frozen encoder, per-epoch features)", steps, steps * bs,
                                fwd, "~main fwd", "+ test pass"))
        elif name.startswith("semi") or name in ("finetune", "transfer"):
            ratio = float(p.get("label_ratio", 1.0))
            repeats = int(p.get("repeats", 1))
            variants = 2 if p.get("augment") and name.startswith("semi") else 1
            n = max(1, int(n_train * ratio)) * (1 + (float(p.get("aug_ratio", 0)) if variants == 2 else 0))
            steps = repeats * variants * int(p.get("epochs", 1)) * math.ceil(n / bs)
            stages.append(Stage(dataset, f"{name} (x{repeats} repeats{', +augmented' if variants == 2 else ''})",
                                steps, steps * bs, None if tr is None else tr * bs, "~main"))
        elif name in ("text2motion", "action2motion"):
            reps = int(p.get("repetitions", 1))
            ev = p.get("evaluator") or {}
            if name == "text2motion" and not ev.get("checkpoint") and ev.get("train"):
                t = ev["train"]
                stages.append(Stage(dataset, "evaluator retrain (no official checkpoint)",
                                    int(t["steps"]) + int(t.get("movement_pretrain_steps", 0)), None, None, "-",
                                    "small GRU/conv nets; not timed"))
            gen = n_test * (3 if name == "text2motion" else 1)  # ~3 captions per test motion
            steps = reps * math.ceil(gen / bs)
            stages.append(Stage(dataset, f"{name}: generate + evaluate (x{reps} repetitions)", steps, steps * bs,
                                None if inf is None else inf * bs, costs.source if inf else "-"))
        elif name in ("reconstruction", "coco_ap", "mpii_pckh"):
            steps = math.ceil(n_test / bs)
            per = inf if inf is not None else (None if tr is None else tr * FORWARD_FRACTION)
            stages.append(Stage(dataset, f"{name} (test split)", steps, steps * bs, None if per is None else per * bs,
                                costs.source if inf is not None else "~main fwd"))
        else:
            stages.append(Stage(dataset, name, None, None, None, "-", "no cost model for this protocol"))
    return stages


def _fmt_s(s: float | None) -> str:
    if s is None:
        return "?"
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    if s < 172800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"


def render(stages: list[Stage], costs: Costs, device: str, scale: str, experiment: str) -> str:
    gpu = device.startswith("cuda")
    rows = []
    for s in stages:
        rows.append([s.dataset, s.stage, f"{s.steps:,}" if s.steps else "?", f"{s.samples:,}" if s.samples else "-",
                     "?" if s.s_per_step is None else f"{s.s_per_step:.3g}", s.source, _fmt_s(s.wall_s),
                     "-" if not gpu or s.wall_s is None else f"{s.wall_s / 3600:.2f}", s.note])
    total = sum(s.wall_s for s in stages if s.wall_s is not None)
    unknown = [s.stage for s in stages if s.wall_s is None]
    out = [f"# cost estimate: {experiment} at scale={scale} on {device} ({costs.source})",
           tabulate(rows, headers=["dataset", "stage", "optimizer steps", "samples", "s/step", "source", "wall",
                                   "GPU-h", "note"], tablefmt="github"),
           "",
           f"total wall (timed stages): {_fmt_s(total)}" + (f"; GPU-hours: {total / 3600:.1f}" if gpu else
                                                            f" on this CPU ({os.cpu_count()} cores)"),
           f"peak memory in the probe: {costs.peak_mib:.0f} MiB" if costs.peak_mib else "peak memory: not measured"]
    note = contention_note(device)
    if note:
        out.append(note)
    failed = probe_failures()
    if failed:
        out.append(failed)
    if unknown:
        out.append("not timed: " + "; ".join(unknown))
    out += [
        "per-sample cost is taken from a small probe batch; large-batch GPU runs are usually cheaper per sample.",
        "under torchrun --nproc_per_node=N every rank takes 1/N of each global batch (same global batch, same "
        "sample order): wall ~ total / N plus one gradient all-reduce per step; GPU-hours stay ~ the same "
        f"(e.g. N=4: ~{_fmt_s(total / 4)} wall).",
    ]
    return "\n".join(out)


def build_untrained(p: dict, device: str):
    """The planned method, untrained, with identity feature statistics (generators need them)."""
    method = p.method_cls(dict(p.method_cfg), device=device, seed=0)
    d = getattr(method, "nfeats", None)
    if hasattr(method, "set_normalization") and d:
        method.set_normalization(np.zeros(int(d), np.float32), np.ones(int(d), np.float32))
    return method


def estimate(p: dict, cfg, estimate_from: str | None = None) -> str:
    """The table for a planned run (``evaluators.runner.run.plan`` output and the composed config)."""
    device = resolve_device(str(cfg.device))
    scale = str(cfg.scale)
    method_name = str(cfg.method)
    mcfg = dict(p.method_cfg)
    if estimate_from:
        costs = bench_costs(method_name, estimate_from)
        if costs.train_s is None or costs.infer_s is None:
            probe = probe_costs(build_untrained(p, device), device)
            costs = Costs(costs.train_s if costs.train_s is not None else probe.train_s,
                          costs.infer_s if costs.infer_s is not None else probe.infer_s,
                          costs.peak_mib or probe.peak_mib, costs.source + " + " + probe.source)
    else:
        costs = probe_costs(build_untrained(p, device), device)
    stages: list[Stage] = []
    for ds in p.datasets:
        stages += plan_stages(method_name, mcfg, p.protocol_cfgs, ds.name, costs,
                              has_checkpoint=bool(cfg.get("checkpoint")))
    return render(stages, costs, device, scale, f"{method_name} on {', '.join(d.name for d in p.datasets)}")


def summary_row(exp: str) -> dict[str, Any]:
    """One experiment's totals (run in its own process by :func:`estimate_all`, so the peak
    memory is that experiment's)."""
    load_plugins()
    ov = [f"+experiment={exp}"]
    cfg = compose(ov)
    p = build_plan(cfg, ov, check_data=False)
    device = resolve_device(str(cfg.device))
    costs = probe_costs(build_untrained(p, device), device)
    train = other = 0.0
    untimed = 0
    for ds in p.datasets:
        for s in plan_stages(str(cfg.method), dict(p.method_cfg), p.protocol_cfgs, ds.name, costs):
            if s.wall_s is None:
                untimed += 1
            elif s.stage.startswith("train"):
                train += s.wall_s
            else:
                other += s.wall_s
    own, others = probe_load()
    return {"experiment": exp, "datasets": [ds.name for ds in p.datasets], "train_s_per_sample": costs.train_s,
            "training_s": train, "protocols_s": other, "peak_mib": costs.peak_mib, "probe_cpus": own,
            "other_cpus": others, "untimed": untimed}


def estimate_all(experiments: list[str] | None = None) -> str:
    """One summary row per paper experiment (the README table): ``python -m evaluators.runner.estimate``."""
    names = experiments or [e for e in list_configs("experiment") if "synth" not in e]
    rows = []
    for exp in names:
        res = subprocess.run([sys.executable, "-m", "evaluators.runner.estimate", "--row", exp], capture_output=True,
                             text=True)
        if res.returncode != 0:
            rows.append([exp, "", "", "", "", "failed: " + res.stderr.strip().splitlines()[-1][:80], "", "", ""])
            continue
        r = json.loads(res.stdout.strip().splitlines()[-1])
        flag = " CONTENDED" if r["other_cpus"] is not None and r["other_cpus"] > OTHER_LOAD_LIMIT else ""
        rows.append([exp, ", ".join(r["datasets"]),
                     "?" if r["train_s_per_sample"] is None else f"{r['train_s_per_sample']:.3g}",
                     _fmt_s(r["training_s"]), _fmt_s(r["protocols_s"]), _fmt_s(r["training_s"] + r["protocols_s"]),
                     f"{r['peak_mib']:.0f}" if r["peak_mib"] else "?",
                     f"{r['probe_cpus']:.2f} / " + ("?" if r["other_cpus"] is None else f"{r['other_cpus']:.2f}")
                     + flag, r["untimed"]])
    return tabulate(rows, headers=["experiment", "datasets", "train s/sample", "training", "protocols",
                                   "total (this machine)", "peak MiB", "CPUs probe / others", "stages not timed"],
                    tablefmt="github")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--row"]:
        print(json.dumps(summary_row(sys.argv[2])))
    else:
        print(estimate_all(sys.argv[1:] or None))
