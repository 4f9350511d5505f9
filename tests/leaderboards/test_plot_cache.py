"""A plot copied from the cache is the file drawing writes, byte for byte; a change of what it shows
or of the code that draws it draws it again; a regeneration whose plots were all drawn before does
not import matplotlib; a cache that cannot be used only costs the drawing."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import leaderboards.plot_cache as plot_cache
from leaderboards.make_tables import LB_DIR, latest, load_results
from leaderboards.plots import write_plots

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def published() -> list[dict]:
    return latest(load_results([LB_DIR / "results"]))


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.png"))}


def test_a_copy_from_the_cache_is_what_drawing_writes(published, tmp_path, monkeypatch):
    monkeypatch.setenv("MOTIONREPRO_CACHE", str(tmp_path / "cache"))
    write_plots(published, tmp_path / "drawn")
    assert len(_files(tmp_path / "cache" / "plots")) == len(_files(tmp_path / "drawn")) >= 3

    drawn_again = []
    real = plot_cache.cached_plot

    def spy(path, inputs, draw):
        return real(path, inputs, lambda p: drawn_again.append(p) or draw(p))

    monkeypatch.setattr("leaderboards.plots.cached_plot", spy)
    write_plots(published, tmp_path / "copied")
    assert drawn_again == []  # every plot came from the cache
    assert _files(tmp_path / "copied") == _files(tmp_path / "drawn")

    monkeypatch.setenv("MOTIONREPRO_CACHE", str(tmp_path / "empty"))  # drawn once more from nothing
    write_plots(published, tmp_path / "fresh")
    assert _files(tmp_path / "fresh") == _files(tmp_path / "copied")


def test_a_changed_value_is_drawn_again(published, tmp_path, monkeypatch):
    monkeypatch.setenv("MOTIONREPRO_CACHE", str(tmp_path / "cache"))
    write_plots(published, tmp_path / "before")
    changed = copy.deepcopy(published)
    rec = next(r for r in changed if r["variant"].startswith("steps=") and r["protocol"] == "text2motion")
    rec["metrics"]["fid"]["value"] *= 1.5
    write_plots(changed, tmp_path / "after")
    before, after = _files(tmp_path / "before"), _files(tmp_path / "after")
    assert before["quality_vs_steps_text2motion.png"] != after["quality_vs_steps_text2motion.png"]
    assert before["quality_vs_steps_coco_ap.png"] == after["quality_vs_steps_coco_ap.png"]  # untouched, copied


def test_a_change_of_the_drawing_code_changes_every_key(tmp_path, monkeypatch):
    key = plot_cache.plot_key({"a": 1.0})
    assert plot_cache.plot_key({"a": 1.0}) == key and plot_cache.plot_key({"a": 1.0000000000000002}) != key
    for name in plot_cache.DRAWING_CODE:
        (tmp_path / name).write_bytes((plot_cache.HERE / name).read_bytes())
    (tmp_path / "style.py").write_bytes((tmp_path / "style.py").read_bytes() + b"\n# another colour\n")
    monkeypatch.setattr(plot_cache, "HERE", tmp_path)
    plot_cache._drawing_version.cache_clear()
    try:
        assert plot_cache.plot_key({"a": 1.0}) != key
    finally:
        monkeypatch.undo()
        plot_cache._drawing_version.cache_clear()
    assert plot_cache.plot_key({"a": 1.0}) == key


def test_a_cache_that_is_not_a_folder_only_costs_the_drawing(published, tmp_path, monkeypatch):
    (tmp_path / "not_a_folder").write_text("x")
    monkeypatch.setenv("MOTIONREPRO_CACHE", str(tmp_path / "not_a_folder"))
    assert len(write_plots(published, tmp_path / "plots")) >= 3
    monkeypatch.setenv("MOTIONREPRO_CACHE", str(tmp_path / "ok"))
    write_plots(published, tmp_path / "reference")
    assert _files(tmp_path / "plots") == _files(tmp_path / "reference")


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_a_regeneration_of_plots_drawn_before_does_not_import_matplotlib(tmp_path):
    code = ("import json, sys; from leaderboards.make_tables import regenerate; "
            f"regenerate(out_dir={str(tmp_path / 'lb')!r}); print(json.dumps('matplotlib' in sys.modules))")
    env = {**os.environ, "PYTHONPATH": str(REPO), "MOTIONREPRO_CACHE": str(tmp_path / "cache")}

    def run() -> bool:
        p = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=300)
        assert p.returncode == 0, p.stderr[-2000:]
        return json.loads(p.stdout.strip().splitlines()[-1])

    assert run() is True  # the first regeneration draws
    assert run() is False  # the second copies every plot
