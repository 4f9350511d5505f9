"""``python -m methods new NAME --capability MotionGenerator [--dir PATH]``: a working toy method.

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

from methods.registry import list_methods

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
    protocol_cfg: str  # YAML block (indented by two) of the experiment's protocol settings
    method_py: str


_T2M_METHOD = '''"""__CLASS__: a toy text-to-motion generator (scaffolded by ``python -m methods new``).

A linear map from a hashed bag of caption words to one (normalised) pose, repeated over the
requested length: enough to exercise training, checkpoints, resume, DDP and every protocol of
``task = "text2motion"``. Replace ``_Net`` and ``generate`` with the paper's model.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from methods.base import Method
from methods.common.training import train
from methods.registry import register_method


class _Net(nn.Module):
    """Bag of hashed words -> one normalised pose; keeps the data's feature statistics as buffers."""

    def __init__(self, buckets: int, nfeats: int) -> None:
        super().__init__()
        self.linear = nn.Linear(buckets, nfeats)
        self.register_buffer("mean", torch.zeros(nfeats))
        self.register_buffer("std", torch.ones(nfeats))

    def forward(self, bow: torch.Tensor) -> torch.Tensor:
        return self.linear(bow)


@register_method("__NAME__")
class __CLASS__(Method):
    """MotionGenerator: ``generate(captions, lengths) -> raw features [B, T_max, D]``."""

    task = "text2motion"
    main_stage = "train"  # train_batch() reads train.batch_size
    # no iterative sampler: default_steps stays None and the step sweep is (None,) (methods/base.py)

    def __init__(self, cfg: dict | None = None, **kw) -> None:
        super().__init__(cfg, **kw)
        torch.manual_seed(self.seed)
        self.buckets = int(self.cfg.get("buckets", 32))
        self.net = _Net(self.buckets, int(self.cfg.get("nfeats", 263))).to(self.device)

    def components(self) -> dict[str, nn.Module]:
        return {"net": self.net}

    def set_normalization(self, mean, std) -> None:
        """Feature statistics of the training data (raw = normalised * std + mean)."""
        self.net.mean.copy_(torch.as_tensor(np.asarray(mean, np.float32)))
        self.net.std.copy_(torch.as_tensor(np.asarray(std, np.float32)))

    def _bow(self, captions: Sequence[str] | None, n: int) -> torch.Tensor:
        x = torch.zeros(n, self.buckets)
        for i, cap in enumerate(captions or [""] * n):
            for word in str(cap).lower().split():
                x[i, zlib.crc32(word.encode()) % self.buckets] += 1.0
        return x.to(self.device)

    def fit(self, dataset) -> None:
        """Regress each training motion's mean (normalised) pose from its caption."""
        mean, std = np.asarray(dataset.mean, np.float32), np.asarray(dataset.std, np.float32)
        if len(mean) != self.net.mean.numel():  # the dataset's feature width (263 HumanML3D, 251 KIT)
            self.net = _Net(self.buckets, len(mean)).to(self.device)
        self.set_normalization(mean, std)
        tcfg = dict(self.cfg.get("train") or {})
        opt = torch.optim.Adam(self.net.parameters(), lr=float(tcfg.get("lr", 1e-2)))

        def step_fn(batch, step):
            motion = (batch["motion"].to(self.device) - self.net.mean) / self.net.std
            valid = (torch.arange(motion.shape[1], device=self.device)[None] < batch["length"].to(self.device)[:, None])
            target = (motion * valid[..., None]).sum(1) / valid.sum(1, keepdim=True).clamp(min=1)
            loss = ((self.net(self._bow(batch["caption"], len(motion))) - target) ** 2).mean()
            return loss, {}

        ckpt = self.workdir / "train" if self.workdir is not None else None  # resume after a kill
        train({"net": self.net}, opt, dataset.torch_dataset("train", normalise=False),
              batch_size=int(tcfg.get("batch_size", 16)), total_steps=int(tcfg.get("steps", 50)), step_fn=step_fn,
              ckpt_dir=ckpt, seed=self.seed, desc="__NAME__", collate_fn=dataset.collate,
              ckpt_every=int(tcfg.get("ckpt_every", 200)))

    @torch.inference_mode()
    def generate(self, conditions: Sequence[str] | None, lengths: Sequence[int],
                 steps: int | None = None) -> torch.Tensor:
        pose = self.net(self._bow(conditions, len(lengths))) * self.net.std + self.net.mean
        out = pose[:, None, :].repeat(1, max(lengths), 1)
        out[torch.arange(max(lengths), device=out.device)[None] >= torch.tensor(list(lengths), device=out.device)[:, None]] = 0
        return out.float().cpu()

    def train_step_example(self, batch: int):
        """One optimiser step on random data (benchmarks time it for samples/s)."""
        opt = torch.optim.Adam(self.net.parameters(), lr=1e-3)
        x = torch.randn(batch, self.buckets, device=self.device)
        y = torch.randn(batch, self.net.mean.numel(), device=self.device)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = ((self.net(x) - y) ** 2).mean()
            loss.backward()
            opt.step()

        return step
'''

KINDS: dict[str, Kind] = {
    "MotionGenerator": Kind(
        task="text2motion", dataset="synth_t2m", alias="synth-t2m", protocols="[text2motion]",
        # ours: toy sizes so the whole experiment runs in well under a CPU minute (pipeline check)
        protocol_cfg=("  text2motion:\n"
                      "    repetitions: 1\n"
                      "    mm: {enabled: false}\n"
                      "    aits: {num_captions: 2}\n"
                      "    evaluator: {train: {steps: 20}}\n"),
        method_py=_T2M_METHOD),
}

_CONFIG = """# __CLASS__: a toy __CAPABILITY__ (README.md beside its method.py). Group config of the method:
# the common keys are the paper's values, `scales` shrinks them (smoke = CPU seconds).
name: __NAME__
task: __TASK__
demo_experiment: __NAME_____ALIAS__   # what ./reproduce.sh demo runs (synthetic data only)
# What the paper's numbers were produced with (evaluators/provenance.py): provenance ids a record must match
paper_setting: {weights: [trained-here]}
non_paper: []               # values no paper/official code fixes (ours.* provenance entries)
buckets: 32                 # ours: hashed caption-word buckets of the toy
nfeats: 263                 # replaced by the dataset's feature width at fit
train: {batch_size: 32, steps: 200, lr: 1.0e-2, ckpt_every: 100}
scales:
  paper: {}
  smoke:
    train: {batch_size: 16, steps: 20}
"""

_EXPERIMENT = """# @package _global_
# ./reproduce.sh __NAME__ __ALIAS__ -> __CLASS__ at smoke scale on bundled synthetic data
# (__DATASET__). Pipeline check in CPU seconds; not comparable with any paper.
defaults:
  - override /scale: smoke

method: __NAME__
datasets: [__DATASET__]
protocols: __PROTOCOLS__
method_cfg: {}
dataset: {n_train: 16, n_val: 4, n_test: 16}   # ours: toy sizes (16 test motions + mirrors = one batch of 32)
protocol_cfg:
__PROTOCOL_CFG__paper_ref: {method: __NAME__, tables: "toy pipeline check on synthetic data"}
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
    scaffolded (set up before the files exist) the repository's own method folders."""
    try:
        return set(list_methods(include_testing=True))
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
        for key, value in (("__PROTOCOL_CFG__", kind.protocol_cfg), ("__PROTOCOLS__", kind.protocols),
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
