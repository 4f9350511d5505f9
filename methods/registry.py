"""Method registry: one decorator per method class, looked up by name.

Every method package under ``methods/`` registers its entry class with
``@register_method("<folder name>")``. A lookup by name imports that method's folder and the
``$MOTIONREPRO_PLUGINS`` modules so the decorators run; a listing, or a name neither a folder nor
a plugin registers, imports every folder (a test checks no folder is forgotten and that each folder registers its own
name). Importing one folder rather than all matters at every command-line start-up: the method
folders pull in their own heavy dependencies (diffusers, for the diffusion methods, imports
``torch._dynamo``: about 1.5 s of CPU), which a command about another method, or about no method
(``--manifest``, ``--score``, an early argument error), does not need.
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
        if name in _folders() and cls.__module__.split(".")[:2] != ["methods", name]:
            # the folder may not be imported yet (a lookup imports one folder): the name is taken all the same
            raise KeyError(f"method {name!r} is already the name of the built-in methods/{name}/")
        cls.registry_name = name
        _METHODS[name] = cls
        return cls

    return deco


def get_method(name: str) -> type:
    """The registered class for ``name``; raises UnknownNameError with suggestions."""
    if name not in _METHODS:  # its own folder, else a plugin's, else every folder
        if name in _folders():
            importlib.import_module(f"methods.{name}")
        load_plugins()
    if name not in _METHODS:
        _import_all()
    try:
        return _METHODS[name]
    except KeyError:
        raise UnknownNameError(unknown_name_message("method", name, list(_METHODS))) from None


def list_methods(include_testing: bool = False) -> list[str]:
    """Sorted names of registered methods (test-only methods hidden unless asked)."""
    _import_all()
    return sorted(n for n, c in _METHODS.items() if include_testing or not getattr(c, "testing_only", False))


def method_names() -> list[str]:
    """Sorted names of every method, test-only ones included, without importing the method folders:
    the folder names (each folder registers its own name) and the names the plugins register."""
    load_plugins()
    return sorted(set(_folders()) | set(_METHODS))


# folders of methods/ that hold shared code, not a method
_NOT_METHODS = {"common"}


def _folders() -> list[str]:
    """The method folders under ``methods/`` (one per built-in method, named after it)."""
    return [mod.name for mod in pkgutil.iter_modules([str(Path(__file__).parent)])
            if mod.ispkg and mod.name not in _NOT_METHODS and not mod.name.startswith("_")]


def _import_all() -> None:
    """Import every method folder and the plugins so their ``@register_method`` decorators run."""
    for name in _folders():
        importlib.import_module(f"methods.{name}")
    load_plugins()


__all__ = ["UnknownNameError", "get_method", "list_methods", "method_names", "register_method", "unknown_name_message"]
