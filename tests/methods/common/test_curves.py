"""Training curves of the shared loop (methods/common/curves.py): read back with TensorBoard's own
reader, one point per optimizer step, unchanged numbers, resume without duplicates, rank 0 only."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from methods.common.curves import CSV_NAME, CURVES_ENV, PNG_NAME, TB_DIR, curves_enabled, read_scalars
from methods.common.training import train
from tests.methods.common.toy_train import run, wait_for_hang

SCRIPT = Path(__file__).with_name("toy_train.py")
REPO = Path(__file__).resolve().parents[3]
TRAIN_TAGS = {"train/loss", "train/mse", "train/lr", "train/grad_norm", "train/samples_per_s"}


def events(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """``{tag: [(step, value)]}`` as TensorBoard reads the run folder's ``tb/`` (all event files)."""
    acc = EventAccumulator(str(run_dir / TB_DIR), size_guidance={"scalars": 0})
    acc.Reload()
    return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}


def csv_series(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    out: dict[str, list[tuple[int, float]]] = {}
    for step, tag, value in read_scalars(run_dir / CSV_NAME):
        out.setdefault(tag, []).append((step, value))
    return out


def _rng_states() -> tuple:
    return torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy()


def test_curves_change_no_number(tmp_path, monkeypatch):
    on = run(seed=3, steps=15, ckpt_dir=tmp_path / "on")
    rng_on = _rng_states()
    monkeypatch.setenv(CURVES_ENV, "0")
    off = run(seed=3, steps=15, ckpt_dir=tmp_path / "off")
    rng_off = _rng_states()
    assert (tmp_path / "on" / CSV_NAME).exists() and not (tmp_path / "off" / CSV_NAME).exists()
    assert not (tmp_path / "off" / TB_DIR).exists()
    assert on["weights"].keys() == off["weights"].keys()
    assert all(torch.equal(on["weights"][k], off["weights"][k]) for k in on["weights"])
    assert on["history"] == off["history"] and on["metric"] == off["metric"]
    assert torch.equal(rng_on[0], rng_off[0]) and rng_on[1] == rng_off[1] and np.array_equal(rng_on[2], rng_off[2])
    on_ck = torch.load(tmp_path / "on" / "last.pt", weights_only=False)
    off_ck = torch.load(tmp_path / "off" / "last.pt", weights_only=False)
    assert all(torch.equal(on_ck["modules"]["model"][k], v) for k, v in off_ck["modules"]["model"].items())


def test_event_steps_are_the_optimizer_steps(tmp_path):
    res = run(seed=0, steps=23, ckpt_dir=tmp_path)
    ev = events(tmp_path)
    assert set(ev) == TRAIN_TAGS
    for tag in TRAIN_TAGS:
        assert [s for s, _ in ev[tag]] == list(range(1, 24)), tag
    # TensorBoard stores float32; the loop's loss is a float32 tensor's value, so it reads back exactly
    assert [v for _, v in ev["train/loss"]] == res["history"]
    # the toy's StepLR(step_size=10, gamma=0.5) from 1e-2: steps 1-10 use 1e-2, 11-20 5e-3, 21-23 2.5e-3
    lr = [v for _, v in ev["train/lr"]]
    assert lr == pytest.approx([1e-2 * 0.5 ** ((s - 1) // 10) for s in range(1, 24)], rel=1e-6)
    assert all(v > 0 for _, v in ev["train/grad_norm"] + ev["train/samples_per_s"])
    # the CSV holds the same points (float64 there)
    table = csv_series(tmp_path)
    assert set(table) == TRAIN_TAGS
    for tag in TRAIN_TAGS:
        assert [s for s, _ in table[tag]] == [s for s, _ in ev[tag]]
        assert [v for _, v in table[tag]] == pytest.approx([v for _, v in ev[tag]], rel=1e-6)
    assert (tmp_path / PNG_NAME).stat().st_size > 0


def test_grad_norm_is_the_norm_of_the_first_step_gradient(tmp_path):
    """Independent check of ``train/grad_norm``: the L2 norm of d(loss)/d(params) of step 1, by autograd
    outside the loop (no clipping, one parameter tensor, a fixed batch = the whole dataset)."""
    x = torch.linspace(-1, 1, 8).reshape(8, 1)
    y = 3 * x
    w = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.constant_(w.weight, 0.5)
    expected = torch.autograd.grad(((w(x) - y) ** 2).mean(), w.weight)[0].norm().item()  # |2 mean(x(0.5x-3x))|
    opt = torch.optim.SGD(w.parameters(), lr=0.1)
    ds = torch.utils.data.TensorDataset(x, y)
    train({"w": w}, opt, ds, batch_size=8, total_steps=1, ckpt_dir=tmp_path,
          step_fn=lambda b, s: (((w(b[0]) - b[1]) ** 2).mean(), {}))
    (step, value), = events(tmp_path)["train/grad_norm"]
    assert step == 1 and value == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx(2 * 2.5 * float((x ** 2).mean()), rel=1e-6)


def test_validation_metrics_from_on_step_are_curves_at_their_step(tmp_path):
    w = torch.nn.Linear(2, 1)
    opt = torch.optim.SGD(w.parameters(), lr=0.1)
    ds = torch.utils.data.TensorDataset(torch.randn(12, 2), torch.randn(12, 1))

    def on_step(state):
        if state.step % 3 == 0:
            state.val["AP"] = 10.0 * state.step  # what BestCheckpoint does with its scorer's value

    train({"w": w}, opt, ds, batch_size=4, total_steps=7, ckpt_dir=tmp_path, on_step=on_step,
          step_fn=lambda b, s: (((w(b[0]) - b[1]) ** 2).mean(), {}))
    assert events(tmp_path)["val/AP"] == [(3, 30.0), (6, 60.0)]
    assert csv_series(tmp_path)["val/AP"] == [(3, 30.0), (6, 60.0)]


def _assert_once_each(run_dir: Path, n: int, reference: dict) -> None:
    ev, table = events(run_dir), csv_series(run_dir)
    for tag in TRAIN_TAGS:
        assert [s for s, _ in ev[tag]] == list(range(1, n + 1)), (tag, [s for s, _ in ev[tag]])
        assert [s for s, _ in table[tag]] == list(range(1, n + 1)), tag
    assert [v for _, v in ev["train/loss"]] == reference["history"]  # and they are the uninterrupted run's values


def test_stop_and_resume_continue_the_curves(tmp_path):
    ref = run(seed=0, steps=12, ckpt_dir=tmp_path / "ref")
    run(seed=0, steps=12, ckpt_dir=tmp_path / "part", stop_after=5)
    assert [s for s, _ in events(tmp_path / "part")["train/loss"]] == [1, 2, 3, 4, 5]
    res = run(seed=0, steps=12, ckpt_dir=tmp_path / "part")
    assert res["resumed_from"] == 5
    _assert_once_each(tmp_path / "part", 12, ref)
    again = run(seed=0, steps=12, ckpt_dir=tmp_path / "part")  # finished: nothing retrained, nothing appended
    assert again["resumed_from"] == 12
    _assert_once_each(tmp_path / "part", 12, ref)


def test_resume_from_an_earlier_checkpoint_drops_the_steps_trained_again(tmp_path):
    """Steps 6..10 were logged, then last.pt (10) is damaged: the run resumes from prev.pt (5) and
    trains 6..10 again; the curves hold them once, with the values of the second pass."""
    ref = run(seed=0, steps=12, ckpt_dir=tmp_path / "ref")
    d = tmp_path / "part"
    run(seed=0, steps=12, ckpt_dir=d, stop_after=10, ckpt_every=5)
    raw = (d / "last.pt").read_bytes()
    (d / "last.pt").write_bytes(raw[: len(raw) // 2])
    res = run(seed=0, steps=12, ckpt_dir=d, ckpt_every=5)
    assert res["resumed_from"] == 5
    _assert_once_each(d, 12, ref)


def _env(**extra) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", **extra)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    env.pop("WORLD_SIZE", None)
    return env


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_sigkill_and_resume_give_each_step_once(tmp_path):
    """A real ``kill -9`` after the first checkpoint (steps after it may be logged already), then the
    same command: TensorBoard and the CSV read back steps 1..40 exactly once each."""
    ckpt_dir = tmp_path / "ckpt"
    args = [sys.executable, str(SCRIPT), "--steps", "40", "--ckpt-every", "5", "--ckpt-dir", str(ckpt_dir)]
    # it blocks after step 8: three steps past the step-5 checkpoint, so that there is something to purge
    proc = subprocess.Popen([*args, "--out", str(tmp_path / "killed.pt"), "--hang-at", "8"], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for_hang(proc, tmp_path / "killed.pt.hanging")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL and not (tmp_path / "killed.pt").exists()
    killed_at = torch.load(ckpt_dir / "last.pt", weights_only=False)["step"]
    assert killed_at == 5
    assert {s for s, _ in events(ckpt_dir)["train/loss"]} >= set(range(1, killed_at + 1))  # flushed before the checkpoint
    subprocess.run([*args, "--out", str(tmp_path / "resumed.pt")], env=_env(), check=True, capture_output=True)
    reference = run(seed=0, steps=40)
    _assert_once_each(ckpt_dir, 40, reference)


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_only_rank_zero_writes_under_torchrun(tmp_path):
    out, ckpt_dir = tmp_path / "ddp.pt", tmp_path / "ckpt"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(SCRIPT),
           "--steps", "6", "--batch-size", "7", "--no-noise", "--ckpt-dir", str(ckpt_dir), "--out", str(out)]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(list((ckpt_dir / TB_DIR).iterdir())) == 1  # one event file: one writer
    history = torch.load(out, weights_only=False)["history"]
    ev = events(ckpt_dir)
    assert [s for s, _ in ev["train/loss"]] == list(range(1, 7))
    assert [v for _, v in ev["train/loss"]] == history  # the global (all-reduced) loss


def test_the_switch(monkeypatch):
    for raw, want in (("", True), ("1", True), ("0", False), ("off", False)):
        monkeypatch.setenv(CURVES_ENV, raw)
        assert curves_enabled() is want
    monkeypatch.setenv(CURVES_ENV, "maybe")
    with pytest.raises(ValueError, match=CURVES_ENV):
        curves_enabled()
