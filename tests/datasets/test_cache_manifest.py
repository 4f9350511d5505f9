"""Dataset caches cannot poison a run: each generated dataset folder stores every
file's size and sha256; a truncated, edited, incomplete or byte-flipped copy is rebuilt with one
warning line naming it, to the same bytes as a fresh build; a build that fails leaves nothing.

The reference is independent of the check under test: the bytes of a fresh build in an empty
cache, compared file by file with what the damaged cache is rebuilt to.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from evaluators.datasets import cache as C
from evaluators.datasets.motion import synth_action, synth_t2m
from evaluators.datasets.pose2d import synth_coco
from evaluators.datasets.skeleton import synth_ntu

BUILDERS = {  # name: (module, build -> folder) at a few samples each
    "synth_t2m": (synth_t2m, lambda: synth_t2m.ensure({"n_train": 3, "n_val": 1, "n_test": 1})),
    "synth_ntu": (synth_ntu, lambda: synth_ntu.generate({"num_actions": 2, "subjects": [1, 3], "cameras": [1],
                                                         "missing_samples": 0})),
    "synth_coco": (synth_coco, lambda: synth_coco.ensure_synth({"n_train": 3, "n_val": 2})),
    "synth_action": (synth_action, lambda: synth_action.ensure({"clips_per_class": 1}).parent),
}


def _bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _largest(folder: Path) -> Path:
    return max((p for p in folder.rglob("*") if p.is_file() and p.name != C.MANIFEST), key=lambda p: p.stat().st_size)


def _text_file(folder: Path) -> Path:
    return sorted(p for p in folder.rglob("*") if p.suffix in (".json", ".txt") and p.name != C.MANIFEST)[0]


def _truncate(folder):
    p = _largest(folder)
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _corrupt_text(folder):
    _text_file(folder).write_text("{not json", encoding="utf-8")


def _delete(folder):
    _largest(folder).unlink()


def _flip_one_byte(folder):  # the size stays, only the checksum can tell
    p = _largest(folder)
    b = bytearray(p.read_bytes())
    b[len(b) // 2] ^= 0xFF
    p.write_bytes(bytes(b))


def _corrupt_manifest(folder):
    (folder / C.MANIFEST).write_text("[", encoding="utf-8")


DAMAGE = {"truncated": _truncate, "text/json edited": _corrupt_text, "file deleted": _delete,
          "one byte flipped": _flip_one_byte, "manifest unreadable": _corrupt_manifest}


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MOTIONREPRO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.mark.parametrize("damage", sorted(DAMAGE))
@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_damaged_cache_is_rebuilt_with_one_line(name, damage, cache_dir, caplog):
    _, build = BUILDERS[name]
    folder = build()
    fresh = _bytes(folder)
    assert C.cache_problem(folder) is None
    DAMAGE[damage](folder)
    assert C.cache_problem(folder) is not None
    with caplog.at_level(logging.WARNING, logger="evaluators.datasets.cache"):
        again = build()
    assert again == folder
    lines = [r for r in caplog.records if r.name == "evaluators.datasets.cache"]
    assert len(lines) == 1 and str(folder) in lines[0].getMessage() and "rebuilding" in lines[0].getMessage()
    assert _bytes(folder) == fresh  # the same data as a fresh build
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="evaluators.datasets.cache"):
        assert build() == folder  # a sound cache is reused silently
    assert not [r for r in caplog.records if r.name == "evaluators.datasets.cache"]


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_failed_build_leaves_no_folder(name, cache_dir, monkeypatch):
    _, build = BUILDERS[name]

    def boom(folder):  # every data file is written by now: the staging folder is full
        assert any(Path(folder).rglob("*"))
        raise RuntimeError("disk full (simulated)")

    monkeypatch.setattr(C, "write_manifest", boom)  # every generator stages through cache.build_staged
    with pytest.raises(RuntimeError, match="simulated"):
        build()
    left = [p for p in cache_dir.rglob("*") if p.is_file() or (p.parent != cache_dir and not any(p.iterdir()))]
    assert not left, f"left behind: {left}"  # no file, no empty entry folder (a group folder may stay)
    monkeypatch.undo()
    monkeypatch.setenv("MOTIONREPRO_CACHE", str(cache_dir))
    assert C.cache_problem(build()) is None  # and the next attempt builds it
