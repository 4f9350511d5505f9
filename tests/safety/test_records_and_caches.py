"""Caches rebuild themselves when damaged; records that cannot be written or read never cost a run."""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from evaluators.records import make_record
from tests.safety.bad_input_dataset_rows import _skeleton_text


def _files(tmp: Path, n: int = 3) -> dict[str, Path]:
    out = {}
    for i in range(n):
        p = tmp / "skel" / f"S001C001P001R001A00{i + 1}.skeleton"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(_skeleton_text(frames=4 + i))
        out[p.stem] = p
    return out


def test_truncated_or_corrupt_cache_is_rebuilt_with_one_line(tmp_path, monkeypatch, caplog):
    from evaluators.datasets.skeleton.build import build_arrays

    monkeypatch.setenv("MOTIONREPRO_CACHE", str(tmp_path / "cache"))
    files = _files(tmp_path)
    rows, names, frames = build_arrays(files, max_frames=8)
    ref = np.array(rows)
    (cdir,) = (tmp_path / "cache").iterdir()
    raw = (cdir / "rows.npy").read_bytes()
    for damage, word in ((raw[:-100], "truncated"), (raw[:-8] + b"\x01" * 8, "corrupt")):
        (cdir / "rows.npy").write_bytes(damage)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            again, _, fr2 = build_arrays(files, max_frames=8)
        lines = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert len(lines) == 1 and word in lines[0] and str(cdir) in lines[0]
        np.testing.assert_array_equal(np.array(again), ref)
        assert fr2.tolist() == frames.tolist()
    (cdir / "meta.json").write_text("{broken")
    with caplog.at_level(logging.WARNING):
        build_arrays(files, max_frames=8)
    assert "unreadable" in caplog.records[-1].getMessage()


def test_failed_cache_build_leaves_no_empty_folder(tmp_path, monkeypatch):
    from evaluators.datasets import DatasetError
    from evaluators.datasets.skeleton.build import build_arrays

    monkeypatch.setenv("MOTIONREPRO_CACHE", str(tmp_path / "cache"))
    files = _files(tmp_path)
    next(iter(files.values())).write_text("garbage\n")
    with pytest.raises(DatasetError):
        build_arrays(files, max_frames=8)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def _rec(method="mld"):
    return make_record(method=method, dataset="synth_t2m", protocol="text2motion", metrics={"fid": 1.0},
                       data="synthetic", scale="smoke", seed=0, config={}, git={"commit": "abc", "dirty": False},
                       hardware={"device": "cpu"})


def test_unwritable_records_dir_falls_back_and_says_where(tmp_path, monkeypatch, capsys):
    from evaluators.runner.execute import write_record_or_fallback

    monkeypatch.setenv("MOTIONREPRO_FALLBACK_RECORDS", str(tmp_path / "fallback"))
    (tmp_path / "afile").write_text("x")
    path = write_record_or_fallback(_rec(), tmp_path / "afile" / "records")  # a folder below a file
    assert path.parent == tmp_path / "fallback" and json.loads(path.read_text())["method"] == "mld"
    assert str(path) in capsys.readouterr().err


def test_stale_broken_record_in_runs_dir_is_skipped_but_published_ones_are_strict(tmp_path, caplog):
    from evaluators.records import RecordError
    from leaderboards.make_tables import load_results

    local = tmp_path / "runs" / "records"
    local.mkdir(parents=True)
    (local / "mld_old.json").write_text("{ half a record")
    (local / "mld_new.json").write_text(json.dumps(_rec()))
    with caplog.at_level(logging.WARNING):
        recs = load_results([local], lenient=[local])
    assert len(recs) == 1 and any("mld_old.json" in r.getMessage() for r in caplog.records)
    with pytest.raises(RecordError, match="mld_old.json"):
        load_results([local])


def test_finish_does_not_fail_on_a_stale_broken_record(tmp_path):
    from evaluators.runner.run import finish

    runs = tmp_path / "runs"
    (runs / "records").mkdir(parents=True)
    (runs / "records" / "broken.json").write_text("{")
    table = finish([_rec()], runs, regenerate=True)
    assert "mld" in table and (runs / "leaderboards" / "mld.md").exists()


def test_unknown_method_record_is_a_warning_naming_the_file(tmp_path, caplog):
    from leaderboards.make_tables import warn_unknown_methods

    (tmp_path / "x.json").write_text(json.dumps(_rec(method="nosuchmethod")))
    (tmp_path / "y.json").write_text(json.dumps(_rec()))
    msgs = warn_unknown_methods([tmp_path], {"mld", "macdiff"})
    assert len(msgs) == 1 and "x.json" in msgs[0] and "nosuchmethod" in msgs[0]


def test_truncated_recogniser_cache_is_retrained_with_one_line(tmp_path, monkeypatch, caplog):
    from evaluators.networks.action_train import train_recognizer

    monkeypatch.setenv("MOTIONREPRO_CACHE", str(tmp_path / "cache"))

    class Split:
        def __init__(self, n):
            rng = np.random.default_rng(0)
            self.items = [{"motion": rng.normal(size=(12, 6, 3)).astype(np.float32), "label": i % 2} for i in range(n)]

        def split(self, name):
            return self.items

    data = Split(8)
    kw = dict(kind="a2m_gru", steps=2, batch_size=4, num_frames=12)
    first = train_recognizer(data, **kw)
    (entry,) = (tmp_path / "cache" / "evaluators").glob("*.pt")
    entry.write_bytes(entry.read_bytes()[:100])
    with caplog.at_level(logging.WARNING):
        again = train_recognizer(data, **kw)
    assert sum("retraining" in r.getMessage() and entry.name in r.getMessage() for r in caplog.records) == 1
    for k, v in first.state_dict().items():
        assert torch.equal(v, again.state_dict()[k])


def test_a_broken_record_is_named_before_any_work(tmp_path, monkeypatch, caplog):
    """The run warns about a record its leaderboards will skip before it trains anything."""
    from evaluators.runner import execute as E

    runs = tmp_path / "runs"
    (runs / "records").mkdir(parents=True)
    (runs / "records" / "bogus.json").write_text(json.dumps({**_rec(), "schema": 99}))
    (runs / "records" / "fine.json").write_text(json.dumps(_rec()))
    order = []

    def no_work(plan, ds):
        order.append([r.getMessage() for r in caplog.records if "bogus.json" in r.getMessage()])
        return []

    monkeypatch.setattr(E, "run_dataset", no_work)
    monkeypatch.setattr(E, "hold_run_folder", lambda *a, **k: contextlib.nullcontext())
    plan = SimpleNamespace(runs_dir=runs, records_dir=runs / "records", leaderboards=True,
                           datasets=[SimpleNamespace(workdir=runs / "work")])
    with caplog.at_level("WARNING"):
        E.execute(plan)
    (seen_before_work,) = order
    assert len(seen_before_work) == 1 and "schema" in seen_before_work[0]
