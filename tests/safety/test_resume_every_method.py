"""Kill/resume for every method: a run stopped at a checkpoint and re-run ends bit-identical, in its
weights AND its run records.

Each case goes through the runner (:func:`evaluators.runner.run.run_experiment`, in process): training,
the runner's own checkpoint, one cheap protocol and the records it writes. Three runs per method:

1. uninterrupted, in ``runs_dir`` A;
2. killed, in ``runs_dir`` B: ``$MOTIONREPRO_STOP_AFTER`` makes the training loop write the
   checkpoint of that step and then raise :class:`TrainingInterrupted`, ending the run as a kill
   would (no records, later stages never run); multi-stage methods are stopped inside their
   second stage, so the re-run also reloads a finished stage and its RNG/dataset-generator state;
3. the same command again in B: it resumes and finishes.

Then every ``last.pt`` and ``method.pt`` of B equals A's (tensors bit for bit, optimizer, RNG
and dataset-generator states, step, loss history), and every record of B equals A's in every
field except :data:`VOLATILE` (wall-clock fields and the installed-vs-lock check); paths differ only by the ``runs_dir`` prefix,
which is replaced by a placeholder before comparing. ``test_mld_killed_by_sigkill...`` does the
same with a real ``kill -9`` of ``python -m evaluators.run`` once a checkpoint file appears.
Every stage's training curves (TensorBoard events and ``scalars.csv``) hold each of its steps once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from evaluators.records import read_records
from methods import get_method
from methods.common.curves import CSV_NAME, PNG_NAME, TB_DIR, read_scalars
from methods.common.training import STOP_ENV, TrainingInterrupted

REPO = Path(__file__).resolve().parents[2]

# The ONLY record fields allowed to differ between a resumed and an uninterrupted run: wall-clock
# readings (start time, the runner's train/protocol seconds, the linear probe's and the pose
# protocol's own timings). Both runs use the same runs_dir path, so paths (and the workdir hash in
# provenance) are compared like everything else.
VOLATILE = ("started", "wall_s", "extra.train_wall_s", "extra.protocol_wall_s", "extra.wall_s",
            "extra.infer_s_per_instance",
            # installed packages vs the lock, as the process that wrote the record saw them: the resumed
            # process may legitimately see another environment (an upgrade between kill and rerun must
            # show); versions, lock name and hash stay compared
            "environment.lock.matches_installed", "environment.lock.differs")

T2M_DATA = ["dataset.n_train=24", "dataset.n_val=4", "dataset.n_test=16"]  # 32 test motions: one R-precision batch
T2M_EVAL = ["protocols=[text2motion]", "protocol_cfg.text2motion.steps_sweep=null",
            "protocol_cfg.text2motion.aits.enabled=false",  # AITS is a wall-time metric
            "protocol_cfg.text2motion.mm.mode=t2m", "protocol_cfg.text2motion.mm.num_samples=2",
            "protocol_cfg.text2motion.mm.num_repeats=3",
            "protocol_cfg.text2motion.mm.num_batches=1",
            "protocol_cfg.text2motion.evaluator.train.steps=2"]
T2M_TOK = ["method_cfg.render.n=0", "method_cfg.tokenizer.steps=3", "method_cfg.mask_transformer.steps=3",
           "method_cfg.residual_transformer.steps=3", "method_cfg.tokenizer.width=32",
           "method_cfg.tokenizer.code_dim=16", "method_cfg.tokenizer.nb_code=32",
           "method_cfg.tokenizer.batch_size=8", "method_cfg.mask_transformer.batch_size=8",
           "method_cfg.residual_transformer.batch_size=8",
           "protocol_cfg.text2motion.debug_checks.residual_codes=warn"]  # 3 steps leave collapsed codebooks
POSE = ["dataset.n_train=40", "dataset.n_val=12", "method_cfg.train.total_steps=4", "method_cfg.train.batch_size=4", "method_cfg.flip_test=false",
        "protocol_cfg.coco_ap.boxes=[gt]", "protocol_cfg.coco_ap.overlays=0", "protocol_cfg.coco_ap.steps_sweep=null"]
MLD = ["method_cfg.render.n=0", "method_cfg.vae.steps=3", "method_cfg.denoiser.steps=3",
       "method_cfg.vae.batch_size=8", "method_cfg.denoiser.batch_size=8", "method_cfg.vae.num_layers=1",
       "method_cfg.denoiser.num_layers=1"]
METHODS = {  # method: (experiment, overrides at smoke scale, where to stop)
    "mld": ("mld_synth-t2m", [*MLD, *T2M_DATA, *T2M_EVAL], "mld-denoiser:2"),
    "momask": ("momask_synth-t2m", [*T2M_TOK, *T2M_DATA, *T2M_EVAL], "mask_transformer:2"),
    "hgm3": ("hgm3_synth-t2m", [*T2M_TOK, *T2M_DATA, *T2M_EVAL], "mask_transformer:2"),
    "macdiff": ("macdiff_synth-ntu", ["method_cfg.pretrain.total_steps=4", "method_cfg.pretrain.batch_size=8",
                                      "dataset.num_actions=4", "dataset.cameras=[1]", "protocols=[linear]", "protocol_cfg.linear.features=frozen_once",
                                      "protocol_cfg.linear.epochs=2", "protocol_cfg.linear.poolings=[mean]"],
                "macdiff-pretrain:2"),
    "diffusionpose": ("diffusionpose_synth-coco", POSE, "2"),
    "heatmap_baseline": ("heatmap_baseline_synth-coco", POSE, "2"),
}


def test_every_registered_training_method_is_covered():
    from methods import list_methods

    trainable = {m for m in list_methods() if not getattr(get_method(m), "testing_only", False)}
    assert trainable <= set(METHODS), trainable - set(METHODS)


def _overrides(experiment: str, overrides: list[str], runs: Path) -> list[str]:
    from evaluators.runner.compose import upsert

    return [upsert(o) for o in (f"+experiment={experiment}", "scale=smoke", f"runs_dir={runs}", "leaderboards=false",
                                 "device=cpu", *overrides)]


def _run(experiment: str, overrides: list[str], runs: Path) -> None:
    """One runner invocation in this process (records land in ``runs/records``)."""
    from evaluators.runner.run import compose, load_plugins, run_experiment

    load_plugins()
    ov = _overrides(experiment, overrides, runs)
    run_experiment(compose(ov), ov)


def _drop(rec: dict, dotted: tuple[str, ...]) -> dict:
    """``rec`` without the fields ``dotted`` names (those a record has; protocols time different things)."""
    rec = dict(rec)
    for key in dotted:
        *parents, leaf = key.split(".")
        node = rec
        for p in parents:
            node[p] = dict(node.get(p) or {})
            node = node[p]
        node.pop(leaf, None)
    return rec


def _records(runs: Path) -> dict[tuple, dict]:
    out = {}
    for rec in read_records(runs / "records"):
        key = (rec["protocol"], rec["split"], rec["variant"])
        assert key not in out, f"two records for {key} in {runs}"
        out[key] = _drop(rec, VOLATILE)
    return out


def _differences(a, b, where: str = "") -> list[str]:
    """Paths at which two nested values differ (tensors and arrays bit for bit)."""
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        same = isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype \
            and a.shape == b.shape and torch.equal(a, b)
        return [] if same else [where]
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return [] if np.array_equal(a, b) and np.asarray(a).dtype == np.asarray(b).dtype else [where]
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{where} keys {sorted(set(a) ^ set(b), key=str)}"]
        return [d for k in a for d in _differences(a[k], b[k], f"{where}.{k}")]
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return [f"{where} length {len(a)} != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{where}[{i}]")]
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return []
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


def _checkpoints(runs: Path) -> dict[str, object]:
    """Every ``last.pt`` (training loop) and ``method.pt`` (runner) under ``runs/work``, by relative path."""
    files = sorted([*(runs / "work").rglob("last.pt"), *(runs / "work").rglob("method.pt")])
    return {str(f.relative_to(runs)): torch.load(f, map_location="cpu", weights_only=False) for f in files}


def _snapshot(runs: Path) -> tuple[dict, dict]:
    return _checkpoints(runs), _records(runs)


def assert_same_run(reference: tuple[dict, dict], resumed: Path) -> None:
    """``resumed`` (a runs_dir) holds the checkpoints and records of ``reference`` (what
    :func:`_snapshot` read from the uninterrupted run at the same path)."""
    (ck_a, rec_a), (ck_b, rec_b) = reference, _snapshot(resumed)
    assert ck_a and ck_a.keys() == ck_b.keys(), (sorted(ck_a), sorted(ck_b))
    differ = [d for k in ck_a for d in _differences(ck_a[k], ck_b[k], k)]
    assert not differ, f"{len(differ)} checkpoint entries differ, e.g. {differ[:5]}"
    assert rec_a and rec_a.keys() == rec_b.keys(), (sorted(rec_a), sorted(rec_b))
    differ = [d for k in rec_a for d in _differences(rec_a[k], rec_b[k], "/".join(k))]
    assert not differ, f"{len(differ)} record fields differ, e.g. {differ[:5]}"


def assert_curves_once_per_step(runs: Path) -> None:
    """Each training stage under ``runs/work`` (a folder with ``last.pt``) has curves at steps 1..N once
    each, N its checkpoint's step, read back by TensorBoard's own reader and from the CSV."""
    stages = sorted(p.parent for p in (runs / "work").rglob("last.pt"))
    assert stages
    for d in stages:
        want = list(range(1, int(torch.load(d / "last.pt", weights_only=False)["step"]) + 1))
        acc = EventAccumulator(str(d / TB_DIR), size_guidance={"scalars": 0})
        acc.Reload()
        assert [e.step for e in acc.Scalars("train/loss")] == want, d
        assert [s for s, tag, _ in read_scalars(d / CSV_NAME) if tag == "train/loss"] == want, d
        assert (d / PNG_NAME).exists(), d


def uninterrupted_then_moved(experiment: str, overrides: list[str], runs: Path) -> tuple[dict, dict]:
    """Run uninterrupted in ``runs``, read its checkpoints and records, then move it aside: the
    interrupted run reuses the same path, so that paths in records and checkpoints compare too."""
    _run(experiment, overrides, runs)
    ref = _snapshot(runs)
    runs.rename(runs.with_name(runs.name + "-uninterrupted"))
    return ref


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
@pytest.mark.parametrize("name", sorted(set(METHODS) - {"mld"}))  # MLD: the real SIGKILL test below
def test_interrupted_run_resumes_to_identical_weights_and_records(name, tmp_path, monkeypatch):
    experiment, overrides, stop = METHODS[name]
    runs = tmp_path / "runs"
    reference = uninterrupted_then_moved(experiment, overrides, runs)
    monkeypatch.setenv(STOP_ENV, stop)
    with pytest.raises(TrainingInterrupted):
        _run(experiment, overrides, runs)
    assert not list(runs.glob("records/*.json"))  # it stopped before any protocol ran
    monkeypatch.delenv(STOP_ENV)
    _run(experiment, overrides, runs)
    assert_same_run(reference, runs)
    assert_curves_once_per_step(runs)


# MLD with a denoiser stage long enough to be killed inside it: a checkpoint every 4 of 24 steps
MLD_KILL = [*METHODS["mld"][1], "method_cfg.denoiser.steps=24", "method_cfg.denoiser.ckpt_every=4"]


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_mld_killed_by_sigkill_resumes_to_identical_weights_and_records(tmp_path):
    """``kill -9`` of ``python -m evaluators.run`` once ``denoiser/last.pt`` exists, then the same
    command again: weights and records equal an uninterrupted run's (the kill-and-rerun case from the command line)."""
    experiment = METHODS["mld"][0]
    runs = tmp_path / "runs"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the subprocesses (OMP_NUM_THREADS=1)
    try:
        reference = uninterrupted_then_moved(experiment, MLD_KILL, runs)
    finally:
        torch.set_num_threads(threads)
    cmd = [sys.executable, "-m", "evaluators.runner.run", *_overrides(experiment, MLD_KILL, runs)]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]))
    env.pop(STOP_ENV, None)
    with open(tmp_path / "killed.log", "wb") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while not list(runs.glob("work/mld/*/*/denoiser/last.pt")):
            assert proc.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no denoiser checkpoint within 300 s"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not list(runs.glob("work/mld/*/*/method.pt")) and not list(runs.glob("records/*.json"))  # died mid-run
    killed_at = torch.load(next(runs.glob("work/mld/*/*/denoiser/last.pt")), weights_only=False)["step"]
    assert 0 < killed_at < 24
    again = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "mld-denoiser: resumed from" in again.stdout + again.stderr
    assert_same_run(reference, runs)
    assert_curves_once_per_step(runs)
