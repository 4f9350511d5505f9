"""Protocol registry: name -> function that turns a (trained) method into metrics.

A protocol is ``fn(method, data, cfg: dict, ctx: RunContext) -> ProtocolResult``. It asks
for a capability (``needs``), never a concrete method. The runner
(``evaluators/runner/run.py``) writes one run record per returned result.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evaluators.core.config import load_config
from evaluators.core.names import UnknownNameError, unknown_name_message
from evaluators.core.plugins import load_plugins


@dataclass
class RunContext:
    """What a protocol needs to know about the run besides the method and the data."""

    seed: int = 0
    device: str = "cpu"
    workdir: Path = Path("runs")
    data_source: str = "synthetic"  # real | synthetic
    scale: str = "smoke"  # paper | smoke
    rank: int = 0
    world_size: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ProtocolResult:
    """One protocol evaluation: becomes one run record.

    ``metrics`` maps a snake_case key (``top1``, ``fid``, ``r_precision_top3``, ``mpjpe_mm``)
    to a float or to ``{"value": float, "ci95": float | None}``. ``variant`` distinguishes
    several results of one protocol run (e.g. linear probe pooling ``joint`` vs ``mean``,
    DDIM steps 10 vs 50), and is part of the record's identity in the leaderboards.
    """

    metrics: dict[str, Any]
    split: str = "test"
    n_samples: dict[str, int] = field(default_factory=dict)  # {"expected": N, "evaluated": M}
    variant: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # repetitions, sampler settings, ...
    # entries the protocol knows (evaluator, word vectors...): evaluators/provenance.py
    provenance: dict[str, dict] = field(default_factory=dict)


@dataclass
class ProtocolSpec:
    name: str
    fn: Callable[..., ProtocolResult | list[ProtocolResult]]
    needs: tuple[str, ...]  # capability names from methods.base.CAPABILITIES
    tasks: tuple[str, ...]  # dataset tasks it applies to
    description: str = ""


_PROTOCOLS: dict[str, ProtocolSpec] = {}


def merge_defaults(base: dict, over: dict | None) -> dict:
    """``over`` laid over ``base``, nested dicts merged key by key."""
    out = dict(base)
    for k, v in (over or {}).items():
        out[k] = merge_defaults(base[k], v) if isinstance(base.get(k), dict) and isinstance(v, dict) else v
    return out


def complete_config(name: str, cfg: dict | None) -> dict:
    """``cfg`` laid over ``configs/protocol/<name>.yaml`` at paper scale (nested dicts key by key).

    The protocol defaults live in that YAML only. The runner passes the complete resolved config
    (of either scale), which this returns unchanged; a caller with a partial config (tests,
    benchmarks) gets the YAML's paper values for the keys it leaves out.
    """
    return merge_defaults(load_config("protocol", name, "paper"), cfg)


def register_protocol(name: str, *, needs: tuple[str, ...] | str, tasks: tuple[str, ...] | str,
                      description: str = ""):
    """Decorator registering a protocol function under ``name``."""
    needs_t = (needs,) if isinstance(needs, str) else tuple(needs)
    tasks_t = (tasks,) if isinstance(tasks, str) else tuple(tasks)

    def deco(fn):
        if name in _PROTOCOLS and _PROTOCOLS[name].fn is not fn:
            raise KeyError(f"protocol {name!r} registered twice")
        _PROTOCOLS[name] = ProtocolSpec(name, fn, needs_t, tasks_t, description or (fn.__doc__ or "").strip().split("\n")[0])
        return fn

    return deco


def get_protocol(name: str) -> ProtocolSpec:
    _import_all()
    try:
        return _PROTOCOLS[name]
    except KeyError:
        raise UnknownNameError(unknown_name_message("protocol", name, list(_PROTOCOLS))) from None


def list_protocols() -> list[str]:
    _import_all()
    return sorted(_PROTOCOLS)


def _import_all() -> None:
    """Import every protocol module (and the plugins) so their registrations run."""
    for mod in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if not mod.name.startswith("_") and mod.name != "registry":
            importlib.import_module(f"evaluators.protocols.{mod.name}")
    load_plugins()
