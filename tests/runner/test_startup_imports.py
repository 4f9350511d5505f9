"""A command-line start-up imports what its command needs, not every method's dependencies.

Every ``python -m evaluators.run`` pays its imports before it does anything (the tests start
dozens of them, a user one per command). A command about no method (``--manifest``, ``--score``,
an argument error) imports no method folder, a lookup of one method imports that method's folder
(not all of them: diffusers, which the diffusion methods import, pulls in ``torch._dynamo``), and
the modules every start-up imports leave ``scipy.stats`` and ``scipy.io`` to the paths that use
them. Planning a run (``--cfg job``, ``--estimate``, the dry runs) imports the method's folder but not
diffusers (about 1.7 CPU-s: it pulls in ``torch._dynamo`` and sympy), which only building a
scheduler or a timestep embedding needs; ``python -m methods --help`` / ``new`` and
``python -m leaderboards`` import no torch at all. Checked in a fresh interpreter (this one has
imported everything already).
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


# what a start-up that only plans or reads files must not import: diffusers pulls in torch._dynamo
# and sympy; torch itself costs more than one CPU-second
PLAN_PROBE = r"""
import json, sys
from pathlib import Path
from evaluators.runner.compose import compose
from evaluators.runner.plan import build_plan
from methods.registry import method_names
names = set(method_names())
first = {}  # one synthetic experiment per method: planned, never run
for p in sorted(Path("configs/experiment").glob("*_synth-*.yaml")):
    method = p.stem.rsplit("_", 1)[0]
    if method in names:
        first.setdefault(method, p.stem)
for exp in first.values():
    overrides = [f"+experiment={exp}"]
    build_plan(compose(overrides), overrides, check_data=False)
print(json.dumps(sorted(sys.modules)))
"""


def _modules_after(code: str) -> set[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MOTIONREPRO_PLUGINS", "MOTIONREPRO_CONFIG_PATH")}
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**env, "PYTHONPATH": str(REPO)},
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return set(json.loads(res.stdout.strip().splitlines()[-1]))


def test_planning_every_method_imports_no_diffusers():
    got = _modules_after(PLAN_PROBE)
    planned = [n for n in method_names() if f"methods.{n}" in got]
    assert {"mld", "macdiff", "diffusionpose"} <= set(planned), planned  # the methods that use diffusers
    heavy = [m for m in ("diffusers", "torch._dynamo", "sympy") if m in got]
    assert not heavy, f"planning a run now imports {heavy}"


@pytest.mark.parametrize("module,args", [("methods", ["--help"]), ("methods", ["new", "toy", "--dir", "{tmp}"]),
                                         ("leaderboards", ["--check"])])
def test_command_lines_that_read_files_import_no_torch(module, args, tmp_path):
    """``methods new`` checks the new name against the method NAMES, importing no method folder."""
    argv = [module, *(a.format(tmp=tmp_path) for a in args)]
    code = (f"import json, runpy, sys\nsys.argv = {argv!r}\n"
            f"try:\n    runpy.run_module('{module}', run_name='__main__')\nexcept SystemExit as e:\n"
            f"    assert not e.code, e.code\nprint(json.dumps(sorted(sys.modules)))")
    got = _modules_after(code)
    assert f"{module}.__main__" in got or module in got
    assert "torch" not in got, f"python -m {' '.join(argv)} now imports torch"
