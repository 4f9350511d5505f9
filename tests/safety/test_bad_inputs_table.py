"""The bad-input table: every loader, the run config, checkpoints and records, one malformed input each.

Every row builds one bad input under ``tmp_path`` and returns ``(call, error class, needle)``:
calling it must raise exactly that class, and the message must name the file or the key
(``needle``). The CLI rows at the end run the real entry points in a subprocess and also check
exit code 2 and a one-line message. The crafted pickles/checkpoints also check that nothing ran.
The dataset readers' rows are in ``bad_input_dataset_rows.py``; the run-config, checkpoint and
record rows are here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from evaluators.core.safe_load import CheckpointError
from evaluators.records import RecordError, make_record, read_record
from evaluators.runner.run import ConfigError
from tests.safety.bad_input_dataset_rows import DATASET_CASES
from tests.safety.bad_input_rows import Evil, registrar

REPO = Path(__file__).resolve().parents[2]
CASES: dict[str, object] = {}
case = registrar(CASES)


# -- run configuration (plan() runs before any data is read) ------------------------------------------------
def _plan(*extra: str):
    from evaluators.runner.compose import upsert
    from evaluators.runner.run import compose, load_plugins, plan

    load_plugins()
    ov = [upsert(o) for o in ("+experiment=mld_synth-t2m", "scale=smoke", *extra)]
    return lambda: plan(compose(ov), ov)


CONFIG_ROWS = {
    "cfg-steps-negative": ("method_cfg.vae.steps=-5", "vae.steps"),
    "cfg-steps-zero": ("method_cfg.denoiser.steps=0", "denoiser.steps"),
    "cfg-steps-string": ("method_cfg.vae.steps=abc", "vae.steps"),
    "cfg-steps-float": ("method_cfg.vae.steps=2.5", "vae.steps"),
    "cfg-epochs-zero": ("method_cfg.vae.epochs=0", "vae.epochs"),
    "cfg-batch-zero": ("method_cfg.vae.batch_size=0", "vae.batch_size"),
    "cfg-batch-negative": ("method_cfg.denoiser.batch_size=-3", "denoiser.batch_size"),
    "cfg-dropout-above-1": ("method_cfg.vae.dropout=1.5", "vae.dropout"),
    "cfg-dropout-negative": ("method_cfg.vae.dropout=-0.1", "vae.dropout"),
    "cfg-dropout-string": ("method_cfg.vae.dropout=high", "vae.dropout"),
    "cfg-seed-string": ("seed=abc", "seed"),
    "cfg-seed-float": ("seed=1.5", "seed"),
    "cfg-device-tpu": ("device=tpu", "device"),
    "cfg-device-cuda-x": ("device=cuda:x", "device"),
    "cfg-unknown-method-key": ("method_cfg.vae.stepz=7", "method_cfg.vae.stepz"),
    "cfg-unknown-method-top": ("method_cfg.denoizer.steps=7", "method_cfg.denoizer"),
    "cfg-unknown-dataset-key": ("dataset.n_trian=5", "dataset.n_trian"),
    "cfg-unknown-protocol": ("protocol_cfg.text2motio.top_k=3", "text2motio"),
    "cfg-unknown-protocol-key": ("protocol_cfg.text2motion.topk=3", "protocol_cfg.text2motion.topk"),
    "cfg-protocol-batch-zero": ("protocol_cfg.text2motion.batch_size=0", "batch_size"),
    "cfg-protocol-steps-sweep": ("protocol_cfg.text2motion.steps_sweep=[10,0]", "steps_sweep"),
    "cfg-dataset-subclip-prob": ("dataset.subclip_prob=2", "subclip_prob"),
    "cfg-hydra-syntax": ("seed=[1,", "seed"),
}
for _name, (_ov, _needle) in CONFIG_ROWS.items():
    CASES[_name] = (lambda ov, needle: lambda tmp: (_plan(ov), ConfigError, needle))(_ov, _needle)


@case("cfg-checkpoint-missing")
def _(tmp):
    return _plan(f"checkpoint={tmp}/nope.pt"), ConfigError, "nope.pt"


@case("cfg-checkpoint-directory")
def _(tmp):
    (tmp / "ck").mkdir()
    return _plan(f"checkpoint={tmp}/ck"), ConfigError, "ck: is a directory"


@case("cfg-checkpoint-not-torch")
def _(tmp):
    (tmp / "w.pt").write_text("these are not weights")
    return _plan(f"checkpoint={tmp}/w.pt"), ConfigError, "w.pt"


@case("cfg-runs-dir-not-writable")
def _(tmp):
    from evaluators.core.validate import probe_writable

    (tmp / "afile").write_text("x")
    return (lambda: probe_writable(tmp / "afile" / "runs", "runs_dir")), ConfigError, "runs_dir"


# -- checkpoints ------------------------------------------------------------------------------------------
def _ckpt_load(path):
    from evaluators.core.safe_load import load_checkpoint_file

    return lambda: load_checkpoint_file(path)


@case("ckpt-truncated")
def _(tmp):
    torch.save({"w": torch.randn(64, 64)}, tmp / "t.pt")
    raw = (tmp / "t.pt").read_bytes()
    (tmp / "t.pt").write_bytes(raw[: len(raw) // 2])
    return _ckpt_load(tmp / "t.pt"), CheckpointError, "t.pt"


@case("ckpt-empty-file")
def _(tmp):
    (tmp / "e.pt").write_bytes(b"")
    return _ckpt_load(tmp / "e.pt"), CheckpointError, "e.pt"


@case("ckpt-random-bytes")
def _(tmp):
    (tmp / "r.pt").write_bytes(np.random.default_rng(0).bytes(300))
    return _ckpt_load(tmp / "r.pt"), CheckpointError, "r.pt"


@case("ckpt-directory")
def _(tmp):
    (tmp / "d.pt").mkdir()
    return _ckpt_load(tmp / "d.pt"), CheckpointError, "d.pt"


@case("ckpt-missing")
def _(tmp):
    return _ckpt_load(tmp / "missing.pt"), CheckpointError, "missing.pt"


@case("ckpt-crafted-reduce")
def _(tmp):
    torch.save({"x": Evil(tmp / "ran.txt")}, tmp / "evil.pt")
    return _ckpt_load(tmp / "evil.pt"), CheckpointError, "evil.pt"


@case("ckpt-zip-not-torch")
def _(tmp):
    with zipfile.ZipFile(tmp / "z.pt", "w") as z:
        z.writestr("hello.txt", "x")
    return _ckpt_load(tmp / "z.pt"), CheckpointError, "z.pt"


@case("ckpt-training-not-a-loop-checkpoint")
def _(tmp):
    from methods.common.training import find_resume_checkpoint

    torch.save({"weights": torch.zeros(1)}, tmp / "last.pt")
    torch.save({"weights": torch.zeros(1)}, tmp / "prev.pt")
    return (lambda: find_resume_checkpoint(tmp)), CheckpointError, "last.pt"


@case("ckpt-mld-converter-crafted")
def _(tmp):
    from methods.mld.convert import load_any

    torch.save({"state_dict": {"denoiser.x": Evil(tmp / "ran.txt")}}, tmp / "mld.ckpt")
    return (lambda: load_any(tmp / "mld.ckpt")), CheckpointError, "mld.ckpt"


@case("ckpt-momask-converter-crafted")
def _(tmp):
    from methods.momask.convert import find_official

    (tmp / "rel" / "model").mkdir(parents=True)
    torch.save({"vq_model": Evil(tmp / "ran.txt")}, tmp / "rel" / "model" / "net_best_fid.tar")
    return (lambda: find_official(tmp / "rel")), CheckpointError, "net_best_fid.tar"


@case("ckpt-evaluator-crafted")
def _(tmp):
    from evaluators.networks.action_train import load_recognizer

    torch.save({"model": Evil(tmp / "ran.txt")}, tmp / "rec.tar")
    return (lambda: load_recognizer(str(tmp / "rec.tar"), "a2m_gru", np.zeros((10, 24, 3)), 12)), CheckpointError, \
        "rec.tar"


# -- records ----------------------------------------------------------------------------------------------
def _record(**over):
    rec = make_record(method="mld", dataset="synth_t2m", protocol="text2motion", metrics={"fid": 1.0},
                      data="synthetic", scale="smoke", seed=0, config={}, n_samples={"expected": 4, "evaluated": 4},
                      git={"commit": "abc", "dirty": False}, hardware={"device": "cpu"})
    rec.update(over)
    return rec


def _rec_file(tmp, text: str | bytes):
    p = tmp / "mld_synth_t2m_text2motion.json"
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return lambda: read_record(p)


RECORD_ROWS = {
    "record-future-start": lambda: json.dumps(_record(started="2999-01-01T00:00:00Z")),
    "record-negative-wall": lambda: json.dumps(_record(wall_s=-3.0)),
    "record-evaluated-exceeds-expected": lambda: json.dumps(_record(n_samples={"expected": 4, "evaluated": 9})),
    "record-started-not-a-time": lambda: json.dumps(_record(started="yesterday")),
    "record-not-utf8": lambda: json.dumps(_record()).encode().replace(b'"mld"', b'"ml\xff"', 1),
    "record-broken-json": lambda: json.dumps(_record())[:-10],
    "record-nan-metric": lambda: json.dumps(_record(metrics={"fid": {"value": float("nan")}})),
}
for _name, _make in RECORD_ROWS.items():
    CASES[_name] = (lambda make: lambda tmp: (_rec_file(tmp, make()), RecordError,
                                             "mld_synth_t2m_text2motion.json"))(_make)


# -- the table --------------------------------------------------------------------------------------------
for _name, _fn in DATASET_CASES.items():  # the dataset-format rows (bad_input_dataset_rows.py)
    assert _name not in CASES, _name
    CASES[_name] = _fn


def test_table_has_at_least_80_cases():
    assert len(CASES) >= 80, len(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_is_a_named_error(name, tmp_path):
    call, exc, needle = CASES[name](tmp_path)
    with pytest.raises(exc) as ei:
        call()
    assert needle in str(ei.value), f"{name}: {needle!r} not in {ei.value}"
    assert not (tmp_path / "ran.txt").exists(), "a crafted file executed code"


# -- through the CLI: exit 2 and one line ---------------------------------------------------------------------
def _cli(*args: str, tmp: Path):
    import os

    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", MOTIONREPRO_RUNS=str(tmp / "runs"))
    return subprocess.run([sys.executable, *args], cwd=tmp, env=env, capture_output=True, text=True, timeout=300)


CLI_ROWS = {
    "seed": (["-m", "evaluators.runner.run", "+experiment=mld_synth-t2m", "scale=smoke", "seed=abc"], "seed"),
    "unknown-key": (["-m", "evaluators.runner.run", "+experiment=mld_synth-t2m", "scale=smoke", "method_cfg.vae.stepz=7"],
                    "method_cfg.vae.steps"),
    "hydra-syntax": (["-m", "evaluators.runner.run", "+experiment=mld_synth-t2m", "scale=smoke", "seed=[1,"], "seed"),
}


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
@pytest.mark.parametrize("name", sorted(CLI_ROWS))
def test_cli_mistakes_exit_2_with_one_line(name, tmp_path):
    args, needle = CLI_ROWS[name]
    p = _cli(*args, tmp=tmp_path)
    err = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert p.returncode == 2, p.stderr[-2000:]
    assert len(err) == 1 and needle in err[0] and "Traceback" not in p.stderr
    assert not (tmp_path / "runs" / "records").exists() or not any((tmp_path / "runs" / "records").iterdir())


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_inspect_uses_the_runner_exit_code(tmp_path):
    (tmp_path / "new_joint_vecs").mkdir()
    np.save(tmp_path / "new_joint_vecs" / "000001.npy", np.zeros((40, 263), bool))
    p = _cli("-m", "evaluators.datasets", "inspect", str(tmp_path / "new_joint_vecs" / "000001.npy"), tmp=tmp_path)
    assert p.returncode == 2 and "000001.npy" in p.stderr and "bool" in p.stderr


def test_keys_an_experiment_adds_may_be_overridden():
    from evaluators.runner.names import experiment_of
    from evaluators.runner.plan import experiment_keys

    keys = experiment_keys(experiment_of(["+experiment=macdiff_ntu60"]))["method"]
    assert "mask_kind" in keys  # written by its per_dataset block, so method_cfg.mask_kind=... is not refused
    _plan("method_cfg.vae.steps=2")()  # a valid override passes (the table's rows can fail for the right reason)
