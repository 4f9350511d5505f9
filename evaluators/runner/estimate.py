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

Stages other than the method's main training stage use the main stage's cost per sample
(``~main`` in the table); a frozen-encoder pass (linear probe) is one forward, taken as a
third of a training step (``# ours:`` the usual forward:backward = 1:2 rule). Dataset split
sizes are the published ones (``SPLIT_SIZES``, with their source); a dataset this table does
not know is reported as such instead of guessed.
"""

from __future__ import annotations

import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tabulate import tabulate

from evaluators.core.config import list_configs
from evaluators.runner.compose import compose
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
PROBE_BATCH = 4  # ours: small enough for paper-scale models on a 2-core CPU
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


@dataclass
class Costs:
    """Seconds per training sample and per generated/evaluated sample, and the peak memory seen."""
    train_s: float | None
    infer_s: float | None
    peak_mib: float | None
    source: str


_LOAD: dict[str, Any] = {"cpu_s": 0.0, "wall_s": 0.0}


def _busy_cpu_s() -> float | None:
    """CPU-seconds every process on the machine has used (``/proc/stat``; None elsewhere)."""
    try:
        with open("/proc/stat") as fh:
            fields = fh.readline().split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return None


def _median_time(fn, reps: int = 3) -> float:
    """Median wall seconds of ``fn`` after one warm-up. The probe's own CPU time and the whole
    machine's busy CPU time are summed too, so other processes' share can be reported."""
    fn()  # warm-up (lazy init, allocator)
    times = []
    for _ in range(reps):
        b0, t0, c0 = _busy_cpu_s(), time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - t0)
        b1 = _busy_cpu_s()
        _LOAD["cpu_s"] += time.process_time() - c0
        _LOAD["wall_s"] += times[-1]
        if b0 is not None and b1 is not None:
            _LOAD["machine_cpu_s"] = _LOAD.get("machine_cpu_s", 0.0) + (b1 - b0)
    return statistics.median(times)


OTHER_LOAD_LIMIT = 0.25  # ours: CPUs used by other processes during the probe above which it is flagged


def probe_load() -> tuple[float, float | None]:
    """(CPUs the probe used, CPUs other processes used meanwhile; None without /proc/stat)."""
    if not _LOAD["wall_s"]:
        return 0.0, None
    own = _LOAD["cpu_s"] / _LOAD["wall_s"]
    machine = _LOAD.get("machine_cpu_s")
    return own, None if machine is None else max(0.0, machine / _LOAD["wall_s"] - own)


def contention_note(device: str) -> str:
    """One line on the probe's CPU use; CONTENDED when other processes took CPU meanwhile."""

    if device.startswith("cuda") or not _LOAD["wall_s"]:
        return ""
    own, other = probe_load()
    threads = torch.get_num_threads()
    if other is not None and other > OTHER_LOAD_LIMIT:
        return (f"CONTENDED: other processes used {other:.2f} CPUs during the probe (it used {own:.2f} with "
                f"{threads} threads); its seconds are too high, rerun on a quiet machine")
    return (f"probe used {own:.2f} CPUs with {threads} threads; other processes "
            f"{'unknown' if other is None else f'{other:.2f}'} CPUs (not contended)")


def probe_costs(method, device: str, batch: int = PROBE_BATCH) -> Costs:
    """Time the method's own benchmark hooks on this machine."""

    sync = (lambda: torch.cuda.synchronize()) if device.startswith("cuda") else (lambda: None)
    train_s = infer_s = None
    failed = []
    try:
        step = method.train_step_example(batch)
        if step is not None:
            train_s = _median_time(lambda: (step(), sync())) / batch
    except Exception as e:  # noqa: BLE001 - a probe that cannot run leaves its stages untimed, said in the table
        failed.append(f"train-step probe failed ({type(e).__name__}: {e})")
    try:
        ex = method.denoiser_example(batch)
        if ex is not None:
            module, inputs = ex
            n_steps = _sampler_steps(method)
            with torch.inference_mode():
                infer_s = _median_time(lambda: (module(*inputs), sync())) * n_steps / batch
    except Exception as e:  # noqa: BLE001
        failed.append(f"sampling probe failed ({type(e).__name__}: {e})")
    if failed:
        _LOAD["failed"] = "; ".join(failed) + (" - sizes a method takes from its data at fit time can be set "
                                               "on the command line, e.g. method_cfg.nfeats=N")
    if device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return Costs(train_s, infer_s, peak, f"probe (batch {batch}, {device})")


def _sampler_steps(method) -> int:
    return int(method.default_steps or 1)


def bench_costs(method_name: str, path: str | os.PathLike) -> Costs:
    """Costs from a committed pytest-benchmark JSON of a named machine."""

    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"--estimate-from {path}: cannot read benchmark JSON ({e})") from None
    train_s = infer_s = peak = None
    for b in data.get("benchmarks", []):
        info = b.get("extra_info", {})
        if info.get("method") != method_name:
            continue
        if b["name"].startswith("test_train_step") and info.get("samples_per_s"):
            train_s = 1.0 / float(info["samples_per_s"])
        if b["name"].startswith("test_sampling_batch32"):
            infer_s = float(b["stats"]["mean"]) / float(info.get("batch", 32))
            steps = info.get("steps")
            if info.get("max_steps") and steps:  # measured at fewer steps: per-step cost is the same
                infer_s *= steps / info["max_steps"]
        for k in ("peak_allocated_mib", "peak_rss_mib"):
            if info.get(k):
                peak = max(peak or 0.0, float(info[k]))
    machine = data.get("machine_info", {})
    label = machine.get("gpu") or (machine.get("cpu") or {}).get("brand_raw") or "?"
    return Costs(train_s, infer_s, peak, f"bench:{path.name} ({label})")


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
    if _LOAD.get("failed"):
        out.append(_LOAD["failed"])
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
    import json
    import sys

    if sys.argv[1:2] == ["--row"]:
        print(json.dumps(summary_row(sys.argv[2])))
    else:
        print(estimate_all(sys.argv[1:] or None))
