"""``./reproduce.sh METHOD DATASET --help``: what one paper experiment needs on disk.

Prints the experiment config's header comment, then the files and environment variables the
authors' numbers need: the method class's own ``paper_needs`` (README "Reproducing the paper
numbers" has the same list).
"""

from __future__ import annotations

from pathlib import Path

from evaluators.core.config import config_dirs
from methods.registry import UnknownNameError, get_method


def experiment_help(method: str, name: str) -> str:
    """Help text of experiment ``name`` (``configs/experiment/<name>.yaml``) for ``method``."""
    path = next((d / "experiment" / f"{name}.yaml" for d in config_dirs()
                 if (d / "experiment" / f"{name}.yaml").is_file()), None)
    alias = name[len(method) + 1:] if name.startswith(method + "_") else name  # method names may hold "_"
    lines = [f"./reproduce.sh {method} {alias} [overrides]   (configs/experiment/{name}.yaml)"]
    if path is not None:
        for line in Path(path).read_text().splitlines():
            if line.startswith("# @package"):
                continue
            if not line.startswith("#"):
                break
            lines.append("  " + line.lstrip("# ").rstrip())
    synthetic = "synth" in name
    lines.append("")
    if synthetic:
        lines.append("Needs: nothing (bundled synthetic data; pipeline check, not comparable with the paper).")
    else:
        lines.append("Needs, for numbers comparable with the paper:")
        lines.append(_paper_needs(method) or "  the dataset (dataset.root=...); see the method README.")
    lines.append("")
    lines.append("Overrides: scale=smoke|paper seed=N device=cuda checkpoint=PATH method_cfg.K=V protocol_cfg.P.K=V")
    return "\n".join(lines)


def _paper_needs(method: str) -> str:
    """The method class's ``paper_needs`` text ("" when it declares none or is not registered)."""
    try:
        return get_method(method).paper_needs
    except UnknownNameError:
        return ""
