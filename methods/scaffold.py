"""``python -m methods new NAME --capability MotionGenerator|RepresentationLearner [--dir PATH]``: a toy method.

Writes what a method is, and nothing else: its folder (``__init__.py``, ``method.py`` with the
registered class, ``README.md``), its config ``configs/method/NAME.yaml`` (``scales``,
``demo_experiment``, ``paper_setting``) and a synthetic experiment
``configs/experiment/NAME_<alias>.yaml``. Into the repository by default (``methods/NAME/``,
``configs/``); with ``--dir PATH`` into an outside folder (``PATH/NAME/``, ``PATH/configs/``) that
the suite finds through ``MOTIONREPRO_PLUGINS=NAME`` (with ``PATH`` on ``PYTHONPATH``) and
``MOTIONREPRO_CONFIG_PATH=PATH/configs``. The toy trains in seconds and runs through the demo,
the benchmarks, ``--estimate`` and the leaderboards unchanged; replace its model with yours.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from pathlib import Path

from methods.registry import method_names
from methods.scaffold_templates import SKELETON_METHOD, T2M_METHOD

REPO = Path(__file__).resolve().parents[1]
NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class ScaffoldError(ValueError):
    """A name or folder the scaffold refuses (one line; nothing has been written)."""


@dataclass(frozen=True)
class Kind:
    """What the toy of one capability implements, and on which bundled synthetic data."""

    task: str
    dataset: str  # dataset config of the synthetic experiment
    alias: str  # what a user types: ./reproduce.sh NAME ALIAS
    protocols: str  # YAML list of the experiment's protocols
    experiment: str  # YAML lines of the experiment's dataset and protocol settings
    config: str  # YAML lines of the method config (the model's own keys and its scales)
    method_py: str


KINDS: dict[str, Kind] = {
    "MotionGenerator": Kind(
        task="text2motion", dataset="synth_t2m", alias="synth-t2m", protocols="[text2motion]",
        experiment=("dataset: {n_train: 16, n_val: 4, n_test: 16}   # ours: toy sizes (16 test motions + mirrors = "
                    "one batch of 32)\n"
                    "protocol_cfg:                                   # ours: toy sizes (a CPU minute)\n"
                    "  text2motion: {repetitions: 1, mm: {enabled: false}, aits: {num_captions: 2},\n"
                    "                evaluator: {train: {steps: 20}}}\n"),
        config=("buckets: 32                 # ours: hashed caption-word buckets of the toy\n"
                "nfeats: 263                 # replaced by the dataset's feature width at fit\n"
                "train: {batch_size: 32, steps: 200, lr: 1.0e-2, ckpt_every: 100}\n"
                "scales:\n  paper: {}\n  smoke:\n    train: {batch_size: 16, steps: 20}\n"),
        method_py=T2M_METHOD),
    "RepresentationLearner": Kind(
        task="skeleton_ssl", dataset="synth_ntu", alias="synth-ntu", protocols="[linear]",
        experiment=("protocol_cfg:                                   # ours: toy sizes (a CPU minute)\n"
                    "  linear: {epochs: 5}\n"),
        config=("dim: 16                     # ours: token width of the toy\n"
                "window: 64                  # frames of a training window\n"
                "pretrain: {batch_size: 64, steps: 200, lr: 1.0e-2, ckpt_every: 100}\n"
                "scales:\n  paper: {}\n  smoke:\n    pretrain: {batch_size: 32, steps: 20}\n"),
        method_py=SKELETON_METHOD),
}

_CONFIG = """# __CLASS__: a toy __CAPABILITY__ (README.md beside its method.py). Group config of the method:
# the common keys are the paper's values, `scales` shrinks them (smoke = CPU seconds).
name: __NAME__
task: __TASK__
demo_experiment: __NAME_____ALIAS__   # what ./reproduce.sh demo runs (synthetic data only)
# What the paper's numbers were produced with (evaluators/provenance.py): provenance ids a record must match
paper_setting: {weights: [trained-here]}
non_paper: []               # values no paper/official code fixes (ours.* provenance entries)
__MODEL_CONFIG__"""

_EXPERIMENT = """# @package _global_
# ./reproduce.sh __NAME__ __ALIAS__ -> __CLASS__ at smoke scale on bundled synthetic data
# (__DATASET__). Pipeline check in CPU seconds; not comparable with any paper.
defaults:
  - override /scale: smoke

method: __NAME__
datasets: [__DATASET__]
protocols: __PROTOCOLS__
method_cfg: {}
__EXPERIMENT__paper_ref: {method: __NAME__, tables: "toy pipeline check on synthetic data"}
"""

_README = """# __CLASS__

Scaffolded by `python -m methods new __NAME__ --capability __CAPABILITY__`.

## What it implements
A toy `__CAPABILITY__` (task `__TASK__`): `method.py` holds the registered class
`__CLASS__`, its config is `configs/method/__NAME__.yaml` and its synthetic experiment
`configs/experiment/__NAME_____ALIAS__.yaml`. Replace the toy model with the paper's and say here
which paper, table and official repository (with commit) each part follows.

## Deviations
Everything: this is a placeholder. List each place where the implementation departs from the
paper or the official code, and mark every value no source fixes `# ours:` in the config
(and under `non_paper:`).

## How to run
__RUN__
- `./reproduce.sh __NAME__ __ALIAS__` (or `python -m evaluators.run --experiment __NAME__ __ALIAS__`)
- `./reproduce.sh demo --only __NAME__`: the demo experiment, then the leaderboards
- `python -m evaluators.run --experiment __NAME__ __ALIAS__ --estimate`: cost before a run
- `pytest benchmarks/test_methods.py -k __NAME__ --benchmark-only`: speed rows
- `python -m methods summary __NAME__ --scale smoke`: the model card
"""


def check_name(name: str, configs: Path, folder: Path) -> None:
    """Raise :class:`ScaffoldError` (one line) for a name the suite cannot use or a file already there."""
    if not NAME_RE.match(name) or keyword.iskeyword(name) or name == "common":
        raise ScaffoldError(f"method name {name!r}: use lower-case letters, digits and '_', starting with a letter "
                            "(it is the folder, the registry key and the experiment prefix)")
    if name in _registered(name):
        raise ScaffoldError(f"method name {name!r} is already registered")
    for path in (folder, configs / "method" / f"{name}.yaml"):
        if path.exists():
            raise ScaffoldError(f"{path} already exists; nothing written")


def _registered(name: str) -> set[str]:
    """Registered method names; with ``$MOTIONREPRO_PLUGINS`` already naming the module being
    scaffolded (set up before the files exist) the repository's own method folders. The names,
    not the classes: importing every method folder (torch and each method's dependencies) would
    cost ``methods new`` seconds for a check of names."""
    try:
        return set(method_names())
    except ModuleNotFoundError as e:
        if e.name != name:
            raise ScaffoldError(f"$MOTIONREPRO_PLUGINS: cannot import {e.name!r} ({e})") from None
        return {p.name for p in (REPO / "methods").iterdir() if (p / "method.py").is_file()}


def scaffold(name: str, capability: str, out_dir: str | Path | None = None) -> list[Path]:
    """Write the toy method ``name`` of ``capability``; returns the files written."""
    if capability not in KINDS:
        raise ScaffoldError(f"--capability {capability!r}: supported: {', '.join(sorted(KINDS))}")
    kind = KINDS[capability]
    outside = out_dir is not None
    root = Path(out_dir).resolve() if outside else REPO
    if outside and not root.is_dir():
        raise ScaffoldError(f"--dir {out_dir}: not a folder")
    folder = root / name if outside else REPO / "methods" / name
    configs = root / "configs"
    check_name(name, configs, folder)
    cls = "".join(p.capitalize() for p in name.split("_") if p) or name
    if not cls[0].isalpha():
        cls = "M" + cls
    package = name if outside else f"methods.{name}"
    run = (f"- outside the repository: `PYTHONPATH={root} MOTIONREPRO_PLUGINS={name} "
           f"MOTIONREPRO_CONFIG_PATH={configs}` before each command below" if outside else
           "- registered on first lookup (a folder of `methods/`)")

    def fill(text: str) -> str:
        for key, value in (("__EXPERIMENT__", kind.experiment), ("__MODEL_CONFIG__", kind.config),
                           ("__PROTOCOLS__", kind.protocols),
                           ("__CAPABILITY__", capability),
                           ("__ALIAS__", kind.alias),
                           ("__DATASET__", kind.dataset), ("__TASK__", kind.task), ("__CLASS__", cls),
                           ("__RUN__", run), ("__NAME__", name)):
            text = text.replace(key, value)
        return text

    files = {
        folder / "__init__.py": f'"""{cls}: a toy {capability} (README.md)."""\n\n'
                                f"from {package}.method import {cls}\n\n__all__ = [\"{cls}\"]\n",
        folder / "method.py": fill(kind.method_py),
        folder / "README.md": fill(_README),
        configs / "method" / f"{name}.yaml": fill(_CONFIG),
        configs / "experiment" / f"{name}_{kind.alias}.yaml": fill(_EXPERIMENT),
    }
    for path in files:
        if path.exists():
            raise ScaffoldError(f"{path} already exists; nothing written")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return list(files)
