"""Command-line overrides -> one composed run config (hydra's compose API).

Group configs (method / dataset / protocol) are not hydra groups: their overrides
(``method_cfg.K=V``, ``dataset.K=V``, ``protocol_cfg.NAME.K=V``) are resolved by
:mod:`evaluators.runner.plan` AFTER each file's ``scales`` block, so a user override always wins.
This module only rewrites the argv forms the runner accepts and composes ``configs/run.yaml``.
"""

from __future__ import annotations

from typing import Any

from hydra import compose as h_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException
from omegaconf import DictConfig

from evaluators.core.config import CONFIG_DIR, config_dirs
from evaluators.core.validate import ConfigError

GROUP_PREFIXES = {"method_cfg.": "method", "dataset.": "dataset", "protocol_cfg.": "protocol"}
GROUP_PREFIXES_BY_GROUP = {"method": "method_cfg.", "dataset": "dataset."}
# hydra's flags that take a value (``--cfg job``), kept with their value when flags and overrides are split
VALUED_FLAGS = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn", "--config-dir",
                "-cd", "--experimental-rerun"}


def group_overrides(overrides: list[str]) -> dict[str, Any]:
    """Split command-line overrides addressed to group configs: ``{"method": [...], "dataset": [...],
    "protocol": {name: [...]}}`` as OmegaConf dotlists (the prefix removed)."""
    out: dict[str, Any] = {"method": [], "dataset": [], "protocol": {}}
    for o in overrides:
        o = o.lstrip("+")
        for prefix, group in GROUP_PREFIXES.items():
            if o.startswith(prefix) and "=" in o:
                rest = o[len(prefix):]
                if group == "protocol":
                    name, _, rest = rest.partition(".")
                    out["protocol"].setdefault(name, []).append(rest)
                else:
                    out[group].append(rest)
    return out


def dataset_alias(arg: str) -> str:
    """``dataset=NAME`` (one dataset config) -> ``datasets=[NAME]``.

    ``dataset`` itself is the dict of per-run dataset overrides (``dataset.root=...``), so hydra
    would otherwise reject ``dataset=NAME`` with "No match in the defaults list".
    """
    key, sep, value = arg.partition("=")
    if sep and key == "dataset" and value and not any(c in value for c in "[]{},"):
        return f"datasets=[{value}]"
    return arg


def upsert(arg: str) -> str:
    """``method_cfg.K=V`` -> ``++method_cfg.K=V``: group overrides may add keys without a ``+``."""
    if "=" in arg and not arg.startswith(("+", "~", "-")) and arg.startswith(tuple(GROUP_PREFIXES)):
        return "++" + arg
    return arg


def split_flags(argv: list[str]) -> tuple[list[str], list[str]]:
    """Separate hydra's command-line flags (with their values) from the overrides."""
    flags, overrides = [], []
    it = iter(range(len(argv)))
    for i in it:
        a = argv[i]
        if not a.startswith("-"):
            overrides.append(a)
            continue
        flags.append(a)
        if (a in VALUED_FLAGS or (a == "--info" and i + 1 < len(argv) and "=" not in argv[i + 1])) \
                and i + 1 < len(argv):
            flags.append(argv[i + 1])
            next(it, None)
    return flags, overrides


def searchpath_override() -> list[str]:
    """``hydra.searchpath=[...]`` for the folders of ``$MOTIONREPRO_CONFIG_PATH`` (none: no override)."""
    extra = [d for d in config_dirs() if d != CONFIG_DIR]
    return [f"hydra.searchpath=[{','.join('file://' + str(d.resolve()) for d in extra)}]"] if extra else []


def compose(overrides: list[str]) -> DictConfig:
    """The composed run config for ``overrides`` (hydra's compose API; no output dir, no logging setup).

    Hydra's own errors (a bad override, an unknown group option) become one-line ConfigErrors."""
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
            return h_compose("run", overrides=[*overrides, *searchpath_override()])
    except HydraException as e:
        lines = [ln.strip() for ln in str(e).strip().splitlines() if ln.strip()] or [type(e).__name__]
        bad = getattr(e, "override", None)  # OverrideParseException names the override it could not parse
        bad = bad if isinstance(bad, str) else next((o for o in overrides if o in str(e)), None)
        raise ConfigError(f"override {bad!r}: {lines[-1] if bad else lines[0]}" if bad else lines[0]) from None
