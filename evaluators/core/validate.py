"""Checks a run's configuration before any data is read or any model is built.

Everything here raises :class:`ConfigError` (re-exported by :mod:`evaluators.runner.run`) (exit 2, one line):

- :func:`check_run_values`: ``seed`` an int in 0..2**32-1, ``device`` one of cpu / cuda / cuda:N / auto.
- :func:`check_values`: in a resolved method / dataset / protocol config, counts (``steps``,
  ``epochs``, ``batch_size``, ...) are ints >= 1 (warm-up style counts >= 0), probabilities
  (``*_prob``, ``*dropout``, ``mask_ratio``, ...) are numbers in [0, 1], seeds are ints, and a
  sampler ``precision`` is ``fp32`` or ``bf16`` (:mod:`evaluators.core.precision`).
- :func:`check_override_keys`: a command-line override names a key the config has (with a
  did-you-mean from :mod:`difflib`), so ``method_cfg.vae.stepz=7`` is not silently added.
- :func:`check_checkpoint`: ``checkpoint=`` exists and is a torch file, or a folder for a
  method that reads a release tree (``checkpoint_accepts_dir``).
- :func:`check_override_types`: an override gives a number where the config has a number, a
  boolean where it has a boolean (``vae.latent_dim=abc`` is refused, ``null`` always allowed).
- :func:`check_output_dir`: ``runs_dir`` / the cache can become a folder there, without creating
  anything (run before hydra makes its output folder): not a file or device, writable, not full.
- :func:`probe_writable`: ``runs_dir`` / ``records_dir`` can hold a file (probe written, removed).
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

# counts that must be >= 1 (a key equal to, or ending in, one of these)
_COUNT_SUFFIXES = ("steps", "epochs", "batch_size", "iterations", "timesteps", "num_batches", "iters")
# counts for which 0 means "off"
_ZERO_OK_PREFIXES = ("warmup", "min_lr", "movement_pretrain", "ckpt", "log", "eval_every")
_PROB_NAMES = {"drop_path", "mask_ratio", "label_ratio", "uncond_ratio", "test_fraction", "p_drop_frame"}
_SEED_NAMES = {"seed", "subset_seed"}
#: numpy's legacy global seed is 32 bits (np.random.seed); a larger or negative seed would be folded
MAX_SEED = 2**32 - 1
#: ours: a billion steps/epochs/samples is beyond any run of this suite; a larger count is a typo
MAX_COUNT = 10**9
# model sizes that must be >= 1 (a key ending in one of these): layers, heads, widths
_SIZE_SUFFIXES = ("num_layers", "_layers", "num_heads", "_heads", "_dim", "latent_size", "hidden_size")
#: ours: a disk with less free space than this cannot hold a run's first checkpoint
MIN_FREE_BYTES = 1 << 20
#: the sampler ``precision`` names (:mod:`evaluators.core.precision` maps them to dtypes); defined
#: here, without torch, because every command-line start-up validates (``methods --help``, ``leaderboards``)
PRECISIONS = ("fp32", "bf16")
_DEVICE = re.compile(r"^(cpu|auto|cuda(:\d+)?)$")
# dataset keys every loader understands even when a dataset's yaml does not list them (base.py docstring)
COMMON_DATASET_KEYS = {"name", "task", "source", "root", "env_var", "layout", "url", "trust_pickles"}


class ConfigError(Exception):
    """A mistake in the command line or the configs (exit code 2, message printed as is)."""


def _err(msg: str) -> Exception:
    return ConfigError(msg)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_run_values(cfg: Any) -> None:
    """``seed`` and ``device`` of the composed run config."""
    seed = cfg.get("seed")
    if not _is_int(seed):
        raise _err(f"seed must be an integer, got {seed!r}")
    if not 0 <= seed <= MAX_SEED:
        raise _err(f"seed must be in 0..{MAX_SEED} (numpy's 32-bit seed range), got {seed}")
    device = str(cfg.get("device"))
    if not _DEVICE.match(device):
        raise _err(f"device must be cpu, cuda, cuda:N or auto, got {device!r}")


def _is_count(key: str) -> bool:
    return key.endswith(_COUNT_SUFFIXES) and not key.endswith(("_sweep",))


def _is_prob(key: str) -> bool:
    return key in _PROB_NAMES or key.endswith("prob") or "dropout" in key


_DECLARATION_KEYS = ("paper_setting", "non_paper")


def check_values(cfg: dict, where: str) -> None:
    """Types and ranges of the well-known keys anywhere in ``cfg`` (nested dicts included)."""

    def walk(d: Any, path: str) -> None:
        if isinstance(d, dict):
            for k, v in d.items():
                walk_key(str(k), v, f"{path}.{k}" if path else str(k))
        elif isinstance(d, list):
            for i, v in enumerate(d):
                if isinstance(v, (dict, list)):
                    walk(v, f"{path}[{i}]")

    def walk_key(key: str, v: Any, path: str) -> None:
        if key in _DECLARATION_KEYS:  # paper_setting / non_paper describe settings, they are not settings
            return
        if isinstance(v, (dict, list)) and not (key.endswith("_sweep") and isinstance(v, list)):
            walk(v, path)
            return
        if v is None:
            return
        if key in _SEED_NAMES:
            if not _is_int(v) or not 0 <= v <= MAX_SEED:
                raise _err(f"{where}: {path} must be an integer seed in 0..{MAX_SEED}, got {v!r}")
        elif key.endswith("_sweep") and isinstance(v, list) and _is_count(key[: -len("_sweep")]):
            for x in v:
                if not _is_int(x) or x < 1:
                    raise _err(f"{where}: {path} must list integers >= 1, got {x!r}")
        elif _is_count(key):
            low = 0 if key.startswith(_ZERO_OK_PREFIXES) else 1
            if not _is_int(v) or not low <= v <= MAX_COUNT:
                raise _err(f"{where}: {path} must be an integer in {low}..{MAX_COUNT}, got {v!r}")
        elif key.endswith(_SIZE_SUFFIXES) and not isinstance(v, str):
            if not _is_int(v) or not 1 <= v <= MAX_COUNT:
                raise _err(f"{where}: {path} must be an integer in 1..{MAX_COUNT}, got {v!r}")
        elif key in ("compile", "fused_encoder", "fast_sampler", "onednn_linear"):
            if not isinstance(v, bool):
                raise _err(f"{where}: {path} must be true or false, got {v!r}")
        elif key == "precision":
            if str(v) not in PRECISIONS:
                raise _err(f"{where}: {path} must be one of {', '.join(PRECISIONS)}, got {v!r}")
        elif _is_prob(key):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= float(v) <= 1.0:
                raise _err(f"{where}: {path} must be a probability in [0, 1], got {v!r}")

    walk(cfg, "")


def _keys_at(d: Any, parts: list[str]) -> tuple[bool, list[str], str]:
    """Walk ``parts`` into ``d``: (found, keys at the level where it stopped, the part that was missing)."""
    cur = d
    for i, p in enumerate(parts):
        if not isinstance(cur, dict):
            return True, [], ""  # below a non-dict value (e.g. replacing a list): nothing to check
        if p not in cur:
            return False, sorted(map(str, cur)), ".".join(parts[: i + 1])
        cur = cur[p]
    return True, [], ""


def check_override_keys(base: dict, overrides: list[str], where: str, prefix: str,
                        extra_keys: set[str] | frozenset = frozenset()) -> None:
    """Every ``KEY=V`` in ``overrides`` names a key of ``base`` (or one of ``extra_keys`` at the top)."""
    for o in overrides:
        key = o.split("=", 1)[0].lstrip("+~")
        parts = key.split(".")
        if parts[0] in extra_keys:
            continue
        found, level, missing = _keys_at(base, parts)
        if found:
            continue
        close = difflib.get_close_matches(parts[len(missing.split(".")) - 1], level, n=3)
        hint = f"; did you mean {', '.join(prefix + '.'.join([*missing.split('.')[:-1], c]) for c in close)}?" \
            if close else ""
        raise _err(f"unknown key {prefix}{missing} in {where}{hint} (keys there: {', '.join(level[:20])})")


def _override_value(override: str) -> tuple[bool, Any]:
    """(parsed, value) of ``KEY=VALUE`` as hydra/OmegaConf would type it."""
    key = override.split("=", 1)[0].lstrip("+~")
    try:
        return True, OmegaConf.to_container(OmegaConf.from_dotlist([f"{key}={override.split('=', 1)[1]}"]))
    except Exception:  # noqa: BLE001 - a value OmegaConf cannot parse is left to the loader's message
        return False, None


def check_override_types(base: dict, overrides: list[str], where: str, prefix: str) -> None:
    """A ``KEY=VALUE`` override keeps the kind of value the config file has there: a number for a
    number, true/false for a boolean (``null`` is always allowed: it switches a setting off)."""
    for o in overrides:
        if "=" not in o or o.startswith("~"):
            continue
        key = o.split("=", 1)[0].lstrip("+")
        cur: Any = base
        for part in key.split("."):
            if not isinstance(cur, dict) or part not in cur:
                cur = None
                break
            cur = cur[part]
        if cur is None or isinstance(cur, (dict, list, str)):
            continue
        ok, parsed = _override_value(o)
        if not ok:
            continue
        for part in key.split("."):
            parsed = parsed[part]
        if parsed is None:
            continue
        if isinstance(cur, bool):
            if not isinstance(parsed, bool):
                raise _err(f"{prefix}{key}={o.split('=', 1)[1]} in {where}: expected true or false")
        elif isinstance(cur, (int, float)) and (isinstance(parsed, bool) or not (
                isinstance(parsed, (int, float)) or str(parsed).lower().lstrip("+-") in ("inf", "infinity"))):
            raise _err(f"{prefix}{key}={o.split('=', 1)[1]} in {where}: expected a number (the file has {cur!r})")


def check_output_dir(path: str | os.PathLike, what: str) -> None:
    """``path`` is, or can become, a writable folder on a disk with room; nothing is created.

    Run before hydra creates its output folder under ``runs_dir``: a regular file, ``/dev/null``, a
    read-only folder or a full disk are named here in one line instead of a traceback from hydra or
    ``torch.save``."""
    p = Path(path)
    probe = p
    while not probe.exists() and probe.parent != probe:  # the nearest part that exists decides
        probe = probe.parent
    if not probe.is_dir():
        kind = "a regular file" if probe.is_file() else "not a folder (a device or special file)"
        raise _err(f"{what}={p}: {probe} is {kind}; give a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise _err(f"{what}={p}: {probe} is not writable")
    try:
        free = shutil.disk_usage(probe).free
    except OSError as e:
        raise _err(f"{what}={p}: cannot query its disk ({e.strerror or e})") from None
    if free < MIN_FREE_BYTES:
        raise _err(f"{what}={p}: no space left on the disk holding {probe} ({free} bytes free)")


def check_checkpoint(path: str, accepts_dir: bool, method: str) -> None:
    """``checkpoint=PATH``: present, and a torch file (or a folder where the method reads one)."""
    p = Path(path)
    if not p.exists():
        raise _err(f"checkpoint={path}: no such file or directory")
    if p.is_dir():
        if not accepts_dir:
            raise _err(f"checkpoint={path}: is a directory; method {method!r} expects a checkpoint file")
        return
    try:
        with open(p, "rb") as fh:
            head = fh.read(4)
    except OSError as e:
        raise _err(f"checkpoint={path}: unreadable ({e.strerror})") from None
    # torch.save writes a zip archive (PK..); files from torch < 1.6 start with a pickle protocol byte
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):
        raise _err(f"checkpoint={path}: not a torch checkpoint (neither a zip archive nor a legacy pickle)")


def probe_writable(path: str | os.PathLike, what: str) -> None:
    """Create ``path`` if needed and write + remove a probe file there; ConfigError if that fails."""
    p = Path(path)
    probe = p / f".write-probe-{os.getpid()}"
    try:
        p.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise _err(f"{what}={p} is not writable ({e.strerror or e})") from None
