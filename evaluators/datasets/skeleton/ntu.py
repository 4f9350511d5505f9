"""NTU RGB+D 60/120 skeletons: raw ``.skeleton`` reader, dataset object, registrations.

Dataset object API (what methods and protocols code against)
-----------------------------------------------------------
``load_dataset({"name": "ntu60_xsub", ...})`` (and every other skeleton dataset:
``ntu60_xview``, ``ntu120_xsub``, ``ntu120_xset``, ``pku1_xsub``, ``pku1_xview``,
``pku2_xsub``, ``pku2_xview``, ``synth_ntu``) returns a :class:`SkeletonDataset`:

- ``name: str`` (registry name), ``source: str`` (``"real"`` | ``"synthetic"``),
  ``benchmark: str`` (``"xsub"`` | ``"xview"`` | ``"xset"``), ``num_classes: int``,
  ``split_names: tuple[str, ...]`` = ``("train", "test")`` (no validation split, as MAMP).
- ``split(name) -> SkeletonSplit`` with
  ``data`` float32 ``[N, 3, 300, 25, 2]`` (C=xyz, T=300 zero-padded frames, V=25 joints,
  M=2 actors; the MAMP/MacDiff feeder layout, centred on the first-frame spine),
  ``labels`` int64 ``[N]`` (0-based action id, ``A001`` -> 0),
  ``names`` ``list[str]`` (``SsssCcccPpppRrrrAaaa``), ``valid_frames`` int64 ``[N]``
  (non-zero frames, counted as MAMP's feeder does; crops are taken within the first
  ``valid_frames`` frames). Both classes live in :mod:`evaluators.datasets.skeleton.dataset` (re-exported here).
- ``feeder(split, train: bool, window=120, **aug) -> torch.utils.data.Dataset`` yielding
  ``(x float32 tensor [3, window, 25, 2], label int, index int)``: MAMP ``valid_crop_resize``
  (train: random crop ratio p ~ U[0.5, 1], at least 64 frames; test: centre crop p=0.95),
  bilinear resize to ``window`` frames. ``split`` is a name or a :class:`SkeletonSplit`
  (e.g. ``ds.split("train").subset(idx)`` for the semi-supervised protocol). ``aug`` keys
  (:class:`~evaluators.datasets.skeleton.feeder.SkeletonFeeder`): ``p_interval`` (override
  the crop ratios), ``random_rot`` (MAMP ``random_rot``, theta ``rot_theta`` = 0.3 rad),
  ``noise_std`` (Gaussian joint noise, MacDiff uses 0.005) or ``joint_noise=(p, std)``,
  ``one_person`` (zero the second actor), ``pair=True`` (yield ``(x, x_aug, label, index)``
  with the noise / ``source_rot`` only on ``x_aug``, as MacDiff's pretraining feeder).
- ``summary()`` (JSON-able sizes), ``info`` (e.g. synth_ntu's action names), ``root``.

The raw reader (``read_skeleton``, a DESIGN.md contract) lives in
:mod:`evaluators.datasets.skeleton.ntu_reader` and is re-exported here.
"""

from __future__ import annotations

from evaluators.datasets.base import register_dataset, register_inspector, resolve_root
from evaluators.datasets.skeleton.build import load_ntu_like
from evaluators.datasets.skeleton.dataset import SkeletonDataset, SkeletonSplit
from evaluators.datasets.skeleton.inspect_ntu import inspect_ntu
from evaluators.datasets.skeleton.ntu_reader import (
    NAME_RE,
    SkeletonFile,
    parse_name,
    parse_skeleton_text,
    read_missing_list,
    read_skeleton,
)

__all__ = ["SkeletonDataset", "SkeletonSplit", "SkeletonFile", "read_skeleton", "parse_skeleton_text",
           "parse_name", "read_missing_list", "load_ntu", "NTU_BENCHMARKS", "NAME_RE"]


# -- registered datasets -------------------------------------------------------------------------
# name -> (split rule, classes, NTU-60 subset only, official npz file name, single-actor fill)
# single-actor fill: NTU-60's seq_transformation.py pads actor 2 with zeros, NTU-120's copies actor 1.
NTU_BENCHMARKS = {
    "ntu60_xsub": ("ntu60_xsub", 60, True, "NTU60_XSub.npz", "zeros"),
    "ntu60_xview": ("ntu60_xview", 60, True, "NTU60_XView.npz", "zeros"),
    "ntu120_xsub": ("ntu120_xsub", 120, False, "NTU120_XSub.npz", "duplicate"),
    "ntu120_xset": ("ntu120_xset", 120, False, "NTU120_XSet.npz", "duplicate"),
}


def load_ntu(cfg: dict):
    """Load a registered NTU benchmark: from ``cfg['npz']``, an official npz in the root, or raw files."""
    rule, ncls, only60, npz_name, fill = NTU_BENCHMARKS[cfg["name"]]
    cfg = dict(cfg)
    root = None
    if not cfg.get("npz"):
        root = resolve_root(cfg)
        if (root / npz_name).exists():
            cfg["npz"] = str(root / npz_name)
    return load_ntu_like(cfg, rule=rule, num_classes=ncls, ntu60_only=only60, single_actor=fill,
                         source=cfg.get("source", "real"), root=root)


def _register() -> None:
    for name in NTU_BENCHMARKS:
        register_dataset(name, task="skeleton_ssl", source="real")(load_ntu)


_register()


# -- `python -m evaluators.datasets inspect PATH` ---------------------------------------------------
register_inspector(inspect_ntu)
