"""The layers of DESIGN.md hold: imports run one way, no loop, no project import hidden in a function.

`lint-imports` checks the contracts in pyproject.toml ([tool.importlinter]); these tests run it,
show that it catches a planted back-edge, and check with grimp (the graph library import-linter
is built on) that the whole import graph, function-level imports included, has no cycle.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("evaluators", "methods", "leaderboards", "benchmarks")


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(root))
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))"
    return subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True,
                          timeout=300)


def _copy_project(dst: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for pkg in PACKAGES:
        shutil.copytree(REPO / pkg, dst / pkg, ignore=ignore)
    shutil.copy(REPO / "pyproject.toml", dst / "pyproject.toml")
    return dst


def test_the_layer_contracts_hold():
    out = _lint_imports(REPO)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


@pytest.mark.parametrize("planted, source, target", [
    # an evaluator module importing a concrete method
    ("evaluators/metrics/_planted.py", "evaluators.metrics._planted", "methods.mld"),
    # the ground floor importing a layer above it
    ("evaluators/core/_planted.py", "evaluators.core._planted", "evaluators.records"),
    # a method importing a protocol
    ("methods/mld/_planted.py", "methods.mld._planted", "evaluators.protocols"),
    # the leaderboards importing the runner
    ("leaderboards/_planted.py", "leaderboards._planted", "evaluators.runner"),
])
def test_a_planted_back_edge_is_caught(tmp_path, planted, source, target):
    root = _copy_project(tmp_path)
    (root / planted).write_text(f"import {target}  # noqa: F401\n")
    out = _lint_imports(root)
    assert out.returncode != 0, out.stdout[-3000:]
    assert "BROKEN" in out.stdout and source in out.stdout, out.stdout[-3000:]


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (components of more than one module)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    comps: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        comps.append(sorted(comp))
    return comps


def test_strongly_connected_finds_a_planted_loop():
    assert _strongly_connected({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _strongly_connected({"a": {"b"}, "b": set()}) == []


def test_no_import_loop_anywhere():
    """Every import counts, those inside functions too, so a loop cannot hide in a function."""
    sys.path.insert(0, str(REPO))
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    assert _strongly_connected(edges) == []


def _function_level_imports(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    lines = path.read_text().splitlines()
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mod = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                if isinstance(node, ast.ImportFrom) and node.level:
                    mod = "."  # a relative import is always the project's
                here = lines[node.lineno - 1]
                above = lines[node.lineno - 2] if node.lineno > 1 else ""
                yield node.lineno, mod or "", "lazy:" in here or "lazy:" in above


def _project_files():
    for pkg in PACKAGES:
        yield from sorted((REPO / pkg).rglob("*.py"))


def test_no_project_import_inside_a_function():
    """Imports of the project sit at module level; a loop is broken by moving code, not imports."""
    bad = [f"{p.relative_to(REPO)}:{line} imports {mod}" for p in _project_files()
           for line, mod, _ in _function_level_imports(p)
           if mod == "." or mod.split(".")[0] in PACKAGES]
    assert bad == [], "\n".join(bad)


def test_every_function_level_import_says_why():
    """What stays inside a function is an optional or heavy dependency, with a `# lazy: why` comment."""
    bad = [f"{p.relative_to(REPO)}:{line} imports {mod} without a '# lazy: <why>' comment"
           for p in _project_files() for line, mod, has_reason in _function_level_imports(p) if not has_reason]
    assert bad == [], "\n".join(bad)
