"""Run records: one JSON file per protocol evaluation, validated on write and on read.

Schema (version 2), following STYLE.md §6 and DESIGN.md "Run records"::

    {
      "schema": 2,
      "method": "macdiff", "dataset": "ntu60_xsub", "split": "test", "protocol": "linear",
      "variant": "pool=joint",                  # "" when the protocol has one result
      "metrics": {"top1": {"value": 84.1, "ci95": null, "higher_is_better": true, "unit": "%"}},
      "n_samples": {"expected": 16487, "evaluated": 16487},
      "data": "real" | "synthetic", "scale": "paper" | "smoke",
      "seed": 0, "git": {"commit": "abc1234", "dirty": false},
      "hardware": {"device": "cpu", "cpu": "...", "gpu": null, "torch": "2.x", "cuda": null,
                   "numerics": {"id": "1bbd5e57ff4b", "threads": 1, "cpu_capability": "AVX512"}},
      "started": "2026-11-22T03:50:00Z", "wall_s": 812.4,
      "config": {...resolved hydra config...},
      "extra": {...protocol-specific: repetitions, sampler settings, ...},
      "provenance": {"evaluator": {"id": "official", "label": "...", "sha256": "..."}, ...},
      "environment": {"packages": {"torch": "2.x", "numpy": "...", "spacy": null, ...}}
    }

``provenance`` (``evaluators/provenance.py``) names what decides whether the number is comparable
with the paper; ``environment`` lists installed package versions (a dict, room for more keys).
Schema-1 records (no provenance, no environment) still read; they are never comparable.

A malformed record raises :class:`RecordError` naming the file; nothing is skipped silently.
"""

from __future__ import annotations

import datetime as _dt
import importlib.util
import json
import logging
import math
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig, ListConfig, OmegaConf
from packaging.utils import canonicalize_name

from evaluators.core.io import write_new_text
from evaluators.core.kernel_numerics import kernel_numerics
from evaluators.metrics.info import metric_info
from evaluators.provenance import ProvenanceError
from evaluators.provenance import validate as validate_provenance

SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)  # schema 1 = before provenance/environment; still read, never comparable
REQUIRED = {
    "schema": int, "method": str, "dataset": str, "split": str, "protocol": str, "variant": str,
    "metrics": dict, "n_samples": dict, "data": str, "scale": str, "seed": int, "git": dict,
    "hardware": dict, "started": str, "wall_s": (int, float), "config": dict, "extra": dict,
}
REQUIRED_V2 = {"provenance": dict, "environment": dict}
ENV_PACKAGES = ("torch", "numpy", "scipy", "diffusers", "pycocotools", "transformers", "sentence-transformers",
                "spacy")
DATA_VALUES = ("real", "synthetic")
SCALE_VALUES = ("paper", "smoke")


class RecordError(ValueError):
    """A run record that does not follow the schema; the message names the file."""


def git_info(cwd: str | os.PathLike | None = None) -> dict[str, Any]:
    """Current commit and whether the tree is dirty (``unknown`` outside a git checkout)."""
    cwd = cwd or Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=cwd, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                                    capture_output=True, text=True, check=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        return {"commit": "unknown", "dirty": True}
    return {"commit": commit, "dirty": dirty}


def hardware_info() -> dict[str, Any]:
    """Device description stored in every record (GPU name/driver via torch and NVML when present, and
    the id of how its CPU kernels round: :func:`~evaluators.core.kernel_numerics.kernel_numerics`)."""
    info: dict[str, Any] = {"cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
                            "python": platform.python_version()}
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import torch  # lazy: leaderboards read records and must not pay torch's import; a record is written once

        info["torch"] = torch.__version__
        info["cuda"] = torch.version.cuda
        # whether another machine's records can be expected bit for bit here (equal ids) or not
        info["numerics"] = kernel_numerics()
        if torch.cuda.is_available():
            info["device"] = "cuda"
            info["gpu"] = torch.cuda.get_device_name(0)
            try:
                import pynvml  # lazy: NVML is optional information, loaded only on a CUDA machine

                pynvml.nvmlInit()
                info["driver"] = pynvml.nvmlSystemGetDriverVersion()
            except Exception:  # noqa: BLE001 - NVML is optional information
                pass
        else:
            info["device"] = "cpu"
            info["gpu"] = None
    except ImportError:
        info["device"] = "cpu"
    return info


def bitwise_mismatch(made_on: dict[str, Any], here: dict[str, Any] | None = None) -> str | None:
    """Why numbers made on the ``hardware`` block ``made_on`` cannot be expected bit for bit on
    ``here`` (default: this process, :func:`hardware_info`), or None when they can.

    Blocks that carry ``numerics`` are compared by its id (how every kernel family rounds, at the
    process's thread counts: compute ``here`` in a process configured as the run to compare, e.g. with
    its ``OMP_NUM_THREADS``, which numpy's BLAS reads at start-up); older records, by torch version and
    CPU model name, the closest they record."""
    here = hardware_info() if here is None else here
    if made_on.get("torch") != here.get("torch"):
        return f"made with torch {made_on.get('torch')}, this machine has {here.get('torch')}"
    if (made_on.get("device") or "cpu") != (here.get("device") or "cpu"):
        return f"made on {made_on.get('device') or 'cpu'}, this machine runs on {here.get('device') or 'cpu'}"
    theirs, mine = made_on.get("numerics"), here.get("numerics") or {}
    if isinstance(theirs, dict) and theirs.get("id"):
        if theirs.get("threads") != mine.get("threads"):
            return f"made at {theirs.get('threads')} threads, compared at {mine.get('threads')}"
        if mine.get("id") != theirs["id"]:
            return (f"made on {hardware_label(made_on)}, whose CPU kernels round differently from this "
                    f"{hardware_label(here)}'s (numerics id {theirs['id']} there, {mine.get('id')} here)")
        return None
    if made_on.get("cpu") != here.get("cpu"):
        return (f"made on {hardware_label(made_on)}, this machine is {hardware_label(here)}: CPU kernels "
                "(oneMKL, oneDNN, ATen) pick their code by vendor and instruction set, so a trained chain "
                "ends at other weights")
    return None


def environment_info() -> dict[str, Any]:
    """Installed versions of the packages that can change a number (None = not installed)."""
    pkgs: dict[str, str | None] = {}
    for name in ENV_PACKAGES:
        try:
            pkgs[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pkgs[name] = None
    return {"packages": pkgs, "lock": lock_environment(list(pkgs))}


def lock_environment(names: list[str]) -> dict[str, Any]:
    """Which lock the venv was installed from (``./reproduce.sh bootstrap`` marks it), its sha256,
    the locked versions of ``names`` and every installed package that differs from its pin."""
    path = Path(__file__).resolve().parents[1] / "requirements" / "lock.py"
    if not path.exists():  # installed as a library, outside a checkout
        return {"lock": None, "note": "no requirements/lock.py beside the package"}
    spec = importlib.util.spec_from_file_location("motionrepro_requirements_lock", path)
    mod = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(mod)
        info = mod.lock_info()
        if info.get("lock"):
            pins = mod.read_pins(Path(__file__).resolve().parents[1] / info["lock"])
            info["locked"] = {n: pins.get(canonicalize_name(n)) for n in names}
        return info
    except (Exception, SystemExit) as e:  # noqa: BLE001 - a broken lock file must not lose a run's record
        return {"lock": None, "note": f"lock unreadable: {e}"}


def hardware_label(hw: dict[str, Any]) -> str:
    """Short human label for tables: the GPU name, else the CPU model and core count."""
    if hw.get("gpu"):
        return str(hw["gpu"])
    cpu = str(hw.get("cpu") or "cpu")
    return f"{cpu} ({hw.get('cpu_count', '?')} cores)" if hw.get("cpu_count") else cpu


def normalise_metric(key: str, value: Any) -> dict[str, Any]:
    """Float or dict -> ``{"value", "ci95", "higher_is_better", "unit"}`` using METRIC_INFO."""
    info = metric_info(key)
    if isinstance(value, dict):
        out = {"value": value.get("value"), "ci95": value.get("ci95")}
        for k, v in value.items():
            out.setdefault(k, v)
    else:
        out = {"value": value, "ci95": None}
    out.setdefault("higher_is_better", info.higher_is_better)
    out.setdefault("unit", info.unit)
    if out["value"] is not None:
        out["value"] = float(out["value"])
    if out["ci95"] is not None:
        out["ci95"] = float(out["ci95"])
    return out


def make_record(*, method: str, dataset: str, protocol: str, metrics: dict[str, Any], data: str, scale: str,
                seed: int, config: dict, split: str = "test", variant: str = "",
                n_samples: dict[str, int] | None = None, wall_s: float = 0.0, started: str | None = None,
                extra: dict | None = None, git: dict | None = None, hardware: dict | None = None,
                provenance: dict | None = None, environment: dict | None = None) -> dict:
    """Assemble a schema-2 record (validated). ``provenance``: see ``evaluators/provenance.py``."""
    rec = {
        "schema": SCHEMA_VERSION, "method": method, "dataset": dataset, "split": split, "protocol": protocol,
        "variant": variant, "metrics": {k: normalise_metric(k, v) for k, v in metrics.items()},
        "n_samples": dict(n_samples or {}), "data": data, "scale": scale, "seed": int(seed),
        "git": git if git is not None else git_info(), "hardware": hardware if hardware is not None else hardware_info(),
        "started": started or _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "wall_s": float(wall_s), "config": _jsonable(config), "extra": _jsonable(extra or {}),
        "provenance": _jsonable(provenance or {}),
        "environment": _jsonable(environment if environment is not None else environment_info()),
    }
    validate_record(rec)
    return rec


def validate_record(rec: Any, source: str = "<record>") -> None:
    """Raise RecordError (naming ``source``) unless ``rec`` follows schema 2 (or the older schema 1)."""
    def bad(msg: str) -> RecordError:
        return RecordError(f"{source}: invalid run record: {msg}")

    if not isinstance(rec, dict):
        raise bad("top level is not an object")
    for key, typ in REQUIRED.items():
        if key not in rec:
            raise bad(f"missing key {key!r}")
        if not isinstance(rec[key], typ) or (typ is int and isinstance(rec[key], bool)):
            raise bad(f"{key!r} has type {type(rec[key]).__name__}")
    if rec["schema"] not in READABLE_SCHEMAS:
        raise bad(f"schema {rec['schema']} (this suite reads {list(READABLE_SCHEMAS)})")
    if rec["schema"] >= 2:
        for key, typ in REQUIRED_V2.items():
            if not isinstance(rec.get(key), typ):
                raise bad(f"missing key {key!r}" if key not in rec else f"{key!r} has type {type(rec[key]).__name__}")
        try:
            validate_provenance(rec["provenance"], source)
        except ProvenanceError as e:
            raise bad(str(e).split(": ", 1)[-1]) from None
    if rec["data"] not in DATA_VALUES:
        raise bad(f"data must be one of {DATA_VALUES}, got {rec['data']!r}")
    if rec["scale"] not in SCALE_VALUES:
        raise bad(f"scale must be one of {SCALE_VALUES}, got {rec['scale']!r}")
    if not rec["metrics"]:
        raise bad("no metrics")
    for k, m in rec["metrics"].items():
        if not isinstance(m, dict) or "value" not in m:
            raise bad(f"metric {k!r} lacks a value")
        v = m["value"]
        if v is not None and (not isinstance(v, (int, float)) or isinstance(v, bool)):
            raise bad(f"metric {k!r} value is not a number")
        if isinstance(v, float) and not math.isfinite(v):
            raise bad(f"metric {k!r} is {v}")  # NaN / inf: json would write non-standard NaN/Infinity
        ci = m.get("ci95")
        if ci is not None and (not isinstance(ci, (int, float)) or isinstance(ci, bool) or not math.isfinite(ci)):
            raise bad(f"metric {k!r} ci95 is not a finite number")
    ns = rec["n_samples"]
    for k in ("expected", "evaluated"):
        if k in ns and not isinstance(ns[k], int):
            raise bad(f"n_samples.{k} is not an integer")
    if "commit" not in rec["git"]:
        raise bad("git.commit missing")
    if rec["wall_s"] < 0 or not math.isfinite(rec["wall_s"]):
        raise bad(f"wall_s is {rec['wall_s']} (must be a finite number >= 0)")
    if isinstance(ns.get("expected"), int) and isinstance(ns.get("evaluated"), int) and ns["evaluated"] > ns["expected"]:
        raise bad(f"n_samples.evaluated {ns['evaluated']} exceeds n_samples.expected {ns['expected']}")
    try:
        started = _dt.datetime.fromisoformat(rec["started"].replace("Z", "+00:00"))
        if started.tzinfo is None:
            started = started.replace(tzinfo=_dt.timezone.utc)
    except ValueError:
        raise bad(f"started {rec['started']!r} is not an ISO time like 2026-01-31T12:00:00Z") from None
    if started > _dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(minutes=10):  # ours: 10 min of clock skew
        raise bad(f"started {rec['started']} lies in the future")


def record_filename(rec: dict) -> str:
    parts = [rec["method"], rec["dataset"], rec["protocol"]]
    if rec["variant"]:
        parts.append(rec["variant"])
    stamp = rec["started"].replace(":", "").replace("-", "")
    safe = "_".join(p.replace("/", "-").replace("=", "-").replace(" ", "") for p in parts)
    return f"{safe}_{stamp}_s{rec['seed']}.json"


def write_record(rec: dict, directory: str | os.PathLike = "runs/records") -> Path:
    """Validate and atomically write ``rec``; returns the path."""
    validate_record(rec)
    Path(directory).mkdir(parents=True, exist_ok=True)
    # a run finishing at the same second as a neighbour gets ``<name>.1.json``, never overwrites it
    return write_new_text(Path(directory) / record_filename(rec), json.dumps(rec, indent=2, sort_keys=False) + "\n")


def read_record(path: str | os.PathLike) -> dict:
    """Read and validate one record; errors name the file."""
    path = Path(path)
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise RecordError(f"{path}: not valid JSON ({e})") from e
    except UnicodeDecodeError as e:
        raise RecordError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise RecordError(f"{path}: cannot read ({e})") from e
    validate_record(rec, source=str(path))
    return rec


def read_records(directory: str | os.PathLike, skip_invalid: bool = False) -> list[dict]:
    """Every ``*.json`` record under ``directory`` (sorted); a malformed one raises RecordError, or
    with ``skip_invalid`` (a run's own scratch folder) is skipped with a warning naming the file."""
    d = Path(directory)
    out = []
    for p in sorted(d.glob("*.json")) if d.exists() else []:
        try:
            out.append(read_record(p))
        except RecordError as e:
            if not skip_invalid:
                raise
            logging.getLogger(__name__).warning("skipping a broken record: %s", e)
    return out


def _jsonable(obj: Any) -> Any:
    """Round-trip through JSON so configs (OmegaConf, numpy scalars, paths) serialise cleanly."""
    if isinstance(obj, (DictConfig, ListConfig)):
        obj = OmegaConf.to_container(obj, resolve=True)
    return json.loads(json.dumps(obj, default=_default))


def _default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return str(o)
