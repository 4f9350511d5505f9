"""What a method declares about itself (``methods/base.py``) is what it does, and nothing outside
the method folders keys on method names (the benchmarks, the estimate and the help ask the class)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from benchmarks.settings import precision_keys, set_precision
from evaluators.core.config import list_configs, load_config
from evaluators.runner.experiment_help import experiment_help
from evaluators.runner.run import experiment_name, split_experiment
from methods import get_method, list_methods
from methods.base import Method

REPO = Path(__file__).resolve().parents[2]


def test_no_table_keyed_by_method_names_outside_the_method_folders():
    names = set(list_methods())
    hits = []
    for folder in ("benchmarks", "evaluators/runner"):
        for path in sorted((REPO / folder).rglob("*.py")):
            if path.name.startswith(("official_", "test_side_by_side_")):
                continue  # one method against its authors' code: about that method by definition, not a table
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and node.value in names:
                    hits.append(f"{path.relative_to(REPO)}:{node.lineno} {node.value!r}")
    assert not hits, "method names written outside methods/: " + ", ".join(hits)


@pytest.mark.parametrize("name", list_methods())
def test_declared_sampler_settings_are_the_ones_the_sampler_reads(name):
    """``precision_key`` is the key the method reads (its sampler_settings report it) and
    ``default_steps`` the step count the sampler reports running."""
    cls = get_method(name)
    cfg = load_config("method", name, "smoke")
    if cls.precision_key:
        set_precision(cfg, name, "bf16")
    m = cls(cfg, device="cpu", seed=0)
    settings = m.sampler_settings() if hasattr(m, "sampler_settings") else None
    if cls.precision_key:
        assert settings["precision"] == "bf16"
    if m.default_steps is None:
        assert cls.benchmark_steps == (None,)  # nothing to sweep without a sampler
    else:
        reported = next(settings[k] for k in ("steps", "iterations", "ddim_steps") if k in settings)
        assert m.default_steps == reported
    assert isinstance(m.train_batch(), int) and m.train_batch() > 0
    targets = cls.speed_targets or (None, None)
    assert all(t is None or 0 < t <= 1 for t in targets)  # fractions of the machine's peak


def test_precision_keys_cover_exactly_the_methods_with_a_precision_setting():
    assert set(precision_keys()) == {n for n in list_methods() if get_method(n).precision_key}
    assert set(precision_keys(task="text2motion")) <= {n for n in list_methods() if get_method(n).task == "text2motion"}


def test_base_defaults_and_the_main_stage_batch():
    class Bare(Method):
        pass

    class Staged(Method):
        main_stage = "denoiser"

    assert Bare().default_steps is None and Bare().train_batch() == 32  # no stage configured
    assert Staged({"denoiser": {"batch_size": 48}, "train": {"batch_size": 8}}).train_batch() == 48
    assert Staged({"benchmark_batch": 4, "denoiser": {"batch_size": 48}}).train_batch() == 4
    assert Bare.benchmark_steps == (None,) and Bare.speed_targets is None and Bare.precision_key is None


def test_pose_methods_train_64_per_device():
    """mmpose ``td-hm_hrnet-w32_8xb64``: the configured global batch 512 is 64 on each of 8 GPUs."""
    for name in ("diffusionpose", "heatmap_baseline"):
        if name not in list_methods():
            continue
        cfg = load_config("method", name, "smoke")
        cfg["train"] = {**cfg["train"], "batch_size": 512}
        assert get_method(name)(cfg).train_batch() == 64


@pytest.mark.parametrize("experiment", list_configs("experiment"))
def test_experiment_help_names_a_command_the_runner_accepts(experiment):
    """The help's first line is ``./reproduce.sh METHOD DATASET``; the runner must resolve it back to
    the same experiment (a method name holding ``_``, as heatmap_baseline, split wrongly before)."""
    method, _ = split_experiment(experiment)
    text = experiment_help(method, experiment)
    _, m, alias = text.splitlines()[0].split()[:3]
    assert experiment_name(m, alias) == experiment
    needs = get_method(method).paper_needs
    if "synth" in experiment:
        assert "Needs: nothing" in text
    elif needs:
        assert needs in text
