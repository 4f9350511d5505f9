"""Outside code that registers methods, datasets or protocols: ``$MOTIONREPRO_PLUGINS``.

Every registry imports the plugins before it answers a lookup, so an outside method folder
(``MOTIONREPRO_PLUGINS=my_pkg.my_method``, ``:``- or ``,``-separated) is found by the runner,
the demo, the benchmarks and ``python -m methods`` alike.
"""

from __future__ import annotations

import importlib
import os


def plugin_modules() -> list[str]:
    """Module names listed in ``$MOTIONREPRO_PLUGINS``."""
    return [m.strip() for m in os.environ.get("MOTIONREPRO_PLUGINS", "").replace(",", ":").split(":") if m.strip()]


def load_plugins() -> None:
    """Import every plugin module (a module already imported is not run again)."""
    for mod in plugin_modules():
        importlib.import_module(mod)
