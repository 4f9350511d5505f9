"""Experiment names: ``METHOD DATASET`` <-> ``configs/experiment/<method>_<alias>.yaml``.

The lowest runner module (the registry and the config folders only), shared by the command
line, the listing (``--list``), the demo and ``--estimate`` so that none of them imports another.
"""

from __future__ import annotations

from evaluators.core.config import list_configs
from evaluators.core.plugins import load_plugins as _load_plugin_modules
from evaluators.core.validate import ConfigError
from methods.registry import UnknownNameError, get_method, method_names, unknown_name_message


def load_plugins() -> None:
    """Import every module named in ``$MOTIONREPRO_PLUGINS`` (an outside method, dataset or
    protocol), so that a broken plugin stops a command at start-up. The method folders are not
    imported here: the registry imports the one a command looks up (``methods.registry``)."""
    _load_plugin_modules()


def experiments_by_method() -> dict[str, list[str]]:
    """``{method: [dataset alias, ...]}`` from ``configs/experiment/<method>_<alias>.yaml``.

    Registered names are matched first (longest first: a method name may contain ``_``, as
    ``heatmap_baseline``); otherwise the part before the first ``_`` is taken as the method.
    """
    out: dict[str, list[str]] = {}
    for name in list_configs("experiment"):
        method, alias = split_experiment(name)
        if alias:
            out.setdefault(method, []).append(alias)
    return out


def split_experiment(name: str) -> tuple[str, str]:
    """``"heatmap_baseline_synth-coco"`` -> ``("heatmap_baseline", "synth-coco")``."""
    for m in sorted(method_names(), key=len, reverse=True):
        if name.startswith(m + "_"):
            return m, name[len(m) + 1:]
    method, _, alias = name.partition("_")
    return method, alias


def experiment_name(method: str, dataset: str) -> str:
    """Validate ``METHOD DATASET`` and return the experiment config name; ConfigError otherwise."""
    try:
        get_method(method)
    except UnknownNameError as e:
        raise ConfigError(str(e)) from None
    aliases = experiments_by_method().get(method, [])
    for cand in (dataset, dataset.replace("-", "_"), dataset.replace("_", "-")):
        if cand in aliases:
            return f"{method}_{cand}"
    msg = unknown_name_message("dataset", dataset, aliases)
    raise ConfigError(msg.replace(f"dataset {dataset!r}", f"dataset {dataset!r} for method {method!r}", 1))


def experiment_of(overrides: list[str]) -> str | None:
    """The experiment an override list selects (``+experiment=NAME``, the last one wins), else None."""
    names = [o.split("=", 1)[1] for o in overrides if o.lstrip("+").startswith("experiment=")]
    return names[-1] if names else None


def check_experiment_override(overrides: list[str]) -> None:
    """Fail early, in one line, on ``+experiment=NAME`` naming an unknown method or dataset."""
    for o in overrides:
        key, _, value = o.lstrip("+~").partition("=")
        if key == "experiment" and value and value not in list_configs("experiment"):
            method, dataset = split_experiment(value)
            experiment_name(method, dataset)  # raises the one-line message
            raise ConfigError(f"no experiment config experiment/{value}.yaml")
