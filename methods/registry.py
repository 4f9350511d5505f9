"""Method registry: one decorator per method class, looked up by name.

Every method package under ``methods/`` registers its entry class with
``@register_method("<folder name>")``; ``methods/__init__.py`` imports every
subpackage so the decorators run (a test checks no folder is forgotten).
"""

from __future__ import annotations

import difflib

_METHODS: dict[str, type] = {}


class UnknownNameError(KeyError):
    """An unknown registry name; the message lists close matches and all names."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


def unknown_name_message(kind: str, name: str, known: list[str]) -> str:
    """One line naming the close matches and the available names (shared by all registries)."""
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f" did you mean {', '.join(close)}?" if close else ""
    return f"unknown {kind} {name!r};{hint} available: {', '.join(sorted(known))}"


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
    try:
        return _METHODS[name]
    except KeyError:
        raise UnknownNameError(unknown_name_message("method", name, list(_METHODS))) from None


def list_methods(include_testing: bool = False) -> list[str]:
    """Sorted names of registered methods (test-only methods hidden unless asked)."""
    return sorted(n for n, c in _METHODS.items() if include_testing or not getattr(c, "testing_only", False))
