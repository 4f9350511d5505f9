"""Every command shown in README.md's fenced blocks is run here, as written where it is cheap, and
through the same code path in a no-work mode where it is not.

``./reproduce.sh X`` is run as the command ``reproduce.sh`` executes for ``X`` (its ``case``
statement: ``--help`` -> ``evaluators.run --list``, ``METHOD DATASET`` -> ``evaluators.run
--experiment``, ...), not through the script, whose first step may bootstrap ``.venv``.

- cheap commands run for real: ``--help``/``--list``, a ``METHOD DATASET --help``, the synthetic
  manifest, ``leaderboards --check`` (the ``python -m leaderboards`` path without writing),
  ``lock.py check --offline``, ``methods new --dir`` (into a temporary folder);
- a run, sweep or ``--estimate`` probe is composed with ``--cfg job`` (the runner's own
  compose-and-validate path: a wrong key, group or experiment fails there, nothing trains);
- a command with a ``--help`` of its own (the demo, pytest collection, bf16 drift, tensorboard,
  torchrun, the lock compiler) is checked by it, the shell scripts by ``bash -n``;
- the Python block is compiled and its call bound to the function's signature;
- the lines of a "Score your own model" block (manifest, the script fed on stdin, score) are run
  verbatim, the block as a whole, by ``test_score_readme.py``; here each is only found there;
- a command the README shows twice is run once (:func:`_run_once`);
- the no-work checks of the runner (``--cfg job``, ``--help``) of one block's exports run in one
  interpreter, each through the entry module's ``main`` as ``python -m evaluators.run`` calls it,
  with its own exit code and output (:func:`_run_parse_batch`): each separate start paid ~3 CPU-s
  of imports to print one config. ``--list`` and the other commands run as written still start
  ``python -m evaluators.run`` themselves.

A README command no rule knows fails :func:`test_every_readme_command_has_a_rule`: a new command
needs its check here.
"""

from __future__ import annotations

import ast
import inspect
import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.runner.test_score_readme import BLOCKS as SCORE_README_BLOCKS

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PY = sys.executable
PREFIXES = ("./reproduce.sh", ".venv/bin/", ".ci/", "benchmarks/", "export ")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


@dataclass(frozen=True)
class Command:
    line: int
    text: str
    env: tuple[tuple[str, str], ...]  # from an ``export`` earlier in the same block


def readme_blocks(text: str) -> list[tuple[int, str, str]]:
    return [(text[:m.start()].count("\n") + 1, m.group(1), m.group(2)) for m in FENCE.finditer(text)]


HEREDOC = re.compile(r"<<-?\s*'?(\w+)'?")


def _logical_lines(body: str) -> list[tuple[int, str]]:
    """Lines with ``\\`` continuations joined and ``#`` comments dropped (none of the commands
    quotes a ``#``); a here-document's body belongs to its command, not a command of its own."""
    out, buf, start, heredoc_end = [], "", 0, None
    for i, raw in enumerate(body.splitlines()):
        if heredoc_end is not None:
            heredoc_end = None if raw.strip() == heredoc_end else heredoc_end
            continue
        if not buf and (m := HEREDOC.search(raw)):
            heredoc_end = m.group(1)
        if not buf:
            start = i
        buf += raw.rstrip("\\").rstrip() + " " if raw.rstrip().endswith("\\") else raw
        if raw.rstrip().endswith("\\"):
            continue
        line = buf.split(" #")[0].strip() if not buf.lstrip().startswith("#") else ""
        if line:
            out.append((start, line))
        buf = ""
    return out


def readme_commands(text: str) -> list[Command]:
    """Shell commands of every ``bash`` block, and of the unlabelled blocks made only of commands."""
    cmds = []
    for line0, lang, body in readme_blocks(text):
        lines = _logical_lines(body)
        if lang not in ("bash", "sh", "") or not lines:
            continue
        if lang == "" and not all(line.startswith(PREFIXES) for _, line in lines):
            continue  # a file tree or output, not commands
        env: dict[str, str] = {}
        for i, line in lines:
            if line.startswith("export "):
                for kv in shlex.split(line)[1:]:
                    k, _, v = kv.partition("=")
                    env[k] = v
                continue
            cmds.append(Command(line0 + 1 + i, line, tuple(env.items())))
    return cmds


def _argv(cmd: Command) -> list[str]:
    expanded = os.path.expandvars(cmd.text) if not cmd.env else cmd.text
    for k, v in cmd.env:  # the block's own exports first
        expanded = expanded.replace(f"${k}", v)
    # ``[runs_dir=runs]``: an optional argument in the usage notation: check it as given
    return [a.strip("[]") for a in shlex.split(expanded)]


def _sweep_to_job(args: list[str]) -> list[str]:
    """``-m seed=0,1,2``: the first job of the sweep; a launcher override stays (hydra composes it)."""
    out = []
    for a in args:
        if a in ("-m", "--multirun"):
            continue
        k, eq, v = a.partition("=")
        out.append(f"{k}={v.split(',')[0]}" if eq and "," in v and not v.startswith("[") else a)
    return out


def plan(cmd: Command, tmp: Path) -> tuple[str, list[str]]:
    """(kind, argv) that checks ``cmd``: kind ``run`` (as written), ``parse`` (same path, no work)."""
    a = _argv(cmd)
    if a[0] == "./reproduce.sh":
        sub, rest = a[1], a[2:]
        if sub == "--help":
            return "run", [PY, "-m", "evaluators.run", "--list"]
        if sub == "demo":
            return "parse", [PY, "-m", "evaluators.run", "--demo", *rest, "--help"]
        if sub == "test":  # reproduce.sh turns its own --fast into pytest's -m "not slow"
            rest = [x for r in rest for x in (["-m", "not slow"] if r == "--fast" else [r])]
            return "parse", [PY, "-m", "pytest", *rest, "--collect-only", "-q", "-p", "no:cacheprovider",
                             "tests/core"]
        if sub == "lock":
            return "parse", [PY, "requirements/lock.py", "compile", *rest, "--help"]
        if sub in ("manifest", "score") and any(cmd.text == line for block in SCORE_README_BLOCKS
                                                for _, line in _logical_lines(block)):
            return "elsewhere", []  # a line of a block that test_score_readme.py runs verbatim
        if sub == "manifest" and "scale=smoke" in rest:
            rest = [str(tmp / "m.json") if prev == "--out" else x for prev, x in zip(["", *rest], rest)]
            return "run", [PY, "-m", "evaluators.run", "--manifest", *rest]
        if sub in ("manifest", "score", "export") and rest[:1] == ["PROTOCOL"]:  # the usage line
            return "parse", [PY, "-m", "evaluators.run", f"--{sub}", "--help"]
        if sub in ("manifest", "score", "export"):
            return "names", [sub, *rest]
        if "--help" in rest:
            return "run", [PY, "-m", "evaluators.run", "--experiment", sub, *rest]
        if "--estimate" in rest and any(x.startswith("--estimate-from=") for x in rest):
            src = next(x.split("=", 1)[1] for x in rest if x.startswith("--estimate-from="))
            if (ROOT / src).exists():
                return "run", [PY, "-m", "evaluators.run", "--experiment", sub, *rest]
        rest = [x for x in rest if x != "--estimate" and not x.startswith("--estimate-from=")]
        return "parse", [PY, "-m", "evaluators.run", "--experiment", sub, *_sweep_to_job(rest), "--cfg", "job"]
    if a[0] == ".venv/bin/python" and a[1:2] == ["-"]:
        # a script fed on stdin: the score section's examples, run verbatim by test_score_readme.py
        return "elsewhere", []
    if a[0] == ".venv/bin/python":
        if a[1:3] == ["-m", "leaderboards"] and len(a) == 3:
            return "run", [PY, "-m", "leaderboards", "--check"]
        if a[1] == "requirements/lock.py" and a[2:] == ["check"]:
            return "run", [PY, "requirements/lock.py", "check", "--offline"]
        if a[1:3] == ["-m", "methods"] and a[3] == "new":
            rest = [x for prev, x in zip(["", *a[4:]], a[4:]) if prev != "--dir" and x != "--dir"]
            (tmp / "plugin").mkdir(exist_ok=True)
            return "run", [PY, "-m", "methods", "new", *rest, "--dir", str(tmp / "plugin")]
        if a[1:3] == ["-m", "evaluators.runner.estimate"]:  # every experiment probed: minutes
            return "parse", [PY, "-c", "import evaluators.runner.estimate as e; "
                                       "assert [x for x in e.list_configs('experiment') if 'synth' not in x]"]
        if a[1:3] == ["-m", "evaluators.runner.gallery"]:  # the same export, of no records, into tmp
            (tmp / "records").mkdir(exist_ok=True)
            return "run", [PY, "-m", "evaluators.runner.gallery", "--records", str(tmp / "records"),
                           "--out", str(tmp / "lb"), *(x for x in a[3:] if x == "--merge")]
        if a[1:3] == ["-m", "leaderboards.screenshot"]:  # a browser run: its own test draws one
            return "parse", [PY, "-m", "leaderboards.screenshot", "--help"]
        if a[1:3] == ["-m", "benchmarks.bf16_drift"]:
            return "parse", [PY, "-m", "benchmarks.bf16_drift", "--help"]
    if a[0] == ".venv/bin/pytest":
        rest = [f"--benchmark-json={tmp / 'b.json'}" if x.startswith("--benchmark-json=") else x for x in a[1:]]
        return "parse", [PY, "-m", "pytest", *rest, "--collect-only", "-q", "-p", "no:cacheprovider"]
    if a[0] == ".venv/bin/torchrun":
        module = a[a.index("-m") + 1:]
        return "parse", [PY, "-m", module[0], *module[1:], "--cfg", "job"]
    if a[0] == ".venv/bin/tensorboard":
        return "parse", [str(ROOT / ".venv" / "bin" / "tensorboard"), "--helpfull"]
    if a[0] in (".ci/run", "benchmarks/gpu_check.sh"):
        return "parse", ["bash", "-n", a[0]]
    return "unknown", a


COMMANDS = readme_commands(README.read_text(encoding="utf-8"))
SCORE_BLOCKS = SCORE_README_BLOCKS  # the blocks test_score_readme.py runs verbatim


def test_the_readme_shows_commands():
    assert len(COMMANDS) >= 20


def test_every_readme_command_has_a_rule(tmp_path):
    unknown = [c.text for c in COMMANDS if plan(c, tmp_path)[0] == "unknown"]
    assert not unknown, f"README commands with no check in this test: {unknown}"


def test_no_bare_python_in_the_readme():
    """``.venv/bin/python`` everywhere: a bare ``python`` may be another interpreter without the lock."""
    text = README.read_text(encoding="utf-8")
    bare = [m.group(0) for m in re.finditer(r"(?<![/\w.])python -m [\w.]+", text)]
    assert not bare, bare
    assert not re.search(r"(?m)^tensorboard ", text), "tensorboard: use .venv/bin/tensorboard"


def test_every_image_the_readme_shows_is_committed():
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", README.read_text(encoding="utf-8"))
    assert images
    for rel in images:
        assert (ROOT / rel).is_file() and (ROOT / rel).stat().st_size > 0, rel


def _check_names(args: list[str]) -> None:
    """``manifest|score|export PROTOCOL DATASET ...`` on data not here: the names must resolve."""
    from evaluators.protocols import list_protocols
    from evaluators.runner.names import experiments_by_method

    protocol, dataset = args[1], args[2]
    assert protocol in list_protocols(), protocol
    known = {d.replace("_", "-") for ds in experiments_by_method().values() for d in ds} | {
        d for ds in experiments_by_method().values() for d in ds}
    assert dataset in known, f"{dataset}: not a dataset any experiment names ({sorted(known)})"


# a command the README shows twice (in two sections) is run once: (argv, exports) -> its result
_RESULTS: dict[tuple, subprocess.CompletedProcess] = {}


def _env(exports: tuple[tuple[str, str], ...]) -> dict[str, str]:
    env = {**os.environ, **dict(exports), "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    for k in ("MOTIONREPRO_PLUGINS", "MOTIONREPRO_CONFIG_PATH"):  # the plugin example's folder is not here
        env.pop(k, None)
    return env


def _batched(kind: str, argv: list[str]) -> bool:
    """A no-work check of the runner (``parse``): run with the others of its block, in one interpreter."""
    return kind == "parse" and argv[:3] == [PY, "-m", "evaluators.run"]


# runs each command's arguments through the entry module's main, as ``python -m evaluators.run``
# does, with its own stdout/stderr and exit code; the runner's logging goes to the real stderr
PARSE_BATCH = r"""
import contextlib, io, json, logging, sys, traceback
logging.basicConfig(level=logging.INFO, format="[%(asctime)s %(name)s] %(message)s")
from evaluators.run import main
results = []
for args in json.loads(sys.stdin.read()):
    out, err, code = io.StringIO(), io.StringIO(), 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(args)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else int(e.code is not None)
        except Exception:
            traceback.print_exc()
            code = 1
    results.append({"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()})
print(json.dumps(results))
"""


def _run_parse_batch(exports: tuple[tuple[str, str], ...], tmp: Path) -> None:
    """Every README no-work runner check made with ``exports``, in one interpreter, into ``_RESULTS``."""
    jobs = []
    for c in COMMANDS:
        kind, argv = plan(c, tmp)
        if c.env == exports and _batched(kind, argv):
            jobs.append(argv)
    jobs = list(dict.fromkeys(map(tuple, jobs)))
    res = subprocess.run([PY, "-c", PARSE_BATCH], input=json.dumps([list(a[3:]) for a in jobs]), cwd=ROOT,
                         env=_env(exports), capture_output=True, text=True, timeout=600)
    try:
        results = json.loads(res.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):  # the interpreter itself failed: every command of the batch fails with it
        results = [{"code": res.returncode or 1, "stdout": res.stdout, "stderr": res.stderr}] * len(jobs)
    for argv, r in zip(jobs, results, strict=True):
        key = (tuple(a.replace(str(tmp), "<tmp>") for a in argv), exports)
        _RESULTS[key] = subprocess.CompletedProcess(list(argv), r["code"], r["stdout"], r["stderr"])


def _run_once(kind: str, argv: list[str], exports: tuple[tuple[str, str], ...],
              tmp: Path) -> subprocess.CompletedProcess:
    """Run ``argv`` (with the block's ``exports``), or return the result of the same command run
    earlier in this module: the same arguments, ``tmp`` (the test's own folder) aside, and the
    same exports (one pytest worker runs the whole module under ``--dist loadscope``)."""
    key = (tuple(a.replace(str(tmp), "<tmp>") for a in argv), exports)
    if key not in _RESULTS and _batched(kind, argv):
        _run_parse_batch(exports, tmp)
    if key not in _RESULTS:
        _RESULTS[key] = subprocess.run(argv, cwd=ROOT, env=_env(exports), capture_output=True, text=True,
                                       timeout=600)
    return _RESULTS[key]


@pytest.mark.slow
@pytest.mark.parametrize("cmd", COMMANDS, ids=[f"L{c.line}" for c in COMMANDS])
def test_readme_command(cmd: Command, tmp_path):
    kind, argv = plan(cmd, tmp_path)
    assert kind != "unknown", cmd.text
    if kind == "elsewhere":
        assert any(cmd.text in block for block in SCORE_BLOCKS), f"README line {cmd.line}: {cmd.text} is run by no test"
        return
    if kind == "names":
        _check_names(argv)
        return
    res = _run_once(kind, argv, cmd.env, tmp_path)
    assert res.returncode == 0, f"README line {cmd.line}: {cmd.text}\n-> {argv}\n{res.stderr[-3000:]}"
    if kind == "run" and argv[-1] == "--list":
        assert "Methods" in res.stdout


def test_the_python_block_compiles_and_binds():
    import evaluators.score as score

    blocks = [(line, body) for line, lang, body in readme_blocks(README.read_text(encoding="utf-8"))
              if lang == "python"]
    assert blocks
    for line, body in blocks:
        tree = ast.parse(body, f"README.md:{line}")
        compile(tree, f"README.md:{line}", "exec")
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "text2motion"]
        assert calls, f"README.md:{line}: the block no longer calls text2motion; update this check"
        for call in calls:
            inspect.signature(score.text2motion).bind(*[None] * len(call.args),
                                                      **{k.arg: None for k in call.keywords})
