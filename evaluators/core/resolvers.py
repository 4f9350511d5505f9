"""OmegaConf resolvers the hydra tree uses: :func:`register_resolvers` must run before hydra composes.

``${motionrepro.unique:}`` is a token unique to the running process (``<pid>-<random>``), the same
every time it is resolved in that process. ``configs/run.yaml`` puts it in ``hydra.run.dir`` and
``hydra.sweep.dir``: with ``${now:%H-%M-%S}`` alone, two runs started in the same second (a sweep
script, two shells, a CI matrix) shared one hydra output folder and wrote each other's logs.
"""

from __future__ import annotations

import os
import secrets

from omegaconf import OmegaConf

UNIQUE = "motionrepro.unique"
_TOKENS: dict[int, str] = {}  # pid -> token: a forked child gets its own


def unique_token() -> str:
    """``<pid>-<8 hex digits>``, fixed for the life of this process (a fork gets a new one)."""
    pid = os.getpid()
    if pid not in _TOKENS:
        _TOKENS[pid] = f"{pid}-{secrets.token_hex(4)}"
    return _TOKENS[pid]


def register_resolvers() -> None:
    """Register the suite's resolvers with OmegaConf (idempotent; call before hydra composes)."""
    if not OmegaConf.has_resolver(UNIQUE):
        OmegaConf.register_new_resolver(UNIQUE, unique_token)
