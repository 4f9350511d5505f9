"""Method configs for the MoMask / HGM3 tests: the YAML at paper scale with a test's patch merged in.

The code reads every key from the YAML (no defaults restated in Python), so a test that wants a
small network patches the paper config instead of passing a partial dict.
"""

from __future__ import annotations

from evaluators.core.config import load_config


def paper_cfg(name: str, patch: dict | None = None) -> dict:
    """``configs/method/<name>.yaml`` at paper scale with ``patch`` merged in; ``render.n`` 0
    unless the patch sets it (the tests write no GIFs)."""
    return load_config("method", name, "paper", patch={"render": {"n": 0}, **(patch or {})})
