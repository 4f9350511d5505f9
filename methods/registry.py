"""Method registry: one decorator per method class, looked up by name.

Every method package under ``methods/`` registers its entry class with
``@register_method("<folder name>")``; the first lookup imports every method
folder and the ``$MOTIONREPRO_PLUGINS`` modules so the decorators run (a test checks no folder is forgotten).
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from evaluators.core.names import UnknownNameError, unknown_name_message
from evaluators.core.plugins import load_plugins

_METHODS: dict[str, type] = {}


def register_method(name: str):
    """Class decorator registering a method under ``name`` (the folder name)."""

    def deco(cls: type) -> type:
        if name in _METHODS and _METHODS[name] is not cls:
            raise KeyError(f"method {name!r} already registered by {_METHODS[name].__module__}")
        cls.registry_name = name
        _METHODS[name] = cls
        return cls

    return deco


def get_method(name: str) -> type:
    """The registered class for ``name``; raises UnknownNameError with suggestions."""
    _import_all()
    try:
        return _METHODS[name]
    except KeyError:
        raise UnknownNameError(unknown_name_message("method", name, list(_METHODS))) from None


def list_methods(include_testing: bool = False) -> list[str]:
    """Sorted names of registered methods (test-only methods hidden unless asked)."""
    _import_all()
    return sorted(n for n, c in _METHODS.items() if include_testing or not getattr(c, "testing_only", False))


# folders of methods/ that hold shared code, not a method
_NOT_METHODS = {"common"}


def _import_all() -> None:
    """Import every method folder and the plugins so their ``@register_method`` decorators run."""
    for mod in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if mod.ispkg and mod.name not in _NOT_METHODS and not mod.name.startswith("_"):
            importlib.import_module(f"methods.{mod.name}")
    load_plugins()


__all__ = ["UnknownNameError", "get_method", "list_methods", "register_method", "unknown_name_message"]
