"""The runner's modules: imports at module level only, and no import loop between them (STYLE/DESIGN
layer rules: an import hidden in a function must not dodge a loop)."""

from __future__ import annotations

import ast
from pathlib import Path

RUNNER = Path(__file__).resolve().parents[2] / "evaluators" / "runner"
# the command-line modules split out of run.py; estimate.py and experiment_help.py keep their optional imports
SPLIT = ("names", "compose", "plan", "execute", "finish", "cli", "run", "demo")


def _imports(tree: ast.AST) -> list[ast.stmt]:
    return [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]


def test_no_import_inside_a_function():
    for name in SPLIT:
        tree = ast.parse((RUNNER / f"{name}.py").read_text())
        inner = [f"{name}.py:{i.lineno}" for fn in ast.walk(tree)
                 if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)) for i in _imports(fn)]
        assert not inner, inner


def test_runner_modules_import_no_loop():
    graph: dict[str, set[str]] = {}
    for path in RUNNER.glob("*.py"):
        deps = set()
        for i in _imports(ast.parse(path.read_text())):
            mods = [a.name for a in i.names] if isinstance(i, ast.Import) else [i.module or ""]
            deps |= {m.split(".")[2] for m in mods if m.startswith("evaluators.runner.")}
        graph[path.stem] = deps
    assert graph["run"] >= {"cli", "plan", "execute"}  # the graph was read (run.py re-exports them)
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in graph.get(node, ()):
            assert state.get(dep) != 1, " -> ".join([*stack, node, dep])
            if dep not in state:
                visit(dep, [*stack, node])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [])
