"""Method registry completeness and ``python -m methods`` (list, summary model card)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evaluators.core.config import load_config
from methods import get_method, list_methods
from methods.base import capabilities_of
from tests.runner.tiny_method import TinyRepro

REPO = Path(__file__).resolve().parents[2]


def test_every_method_folder_is_registered_and_every_name_has_a_folder():
    folders = {p.name for p in (REPO / "methods").iterdir() if (p / "method.py").exists()}
    assert folders == set(list_methods())
    for name in list_methods():
        assert get_method(name).__module__.startswith(f"methods.{name}.")  # registry key == folder name


def test_test_only_method_is_hidden_and_its_card_counts_parameters():
    assert "tinyrepro" not in list_methods() and "tinyrepro" in list_methods(include_testing=True)
    card = TinyRepro({"dim": 5}).summary()
    assert card["params"] == {"enc": 30, "dec": 30, "total": 60}  # 5*5 weights + 5 biases each
    assert card["capabilities"] == ["RepresentationLearner"] and card["frozen_params"] == {}


@pytest.mark.parametrize("name", list_methods())
def test_every_method_config_resolves_at_both_scales(name):
    for scale in ("paper", "smoke"):
        cfg = load_config("method", name, scale)
        assert "scales" not in cfg
    assert capabilities_of(get_method(name)), f"{name} implements no capability"


@pytest.mark.slow  # > 2 s (end to end, a subprocess or training): CI, not the --fast lane
def test_summary_cli_prints_the_model_card():
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    names = list_methods()
    p = subprocess.run([sys.executable, "-m", "methods", "list"], capture_output=True, text=True, env=env, cwd=REPO)
    assert p.returncode == 0 and p.stdout.split() == names
    bad = subprocess.run([sys.executable, "-m", "methods", "summary", "nosuchmethod"], capture_output=True, text=True,
                         env=env, cwd=REPO)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "available:" in bad.stderr
    if not names:
        return
    # the smallest card: the first registered method at smoke scale (others are covered by their own tests)
    name = names[0]
    p = subprocess.run([sys.executable, "-m", "methods", "summary", name, "--scale", "smoke"], capture_output=True,
                       text=True, env=env, cwd=REPO, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    card = json.loads(p.stdout)
    trained = {k: v for k, v in card["params"].items() if k != "total"}
    assert card["method"] == name and card["scale"] == "smoke"
    assert card["params"]["total"] == sum(trained.values()) > 0
    assert set(card["frozen_params"]).isdisjoint(trained)


def test_summary_overrides_after_the_scale_flag(capsys):
    """``summary NAME --scale S KEY=V`` (the order the help shows) applies the override."""
    from methods.__main__ import main

    cards = []
    for argv in (["summary", "heatmap_baseline", "--scale", "smoke"],
                 ["summary", "heatmap_baseline", "--scale", "smoke", "keypoint_format=mpii"],
                 ["summary", "heatmap_baseline", "keypoint_format=mpii", "--scale", "smoke"]):
        assert main(argv) == 0
        cards.append(json.loads(capsys.readouterr().out))
    assert cards[1]["params"] == cards[2]["params"] != cards[0]["params"]  # 16 MPII joints vs 17 COCO
    with pytest.raises(SystemExit):
        main(["summary", "heatmap_baseline", "--bogus"])
