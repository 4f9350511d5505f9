"""A command-line start-up imports what its command needs, not every method's dependencies.

Every ``python -m evaluators.run`` pays its imports before it does anything (the tests start
dozens of them, a user one per command). A command about no method (``--manifest``, ``--score``,
an argument error) imports no method folder, a lookup of one method imports that method's folder
(not all of them: diffusers, which the diffusion methods import, pulls in ``torch._dynamo``), and
the modules every start-up imports leave ``scipy.stats`` and ``scipy.io`` to the paths that use
them. Checked in a fresh interpreter (this one has imported everything already).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from methods.registry import get_method, method_names, register_method

REPO = Path(__file__).resolve().parents[2]

PROBE = r"""
import json, sys
from evaluators.runner.cli import main
try:
    main(["--score", "--help"])
except SystemExit as e:
    assert not e.code, e.code
after_help = sorted(sys.modules)
from methods.registry import get_method, list_methods, method_names
names = method_names()  # no plugins here: the method folders
get_method(names[0])
after_one = sorted(sys.modules)
print(json.dumps({"after_help": after_help, "after_one": after_one, "names": names,
                  "registered": list_methods(include_testing=True)}))
"""


def _probe() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("MOTIONREPRO_PLUGINS", "MOTIONREPRO_CONFIG_PATH")}
    res = subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, env={**env, "PYTHONPATH": str(REPO)},
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_start_up_imports_no_method_and_one_lookup_one_method():
    got = _probe()
    names = got["names"]
    assert len(names) >= 2
    # each method folder registers its own name: the names are known without importing the folders
    assert names == got["registered"]
    imported = [n for n in names if f"methods.{n}" in got["after_help"]]
    assert not imported, f"--score --help imported method folders {imported}"
    heavy = [m for m in ("diffusers", "scipy.stats", "scipy.io") if m in got["after_help"]]
    assert not heavy, f"every command-line start-up now imports {heavy}"
    one = [n for n in names if f"methods.{n}" in got["after_one"]]
    assert names[0] in one and len(one) < len(names), f"looking up {names[0]!r} imported {one}"


def test_a_plugin_cannot_take_a_built_in_methods_name():
    """Whether or not the built-in folder was imported yet (a lookup imports one folder only)."""
    name = method_names()[0]

    class Impostor:
        pass

    with pytest.raises(KeyError, match="already"):
        register_method(name)(Impostor)
    assert get_method(name) is not Impostor
