"""Name lookup shared by every registry (methods, datasets, protocols): one error, one message."""

from __future__ import annotations

import difflib


class UnknownNameError(KeyError):
    """An unknown registry name; the message lists close matches and all names."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


def unknown_name_message(kind: str, name: str, known: list[str]) -> str:
    """One line naming the close matches and the available names (shared by all registries)."""
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    hint = f" did you mean {', '.join(close)}?" if close else ""
    return f"unknown {kind} {name!r};{hint} available: {', '.join(sorted(known))}"
