"""MacDiff pretraining recipe switches: feeder rotation and the per-step learning-rate schedule
(Wenrui-Shen/MacDiff@692888f: ``feeder/feeder_ntu.py``, ``util/lr_sched.py``)."""

from __future__ import annotations

import math

ROTATIONS = ("shared", "source", "none")


def rotation_kwargs(pretrain_cfg: dict) -> dict[str, bool]:
    """Feeder switches for ``pretrain.rotation``.

    - ``shared``: ONE random rotation applied to the window before the encoder's view is made,
      so target and view share it (official ``random_rot: True`` in ``feeder/feeder_ntu.py``
      ``__getitem__``: "source & target share same crop, flip, rot");
    - ``source``: only the encoder's view is rotated (official ``source_rot``, commented out in
      every 692888f pretrain yaml);
    - ``none``: no rotation (NTU-60 xsub, where ``random_rot`` is commented out).
    """
    if "source_rot" in pretrain_cfg:
        raise ValueError("method config pretrain.source_rot was replaced by pretrain.rotation: shared | source | none")
    rot = str(pretrain_cfg["rotation"])
    if rot not in ROTATIONS:
        raise ValueError(f"method config pretrain.rotation must be one of {ROTATIONS}, got {rot!r}")
    return {"random_rot": rot == "shared", "source_rot": rot == "source"}


def pretrain_lr_lambda(step: int, *, total: int, warmup: int, hold: int, lr: float, min_lr: float) -> float:
    """Multiplier of ``lr`` at ``step``: linear warmup, half-cosine to ``min_lr``, then ``min_lr``
    for the last ``hold`` steps (official ``util/lr_sched.py`` with ``min_lr_epochs``, per step)."""
    if step < warmup:
        return (step + 1) / warmup
    span = max(total - warmup - hold, 1)
    if step >= warmup + span:
        return min_lr / lr
    cur = min_lr + (lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / span))
    return cur / lr
