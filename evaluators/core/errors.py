"""The error a user can fix by correcting an input file, shared by every layer that reads one.

Defined on the ground floor so that safe loading (:mod:`evaluators.core.safe_load`) and the
dataset loaders raise one class, which the runner and ``inspect`` turn into exit 2.
"""

from __future__ import annotations

import os


class DatasetError(Exception):
    """Bad or missing dataset input. The message names the file and what is wrong."""

    def __init__(self, message: str, path: str | os.PathLike | None = None) -> None:
        self.path = str(path) if path is not None else None
        super().__init__(f"{self.path}: {message}" if self.path and self.path not in message else message)
