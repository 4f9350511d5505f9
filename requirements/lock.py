"""Pinned installs: compile, check and describe the lock files.

``pyproject.toml`` keeps ranges (the suite stays installable as a library); the lock files pin
every package, transitive ones included, with hashes, for one interpreter and platform
(CPython 3.11, x86_64 manylinux), compiled by ``uv pip compile``:

- ``requirements/cpu.lock``  - torch's CPU wheel (``torch==2.13.0+cpu``, ``requirements/torch-cpu.txt``)
- ``requirements/cuda.lock`` - PyPI's CUDA build of torch and its nvidia-* runtime wheels

Commands (``./reproduce.sh lock`` runs ``compile``; ``.ci/run`` runs ``check``)::

    python requirements/lock.py compile [--upgrade]   # rewrite both locks (keeps current pins unless --upgrade)
    python requirements/lock.py check                 # fail when pyproject.toml and a lock disagree

``check`` is two tests: (1) every requirement of pyproject.toml (``dependencies`` + the ``dev``
extra) is pinned in each lock at a version its specifier admits, and nothing is pinned twice;
(2) recompiling from pyproject.toml with the current lock as the seed reproduces the lock
byte for byte (uv keeps existing pins, so only a pyproject change can alter the result).
(2) needs the package index; ``--offline`` skips it.

Only the standard library and ``packaging`` (a dependency of pip's vendored tree, and of the
project's own lock) are used, so the check runs before the venv exists.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYTHON_VERSION = "3.11"
PLATFORM = "x86_64-manylinux_2_28"
LOCAL_WHEELS = Path(os.environ.get("MOTIONREPRO_WHEELS", "/opt/wheels"))  # where this workplace keeps torch's CPU wheel
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
LOCKS = {"cpu": HERE / "cpu.lock", "cuda": HERE / "cuda.lock"}
OVERRIDES = {"cpu": HERE / "torch-cpu.txt", "cuda": HERE / "torch-cuda.txt"}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)")


def _uv() -> str:
    for cand in (shutil.which("uv"), str(Path(sys.executable).parent / "uv")):
        if cand and Path(cand).exists():
            return cand
    raise SystemExit("lock: `uv` not found (pip install uv, or ./reproduce.sh bootstrap installs it with the dev extra)")


def compile_args(kind: str, output: Path) -> list[str]:
    """The one ``uv pip compile`` command line of a lock (also the header written into it)."""
    args = [_uv(), "pip", "compile", "--quiet", str(ROOT / "pyproject.toml"), "--extra", "dev", "--generate-hashes",
            "--python-version", PYTHON_VERSION, "--python-platform", PLATFORM,
            "--override", str(OVERRIDES[kind]), "--custom-compile-command", "./reproduce.sh lock",
            "--no-annotate", "-o", str(output)]
    if kind == "cpu":
        if any(LOCAL_WHEELS.glob("torch-*+cpu-*.whl")):
            args += ["--find-links", str(LOCAL_WHEELS)]
        else:
            args += ["--extra-index-url", TORCH_CPU_INDEX, "--index-strategy", "unsafe-best-match"]
    return args


def compile_locks(upgrade: bool = False, kinds=("cpu", "cuda")) -> None:
    for kind in kinds:
        args = compile_args(kind, LOCKS[kind]) + (["--upgrade"] if upgrade else [])
        print("lock:", " ".join(args[1:]), flush=True)
        subprocess.run(args, check=True, cwd=ROOT)


def read_pins(path: Path) -> dict[str, str]:
    """``{normalised name: version}`` of a lock; a name pinned twice is an error."""
    from packaging.utils import canonicalize_name

    pins: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        m = PIN.match(line)
        if m:
            name = canonicalize_name(m.group(1))
            if name in pins:
                raise SystemExit(f"{path}: {name} is pinned twice")
            pins[name] = m.group(3)
    if not pins:
        raise SystemExit(f"{path}: no pins found (not a lock file?)")
    return pins


def project_requirements() -> list[str]:
    import tomllib

    proj = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return list(proj["dependencies"]) + list(proj.get("optional-dependencies", {}).get("dev", []))


def check_consistent(kind: str) -> list[str]:
    """Problems with lock ``kind`` against pyproject.toml (empty when consistent)."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    path = LOCKS[kind]
    if not path.exists():
        return [f"{path} is missing: run ./reproduce.sh lock"]
    pins = read_pins(path)
    problems = []
    for spec in project_requirements():
        req = Requirement(spec)
        if req.marker is not None and not req.marker.evaluate({"python_version": PYTHON_VERSION}):
            continue
        name = canonicalize_name(req.name)
        if name not in pins:
            problems.append(f"{path.name}: {req.name} (pyproject: {spec!r}) is not pinned")
        elif not req.specifier.contains(Version(pins[name]), prereleases=True):
            problems.append(f"{path.name}: {req.name}=={pins[name]} does not satisfy pyproject's {spec!r}")
    return problems


def check_recompile(kind: str) -> list[str]:
    """Recompile into a copy of the lock; any difference means pyproject.toml changed since."""
    path = LOCKS[kind]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / path.name
        shutil.copy(path, out)
        res = subprocess.run(compile_args(kind, out), cwd=ROOT, capture_output=True, text=True)
        if res.returncode != 0:
            return [f"{path.name}: `uv pip compile` failed:\n{res.stderr.strip()}"]
        old, new = path.read_text(encoding="utf-8"), out.read_text(encoding="utf-8")
    if old == new:
        return []
    diff = "".join(list(difflib.unified_diff(old.splitlines(True), new.splitlines(True), str(path), "recompiled"))[:40])
    return [f"{path.name} is stale against pyproject.toml (run ./reproduce.sh lock):\n{diff}"]


def lock_info(kind: str | None = None) -> dict:
    """What a run record's environment block says about the lock: file, sha256, and whether the
    installed versions equal the locked ones (names of any that differ)."""
    from importlib import metadata

    from packaging.utils import canonicalize_name

    if kind is None:
        marker = Path(sys.prefix) / ".motionrepro-lock"  # written by ./reproduce.sh bootstrap
        kind = os.environ.get("MOTIONREPRO_LOCK") or (marker.read_text().strip() if marker.exists() else "")
    if kind not in LOCKS:
        return {"lock": None, "note": f"installed without a lock ({kind or 'no bootstrap marker'})"}
    path = LOCKS[kind]
    if not path.exists():
        return {"lock": str(path.relative_to(ROOT)), "note": "lock file missing"}
    pins = read_pins(path)
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in metadata.distributions()
                 if d.metadata["Name"]}
    differ = sorted(n for n, v in pins.items() if n in installed and installed[n] != v)
    return {"lock": str(path.relative_to(ROOT)), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "matches_installed": not differ, "differs": differ}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="requirements/lock.py", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compile", help="rewrite the lock files")
    c.add_argument("--upgrade", action="store_true", help="re-resolve to the newest versions the ranges admit")
    c.add_argument("--kind", choices=sorted(LOCKS), action="append")
    k = sub.add_parser("check", help="fail when pyproject.toml and a lock disagree")
    k.add_argument("--offline", action="store_true", help="skip the recompile comparison (needs the index)")
    args = p.parse_args(argv)
    if args.cmd == "compile":
        compile_locks(args.upgrade, tuple(args.kind or LOCKS))
        return 0
    problems = []
    for kind in LOCKS:
        problems += check_consistent(kind)
        if not problems and not args.offline:
            problems += check_recompile(kind)
    for msg in problems:
        print("lock check:", msg, file=sys.stderr)
    if not problems:
        print("lock check: requirements/cpu.lock and requirements/cuda.lock agree with pyproject.toml")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
