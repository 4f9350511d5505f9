"""Load one group config (method / dataset / protocol) and resolve it at a scale.

Every group file ``configs/<group>/<name>.yaml`` holds common keys plus an optional
``scales: {paper: {...}, smoke: {...}}`` block. :func:`load_config` returns a plain dict:

    common keys  <-  scales[scale]  <-  patch (common, then patch.scales[scale])  <-  overrides

so a command-line override always wins over both the common keys and the scale block
(this is why the runner applies user overrides here and not in the hydra tree, where the
scale block would be merged afterwards and silently undo them).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from evaluators.core.resolvers import register_resolvers

# configs/run.yaml uses ${motionrepro.unique:}; whoever composes the hydra tree imports this module
# first, so registering here keeps every entry point working (the runner may also call it itself)
register_resolvers()
REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / "configs"
SCALES = ("paper", "smoke")


def config_dirs(config_dir: str | Path | None = None) -> list[Path]:
    """Folders searched for group configs: ``config_dir`` if given, else the folders in
    ``$MOTIONREPRO_CONFIG_PATH`` (``:``-separated, searched first) followed by ``configs/``."""
    if config_dir is not None:
        return [Path(config_dir)]
    extra = [Path(p) for p in os.environ.get("MOTIONREPRO_CONFIG_PATH", "").split(os.pathsep) if p]
    return [*extra, CONFIG_DIR]


def list_configs(group: str, config_dir: str | Path | None = None) -> list[str]:
    """Names of the yaml files in ``<config dir>/<group>/`` over every searched folder."""
    return sorted({p.stem for d in config_dirs(config_dir) if (d / group).is_dir() for p in (d / group).glob("*.yaml")})


def config_path(group: str, name: str, config_dir: str | Path | None = None) -> Path:
    """``configs/<group>/<name>.yaml`` (raises FileNotFoundError listing the group's names)."""
    for d in config_dirs(config_dir):
        path = d / group / f"{name}.yaml"
        if path.exists():
            return path
    known = list_configs(group, config_dir)
    raise FileNotFoundError(f"no config {group}/{name}.yaml under {', '.join(map(str, config_dirs(config_dir)))} "
                            f"(available in {group}/: {', '.join(known) or 'none'})")


def resolve_scale(cfg: Any, scale: str, *, source: str = "<config>") -> DictConfig:
    """Merge ``cfg.scales[scale]`` over the common keys of ``cfg`` and drop ``scales``."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    cfg = OmegaConf.create(cfg if not isinstance(cfg, DictConfig) else OmegaConf.to_container(cfg))
    scales = cfg.pop("scales", None) or {}
    unknown = set(scales) - set(SCALES)
    if unknown:
        raise ValueError(f"{source}: unknown scale(s) {sorted(unknown)} in 'scales' (allowed: {SCALES})")
    if scale in scales and scales[scale] is not None:
        cfg = OmegaConf.merge(cfg, scales[scale])
    return cfg


def load_config(group: str, name: str, scale: str = "paper", overrides: list[str] | None = None, *,
                patch: dict | None = None, config_dir: str | Path | None = None) -> dict:
    """Resolved plain-dict config of ``configs/<group>/<name>.yaml`` at ``scale``.

    ``overrides`` is an OmegaConf dotlist (``["lr=1e-4", "vae.layers=9"]``) applied last.
    ``patch`` (keyword, optional) is a dict merged before the overrides; it may carry its
    own ``scales`` block (experiments use it to pin a paper's settings for one dataset).
    """
    path = config_path(group, name, config_dir)
    raw = OmegaConf.load(path)
    if not isinstance(raw, DictConfig):
        raise ValueError(f"{path}: top level must be a mapping")
    cfg = resolve_scale(raw, scale, source=str(path))
    if patch:
        cfg = OmegaConf.merge(cfg, resolve_scale(patch, scale, source=f"patch for {group}/{name}"))
    if overrides:
        bad = [o for o in overrides if "=" not in o]
        if bad:
            raise ValueError(f"overrides must look like key=value, got {bad}")
        cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    out = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(out, dict)
    out.setdefault("name", name)
    return out
