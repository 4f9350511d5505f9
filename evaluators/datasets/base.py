"""Dataset registry, the one error type, and helpers every loader shares.

A dataset is registered by name (the config group option, e.g. ``ntu60_xsub``,
``synth_ntu``) with a loader ``load(cfg: dict) -> object``. Real and synthetic
variants of a dataset share the loader code: the synthetic entry first writes the
published on-disk format (seeded, cached) and then calls the same reader.

Dataset config keys every loader understands (``configs/dataset/<name>.yaml``):
``name``, ``task`` (skeleton_ssl | text2motion | action2motion | pose2d),
``source`` (real | synthetic), ``root`` (path or null), ``env_var`` (the environment
variable that points at the root), ``layout`` (expected directory tree, shown when
missing), ``url`` (where the maintainers publish it).
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evaluators.core.errors import DatasetError
from evaluators.core.names import UnknownNameError, unknown_name_message
from evaluators.core.plugins import load_plugins

_DATASETS: dict[str, Callable[[dict], Any]] = {}
_INFO: dict[str, dict[str, Any]] = {}


def register_dataset(name: str, *, task: str, source: str = "real"):
    """Decorator registering ``load(cfg) -> dataset`` under ``name``."""

    def deco(fn: Callable[[dict], Any]) -> Callable[[dict], Any]:
        if name in _DATASETS and _DATASETS[name] is not fn:
            raise KeyError(f"dataset {name!r} registered twice")
        _DATASETS[name] = fn
        _INFO[name] = {"task": task, "source": source}
        return fn

    return deco


def get_dataset_loader(name: str) -> Callable[[dict], Any]:
    _import_all()
    try:
        return _DATASETS[name]
    except KeyError:
        raise UnknownNameError(unknown_name_message("dataset", name, list(_DATASETS))) from None


def dataset_info(name: str) -> dict[str, Any]:
    _import_all()
    get_dataset_loader(name)
    return dict(_INFO[name])


def list_datasets() -> list[str]:
    _import_all()
    return sorted(_DATASETS)


def load_dataset(cfg: dict) -> Any:
    """Load the dataset a (resolved) dataset config describes."""
    return get_dataset_loader(cfg["name"])(dict(cfg))


def resolve_root(cfg: dict) -> Path:
    """The dataset root: ``cfg['root']`` if set, else ``$<env_var>``; raise a helpful error if absent."""
    root = cfg.get("root")
    env = cfg.get("env_var")
    if not root and env:
        root = os.environ.get(env)
    if not root or not Path(root).exists():
        raise DatasetError(missing_root_message(cfg, root), path=root or "<unset>")
    return Path(root)


def missing_root_message(cfg: dict, root: Any) -> str:
    name = cfg.get("name", "?")
    lines = [f"dataset {name!r} not found at {root or '<root unset>'}."]
    if cfg.get("layout"):
        lines.append("Expected layout:\n" + str(cfg["layout"]).rstrip())
    how = []
    if cfg.get("env_var"):
        how.append(f"export {cfg['env_var']}=/path/to/{name}")
    how.append(f"or pass dataset.root=/path/to/{name}")
    lines.append("Point the suite at it: " + "  ".join(how))
    if cfg.get("url"):
        lines.append(f"Published by its maintainers at: {cfg['url']}")
    return "\n".join(lines)


# -- `python -m evaluators.datasets inspect PATH` dispatch ---------------------------------------
# Each loader module registers a function ``inspect(path) -> dict | None``: it returns None when
# the path is not its format, a JSON-able summary when it is, and raises DatasetError when it is
# its format but broken.
_INSPECTORS: list[Callable[[Path], dict | None]] = []


def register_inspector(fn: Callable[[Path], dict | None]) -> Callable[[Path], dict | None]:
    _INSPECTORS.append(fn)
    return fn


def inspect_path(path: str | os.PathLike) -> dict:
    _import_all()
    p = Path(path)
    if not p.exists():
        raise DatasetError("no such file or directory", path=p)
    # absolute (symlinks kept): inspectors recognise files by their folder (texts/, new_joint_vecs/),
    # which a bare relative name such as ``012314.npy`` would hide
    p = p.absolute()
    for fn in _INSPECTORS:
        out = fn(p)
        if out is not None:
            return out
    raise DatasetError("not a format this suite reads (see `python -m evaluators.datasets --help`)", path=p)


def _import_all() -> None:
    """Import every loader module so its registrations run."""
    for mod in pkgutil.walk_packages(_PACKAGE_PATH, prefix="evaluators.datasets."):
        if not mod.name.rsplit(".", 1)[-1].startswith("_") and mod.name not in _SHARED:
            importlib.import_module(mod.name)
    load_plugins()


# the registrations live in the family sub-packages; the shared modules register nothing
_PACKAGE_PATH = [str(Path(__file__).parent)]
_SHARED = {"evaluators.datasets.base", "evaluators.datasets.cache", "evaluators.datasets.checks",
           "evaluators.datasets.ntu", "evaluators.datasets.humanml3d"}
