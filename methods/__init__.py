"""Registered methods. Importing this package imports every method subpackage."""

import importlib
import pkgutil
from pathlib import Path

import evaluators  # noqa: F401  (sets OpenMP wait policy / threads before torch loads: evaluators/threads.py)
from methods.registry import get_method, list_methods, register_method

_SKIP = {"common", "base", "registry"}

for _mod in pkgutil.iter_modules([str(Path(__file__).parent)]):
    if _mod.ispkg and _mod.name not in _SKIP and not _mod.name.startswith("_"):
        importlib.import_module(f"methods.{_mod.name}")

__all__ = ["get_method", "list_methods", "register_method"]
