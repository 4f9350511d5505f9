"""Capabilities a method can have, and the small base class every method shares.

Protocols in ``evaluators/protocols`` never import a concrete method: they ask for
a capability (``isinstance(method, MotionGenerator)``) and call it. A method states
what it can do simply by implementing the methods below (``typing.Protocol``,
checked structurally at run time).

Data conventions (shared with ``evaluators/datasets``):

- skeletons: float tensor ``[B, C=3, T, V=25, M=2]`` (the MAMP/MacDiff feeder layout)
- text-to-motion motions: raw (NOT normalised) feature tensors ``[B, T, D]``
  (D = 263 HumanML3D, 251 KIT), zero beyond each sample's length
- action-to-motion motions: the action dataset's own representation ``[B, T, J, 3]``
- images: list of ``HxWx3`` uint8 RGB arrays; boxes ``[B, 4]`` as COCO ``xywh``;
  keypoints ``[B, K, 3]`` as image-space ``(x, y, score)``
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from evaluators.core.io import atomic_torch_save
from evaluators.core.safe_load import load_checkpoint_file


@runtime_checkable
class RepresentationLearner(Protocol):
    """Self-supervised skeleton encoder (MacDiff)."""

    def pretrain(self, dataset: Any) -> None: ...

    def encode(self, skeletons: torch.Tensor, pooling: str = "joint") -> torch.Tensor:
        """``[B, 3, T, 25, 2]`` -> features ``[B, D]`` (``pooling`` names the feature pooling)."""
        ...


@runtime_checkable
class MotionGenerator(Protocol):
    """Conditional motion generator (MLD, MoMask, HGM3)."""

    def fit(self, dataset: Any) -> None: ...

    def generate(
        self, conditions: Sequence[Any] | None, lengths: Sequence[int], steps: int | None = None
    ) -> torch.Tensor:
        """Conditions (captions, action ids, or None) -> raw motions ``[B, T_max, D]``.

        ``steps`` is the sampler's step / iteration count (method default when None).
        """
        ...


@runtime_checkable
class PoseEstimator(Protocol):
    """Top-down 2D pose estimator (DiffusionPose, heatmap baseline)."""

    def fit(self, dataset: Any, validate: Any = None) -> None:
        """Train on ``dataset``; ``validate(predict) -> (metric name, value)`` (higher is better) scores
        the weights for best-checkpoint selection (the runner passes ``evaluators.protocols.pose.checkpoint_scorer``)."""
        ...

    def predict(self, images: Sequence[Any], boxes: Any) -> torch.Tensor:
        """Images + COCO xywh boxes ``[B, 4]`` -> keypoints ``[B, K, 3]`` (x, y, score)."""
        ...


@runtime_checkable
class Reconstructor(Protocol):
    """A method that reconstructs its input (MacDiff masked input, MLD VAE, MoMask RVQ)."""

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor: ...


CAPABILITIES: dict[str, type] = {
    "RepresentationLearner": RepresentationLearner,
    "MotionGenerator": MotionGenerator,
    "PoseEstimator": PoseEstimator,
    "Reconstructor": Reconstructor,
}


def capabilities_of(obj: Any) -> list[str]:
    """Names of the capability Protocols ``obj`` (instance or class) implements."""
    return [name for name, proto in CAPABILITIES.items() if all(hasattr(obj, m) for m in _members(proto))]


def _members(proto: type) -> list[str]:
    return [m for m in vars(proto) if not m.startswith("_") and callable(getattr(proto, m))]


class Method:
    """Shared plumbing of a registered method.

    Subclasses set ``task`` (``"skeleton_ssl" | "text2motion" | "action2motion" |
    "pose2d"``), build their modules in ``__init__`` from a plain dict config (the
    resolved ``method`` group of the hydra config merged with the ``scale``), and list
    them in :meth:`components` so the model card, checkpoints and DDP wrap them.
    """

    registry_name: str = ""
    task: str = ""
    testing_only: bool = False  # test-only methods are hidden from --help and the demo
    checkpoint_accepts_dir: bool = False  # checkpoint=FOLDER allowed (a release tree, as MoMask's)

    # -- what a method declares about itself (read by benchmarks/, the estimate and the experiment
    # help, which never keep tables keyed by method names) ------------------------------------------
    main_stage: str = "train"  # config group of the main training stage: its ``batch_size`` is train_batch()
    precision_key: tuple[str, ...] | None = None  # path of the sampler ``precision: fp32|bf16`` key in the config
    benchmark_steps: tuple[int | None, ...] = (None,)  # step counts the sampling benchmark sweeps (None: no sampler)
    speed_targets: tuple[float | None, float | None] | None = None  # fraction of peak to reach at (batch 1, batch 32)
    paper_needs: str = ""  # what the paper experiments need on disk (``./reproduce.sh METHOD DATASET --help``)

    @property
    def default_steps(self) -> int | None:
        """The sampler's configured step / iteration count; ``None`` when not an iterative sampler."""
        return None

    def train_batch(self) -> int:
        """Training batch of the main stage: ``benchmark_batch``, else ``<main_stage>.batch_size``, else 32."""
        for v in (self.cfg.get("benchmark_batch"), (self.cfg.get(self.main_stage) or {}).get("batch_size")):
            if isinstance(v, int):
                return v
        return 32

    def __init__(self, cfg: dict | None = None, *, device: str | torch.device = "cpu", seed: int = 0,
                 workdir: str | Path | None = None) -> None:
        self.cfg = dict(cfg or {})
        self.device = torch.device(device)
        self.seed = seed
        self.workdir = Path(workdir) if workdir is not None else None

    # -- model card ---------------------------------------------------------------------------
    def components(self) -> dict[str, nn.Module]:
        """Trained components by name (counted in the model card total)."""
        return {}

    def frozen_components(self) -> dict[str, nn.Module]:
        """Frozen pretrained parts (e.g. a text encoder): listed, not counted in ``total``."""
        return {}

    def gmacs(self) -> dict[str, float]:
        """GMACs of one forward of each component where defined (fvcore); empty if none."""
        return {}

    # -- benchmark hooks (optional; used by benchmarks/ for FLOPs, per-step latency, throughput) ----
    def denoiser_example(self, batch: int = 1) -> tuple[nn.Module, tuple] | None:
        """The module called once per sampling step/iteration and example inputs for it.

        ``module(*inputs)`` must run; benchmarks count its FLOPs with fvcore and time it.
        ``None`` when the method has no iterative sampler.
        """
        return None

    def train_step_example(self, batch: int) -> Any:
        """A zero-argument callable running one optimiser step on random data of ``batch``
        samples (benchmarks time it for samples/s); ``None`` when not provided."""
        return None

    def summary(self) -> dict[str, Any]:
        """The JSON model card printed by ``python -m methods summary NAME``."""
        params = {k: sum(p.numel() for p in m.parameters()) for k, m in self.components().items()}
        card: dict[str, Any] = {
            "method": self.registry_name,
            "task": self.task,
            "capabilities": capabilities_of(self),
            "params": {**params, "total": sum(params.values())},
            "frozen_params": {k: sum(p.numel() for p in m.parameters()) for k, m in self.frozen_components().items()},
        }
        gm = self.gmacs()
        if gm:
            card["gmacs"] = gm
        return card

    # -- checkpoints ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {k: m.state_dict() for k, m in self.components().items()}

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> None:
        comps = self.components()
        missing = set(comps) - set(state)
        if strict and missing:
            raise KeyError(f"checkpoint lacks components {sorted(missing)}")
        for k, m in comps.items():
            if k in state:
                m.load_state_dict(state[k], strict=strict)

    def save_checkpoint(self, path: str | Path) -> Path:
        """Atomically write ``{"method", "state_dict", "cfg"}`` (the runner does this after training)."""

        atomic_torch_save({"method": self.registry_name, "state_dict": self.state_dict(), "cfg": self.cfg}, path)
        return Path(path)

    def load_checkpoint(self, path: str | Path) -> None:
        """Load a file written by :meth:`save_checkpoint` (or a bare ``state_dict()``).

        Methods whose released official weights use another key layout override this and
        convert them (each method folder has a small converter).
        """
        if not Path(path).exists():
            raise FileNotFoundError(f"checkpoint {path} does not exist")
        obj = load_checkpoint_file(path)  # weights_only=True (evaluators/core/safe_load.py)
        self.load_state_dict(obj["state_dict"] if isinstance(obj, dict) and "state_dict" in obj else obj)

    def to(self, device: str | torch.device) -> Method:
        self.device = torch.device(device)
        for m in list(self.components().values()) + list(self.frozen_components().values()):
            m.to(self.device)
        return self
