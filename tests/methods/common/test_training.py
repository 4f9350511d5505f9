"""The shared training loop: determinism, resume after SIGKILL, torchrun equivalence, eval sharding."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from evaluators.core import distributed as D
from methods.common.training import global_batches, local_slice
from tests.methods.common.toy_train import run, wait_for_hang

SCRIPT = Path(__file__).with_name("toy_train.py")
REPO = Path(__file__).resolve().parents[3]


def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    env.pop("WORLD_SIZE", None)
    return env


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_same_seed_gives_bit_identical_weights():
    a, b, c = run(seed=3, steps=20), run(seed=3, steps=20), run(seed=4, steps=20)
    assert _same(a["weights"], b["weights"])
    assert a["history"] == b["history"] and a["metric"] == b["metric"]
    assert not _same(a["weights"], c["weights"])  # the seed matters, so the check above can fail
    init = run(seed=3, steps=0)["weights"]
    assert torch.equal(a["weights"]["unused.weight"], init["unused.weight"])  # no grad -> untouched
    assert not torch.equal(a["weights"]["net.0.weight"], init["net.0.weight"])


def test_dataloader_workers_do_not_change_the_run():
    a, b = run(seed=2, steps=12, dataset_rng=False), run(seed=2, steps=12, num_workers=2, dataset_rng=False)
    assert _same(a["weights"], b["weights"]) and a["history"] == b["history"]


def test_data_order_covers_each_sample_once_per_epoch_and_splits_global_batch():
    batches = global_batches(50, 7, seed=0, epoch=2)
    flat = torch.cat(batches).tolist()
    assert len(batches) == 7 and len(set(flat)) == 49  # drop_last: 7 full batches, no repeats
    assert global_batches(50, 7, 0, 2)[0].tolist() == batches[0].tolist()
    assert global_batches(50, 7, 0, 3)[0].tolist() != batches[0].tolist()
    parts = [local_slice(batches[0], r, 2).tolist() for r in range(2)]
    assert parts[0] + parts[1] == batches[0].tolist() and [len(p) for p in parts] == [4, 3]


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_resume_after_sigkill_matches_uninterrupted_run(tmp_path):
    ckpt_dir = tmp_path / "ckpt"
    args = [sys.executable, str(SCRIPT), "--steps", "40", "--ckpt-every", "5", "--ckpt-dir", str(ckpt_dir)]
    # it blocks after step 7, past the step-5 checkpoint: the kill lands at a known step
    proc = subprocess.Popen([*args, "--out", str(tmp_path / "killed.pt"), "--hang-at", "7"], env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt = ckpt_dir / "last.pt"
    wait_for_hang(proc, tmp_path / "killed.pt.hanging")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "killed.pt").exists()  # it really died before finishing
    killed_at = torch.load(ckpt, weights_only=False)["step"]
    assert killed_at == 5

    subprocess.run([*args, "--out", str(tmp_path / "resumed.pt")], env=_env(), check=True, capture_output=True)
    resumed = torch.load(tmp_path / "resumed.pt", weights_only=False)
    reference = run(seed=0, steps=40, ckpt_dir=tmp_path / "uninterrupted")
    assert resumed["resumed_from"] is not None and resumed["resumed_from"] >= killed_at
    assert resumed["step"] == reference["step"] == 40
    assert _same(resumed["weights"], reference["weights"])
    assert resumed["history"] == reference["history"]
    assert resumed["metric"] == reference["metric"]
    assert resumed["lr"] == reference["lr"]  # the scheduler resumed too


def test_a_finished_checkpoint_is_not_retrained(tmp_path):
    first = run(seed=1, steps=10, ckpt_dir=tmp_path, noise=False)
    again = run(seed=1, steps=10, ckpt_dir=tmp_path, noise=False)
    assert again["resumed_from"] == 10 and _same(first["weights"], again["weights"])
    partial = run(seed=1, steps=10, ckpt_dir=tmp_path / "p", noise=False, stop_after=4)
    assert partial["step"] == 4


@pytest.fixture(scope="module")
def torchrun_result(tmp_path_factory):
    """One ``torchrun --nproc_per_node=2`` (gloo) run of the toy, shared by the two tests below."""
    out = tmp_path_factory.mktemp("ddp") / "ddp.pt"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(SCRIPT),
           "--steps", "20", "--batch-size", "7", "--no-noise", "--out", str(out)]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return torch.load(out, weights_only=False)


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_two_processes_reach_the_weights_of_one(torchrun_result):
    single = run(seed=0, steps=20, batch_size=7, noise=False)
    assert torchrun_result["world_size"] == 2
    for k, v in single["weights"].items():
        torch.testing.assert_close(torchrun_result["weights"][k], v, rtol=1e-5, atol=1e-6)
    assert torchrun_result["history"] == pytest.approx(single["history"], rel=1e-5, abs=1e-7)
    init = run(seed=0, steps=0)["weights"]
    assert not torch.allclose(single["weights"]["net.0.weight"], init["net.0.weight"])


def test_sharded_evaluation_counts_every_sample_once(torchrun_result):
    single = run(seed=0, steps=20, batch_size=7, noise=False)
    res = torchrun_result
    assert res["n_samples"] == {"expected": 11, "evaluated": 11}
    assert res["eval_indices"].tolist() == list(range(11))  # each sample once, original order
    torch.testing.assert_close(res["eval_errors"], single["eval_errors"], rtol=1e-5, atol=1e-6)


def test_shard_indices_partition_without_padding():
    for n in (0, 1, 5, 11, 64):
        for w in (1, 2, 3, 4):
            shards = [D.shard_indices(n, w, r).tolist() for r in range(w)]
            assert sum(shards, []) == list(range(n))
            assert max(map(len, shards)) - min(map(len, shards)) <= 1


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_dataset_generators_are_found_and_checkpointed(tmp_path):
    from methods.common.training import dataset_generators
    from tests.methods.common.toy_train import JitterDataset, make_data

    ds = JitterDataset(make_data()[0], seed=0)
    assert list(dataset_generators(ds)) == ["rng"]
    # a stop/resume in the same process (no kill): the dataset RNG resumes where it stopped
    ref = run(seed=0, steps=12, ckpt_dir=tmp_path / "ref")
    run(seed=0, steps=12, ckpt_dir=tmp_path / "part", stop_after=5)
    res = run(seed=0, steps=12, ckpt_dir=tmp_path / "part")
    assert res["resumed_from"] == 5
    assert _same(res["weights"], ref["weights"]) and res["history"] == ref["history"]


def test_truncated_last_checkpoint_falls_back_to_prev_with_one_warning(tmp_path, caplog):
    ref = run(seed=0, steps=12, ckpt_dir=tmp_path / "ref")
    d = tmp_path / "part"
    run(seed=0, steps=12, ckpt_dir=d, stop_after=10, ckpt_every=5)  # last.pt at 10, prev.pt at 5
    from evaluators.core.safe_load import load_checkpoint_file

    assert load_checkpoint_file(d / "prev.pt")["step"] == 5  # weights_only=True reads our own files
    raw = (d / "last.pt").read_bytes()
    (d / "last.pt").write_bytes(raw[: len(raw) // 2])
    with caplog.at_level("WARNING"):
        res = run(seed=0, steps=12, ckpt_dir=d, ckpt_every=5)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and str(d / "last.pt") in warnings[0] and "prev.pt" in warnings[0]
    assert res["resumed_from"] == 5
    assert _same(res["weights"], ref["weights"]) and res["history"] == ref["history"]


def test_both_checkpoints_damaged_is_a_named_error(tmp_path):
    from evaluators.core.safe_load import CheckpointError

    d = tmp_path / "ck"
    run(seed=0, steps=10, ckpt_dir=d, ckpt_every=5)
    for name in ("last.pt", "prev.pt"):
        (d / name).write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CheckpointError, match="prev.pt"):
        run(seed=0, steps=12, ckpt_dir=d)


def test_full_disk_names_the_file_keeps_the_previous_checkpoint_and_resumes(tmp_path, monkeypatch):
    import errno

    from evaluators.core import io as core_io
    from evaluators.core.io import DiskFull
    from methods.common import train_checkpoint as tc

    ref = run(seed=0, steps=10, ckpt_dir=tmp_path / "ref")
    real, calls = tc.atomic_torch_save, []

    def fills_on_second_save(obj, path):
        calls.append(path)
        if len(calls) == 2:  # what the atomic writer raises when fsync meets ENOSPC
            raise core_io._disk_full(OSError(errno.ENOSPC, "No space left on device"), Path(path))
        return real(obj, path)

    monkeypatch.setattr(tc, "atomic_torch_save", fills_on_second_save)
    d = tmp_path / "ck"
    with pytest.raises(DiskFull) as ei:
        run(seed=0, steps=10, ckpt_dir=d, ckpt_every=5)
    assert str(ei.value) == f"no space left on the disk holding {d} while writing last.pt (the previous last.pt is kept)"
    from evaluators.core.safe_load import load_checkpoint_file

    assert load_checkpoint_file(d / "last.pt")["step"] == 5
    monkeypatch.setattr(tc, "atomic_torch_save", real)
    res = run(seed=0, steps=10, ckpt_dir=d, ckpt_every=5)  # space again: resumes from step 5
    assert res["resumed_from"] == 5 and _same(res["weights"], ref["weights"])
