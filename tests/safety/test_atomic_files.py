"""Atomic writes: the usual file mode under the user's umask, and a temporary name unique to each call.

The reference for "the usual mode" is behaviour, not a constant: a file made by a plain ``open(p, "w")``
under the same umask. ``tempfile.mkstemp`` (used before) made every record, plot, leaderboard and
cache file ``-rw-------`` whatever the umask.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from evaluators.core.io import (
    atomic_np_save,
    atomic_open,
    atomic_path,
    atomic_torch_save,
    atomic_write_bytes,
    atomic_write_text,
    create_unique_sibling,
    current_umask,
)
from evaluators.records import make_record, write_record


@contextlib.contextmanager
def _umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def _plain_mode(folder: Path) -> int:
    """Mode of a file that a plain ``open(..., "w")`` creates under the current umask."""
    ref = folder / "plain-reference"
    with open(ref, "w") as fh:
        fh.write("x")
    try:
        return _mode(ref)
    finally:
        ref.unlink()


def _record():
    return make_record(method="mld", dataset="synth_t2m", protocol="text2motion", metrics={"fid": 1.0},
                       data="synthetic", scale="smoke", seed=0, config={}, git={"commit": "abc", "dirty": False},
                       hardware={"device": "cpu"})


WRITERS = {
    "text": lambda p: atomic_write_text(p, "x"),
    "bytes": lambda p: atomic_write_bytes(p, b"x"),
    "numpy": lambda p: atomic_np_save(p, np.zeros(3)),
    "torch": lambda p: atomic_torch_save({"w": torch.zeros(2)}, p),
    "path": lambda p: _write_via_path(p),
    "record": lambda p: write_record(_record(), p.parent / "records"),
}


def _write_via_path(p: Path) -> None:
    with atomic_path(p) as tmp:
        tmp.write_bytes(b"x")


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o077], ids=["022", "027", "077"])
@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_atomic_files_get_the_umask_mode(tmp_path, mask, kind):
    with _umask(mask):
        expected = _plain_mode(tmp_path)
        WRITERS[kind](tmp_path / "out.bin")
        written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) == 1, written  # nothing temporary left behind
    assert _mode(written[0]) == expected == 0o666 & ~mask


def test_current_umask_reads_without_changing_it():
    with _umask(0o027):
        assert current_umask() == 0o027
        assert current_umask() == 0o027


def test_cache_folder_gets_mkdir_mode(tmp_path):
    from evaluators.datasets.cache import build_staged

    for mask in (0o022, 0o027):
        with _umask(mask):
            ref = tmp_path / f"ref-{mask:o}"
            ref.mkdir()
            out = build_staged(tmp_path / f"cache-{mask:o}", lambda d: atomic_write_text(d / "a.txt", "x"))
            assert _mode(out) == _mode(ref) == 0o777 & ~mask
            assert _mode(out / "a.txt") == 0o666 & ~mask


def test_ntu_array_cache_file_gets_the_umask_mode(tmp_path):
    from evaluators.datasets.skeleton.build import _staged_npy

    with _umask(0o027):
        with _staged_npy(tmp_path / "rows.npy", (2, 3)) as arr:
            arr[:] = 1.0
    assert _mode(tmp_path / "rows.npy") == 0o640
    assert np.load(tmp_path / "rows.npy").sum() == 6.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.npy"]


def test_temporary_names_are_unique_and_hidden(tmp_path):
    names = set()
    for _ in range(50):
        fd, p = create_unique_sibling(tmp_path / "x.json")
        os.close(fd)
        assert p.parent == tmp_path and p.name.startswith(".x.json.") and str(os.getpid()) in p.name
        names.add(p)
    assert len(names) == 50


def test_failed_write_leaves_neither_file_nor_temporary(tmp_path):
    with pytest.raises(RuntimeError), atomic_open(tmp_path / "a.json") as fh:
        fh.write("{")
        raise RuntimeError("killed mid-write")
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "b.gif") as tmp:
        tmp.write_bytes(b"GIF")
        raise RuntimeError("killed mid-write")
    assert list(tmp_path.iterdir()) == []


def test_two_writers_of_one_name_do_not_share_a_temporary(tmp_path):
    """Interleaved writers of the same destination (two processes rendering ``sample_00.gif``) each
    finish with a whole file; with one fixed temporary name the second would truncate the first."""
    target = tmp_path / "sample_00.gif"
    with atomic_path(target) as a, atomic_path(target) as b:
        assert a != b
        a.write_bytes(b"A" * 1000)
        b.write_bytes(b"B" * 10)
        assert a.read_bytes() == b"A" * 1000
    assert target.read_bytes() in (b"A" * 1000, b"B" * 10)
    assert [p.name for p in tmp_path.iterdir()] == ["sample_00.gif"]


def test_render_does_not_use_a_fixed_temporary_name(tmp_path):
    """Another process's temporary of the same sample must not break this render: the old code
    always used ``.sample_00.tmp.gif`` and failed when that name was taken."""
    pytest.importorskip("matplotlib")
    from evaluators.datasets.motion.render import render_motion

    out = tmp_path / "samples" / "sample_00.gif"
    out.parent.mkdir()
    (out.parent / ".sample_00.tmp.gif").mkdir()  # the old fixed name, held by "someone else"
    joints = np.cumsum(np.random.default_rng(0).normal(scale=0.01, size=(4, 22, 3)), axis=0) + [0, 1, 0]
    with _umask(0o022):
        render_motion(joints, out, stride=2)
    assert out.read_bytes()[:6] in (b"GIF87a", b"GIF89a") and _mode(out) == 0o644
    assert sorted(p.name for p in out.parent.iterdir()) == [".sample_00.tmp.gif", "sample_00.gif"]
