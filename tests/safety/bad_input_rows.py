"""Shared pieces of the bad-input table (``test_bad_inputs_table.py`` and its dataset rows in
``bad_input_dataset_rows.py``): a registry decorator for rows and a pickle payload that would run code."""

from __future__ import annotations

from pathlib import Path


def registrar(cases: dict):
    """A ``@case(name)`` decorator that adds a row builder to ``cases`` (a name may appear once)."""
    def case(name):
        def deco(fn):
            assert name not in cases
            cases[name] = fn
            return fn
        return deco
    return case


class Evil:
    """Unpickling it writes ``marker``: a loader that unpickles untrusted data would leave the file behind."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "ran"))
