"""Loading files without running code from them: checkpoints and dataset pickles.

``torch.load(weights_only=False)`` and ``pickle.load`` execute whatever a crafted file asks
for (a ``__reduce__`` can call any function). Everything the suite reads goes through:

- :func:`load_checkpoint_file` -- ``torch.load(weights_only=True)`` with exactly the extra
  globals the authors' released checkpoints need (:data:`CHECKPOINT_GLOBALS`): numpy arrays,
  scalars and dtypes (RNG states, schedulers), ``argparse.Namespace`` (MacDiff/MAMP ``args``,
  MoMask ``opt``), ``collections.Counter`` (``MultiStepLR`` milestones), and Lightning's saved
  hyper-parameters (MLD ``.ckpt``: an ``AttributeDict`` holding an omegaconf ``DictConfig``).
  Lightning itself is not a dependency: its ``AttributeDict`` names are mapped to ``dict``
  (the hyper-parameters come back as a plain dict), so nothing of Lightning is imported or run. A refused global, a truncated
  or an unreadable file raises :class:`CheckpointError` naming the file (and the global).
- :func:`load_data_pickle` -- a restricted unpickler for dataset pickles (HumanAct12, UESTC,
  GloVe word lists): only numpy arrays (and their dtypes/scalars), dict, list, tuple, str,
  bytes, int, float, bool and None. Any other global is a ``DatasetError`` naming the file and
  the refused type; ``trust=True`` (the dataset option ``trust_pickles=true``, noted in the run
  record) falls back to ``pickle.load`` for files the user vouches for.
"""

from __future__ import annotations

import argparse
import collections
import io
import logging
import os
import pickle
import re
import typing
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import base, dictconfig, listconfig, nodes

from evaluators.core.errors import DatasetError

log = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A checkpoint file that is missing, truncated, of an unknown layout or asks for a refused global."""


_LIGHTNING_NAMES = ("pytorch_lightning.utilities.parsing.AttributeDict",
                    "lightning_fabric.utilities.data.AttributeDict",
                    "lightning.fabric.utilities.data.AttributeDict",
                    "lightning.pytorch.utilities.parsing.AttributeDict")


def _numpy_globals() -> list:
    core = getattr(np, "_core", None) or np.core
    out = [core.multiarray._reconstruct, core.multiarray.scalar, np.ndarray, np.dtype]
    for n in dir(np.dtypes):  # Float32DType, Int64DType, ... (numpy >= 1.25)
        t = getattr(np.dtypes, n)
        if isinstance(t, type) and issubclass(t, np.dtype):
            out.append(t)
    return out


def _omegaconf_globals() -> list:
    node_types = [getattr(nodes, n) for n in ("AnyNode", "StringNode", "IntegerNode", "FloatNode", "BooleanNode",
                                              "BytesNode", "PathNode") if hasattr(nodes, n)]
    return [dictconfig.DictConfig, listconfig.ListConfig, base.Metadata, base.ContainerMetadata, *node_types,
            typing.Any, collections.defaultdict, int, float, str, bool, list, dict, tuple]


def checkpoint_globals() -> list:
    """The allow-list for :func:`load_checkpoint_file` (see the module docstring for who needs what)."""
    return [*_numpy_globals(), argparse.Namespace, collections.Counter, collections.OrderedDict,
            *_omegaconf_globals(), *((dict, name) for name in _LIGHTNING_NAMES)]  # AttributeDict read as a plain dict


def load_checkpoint_file(path: str | os.PathLike, *, what: str = "checkpoint") -> Any:
    """``torch.load(path, weights_only=True)`` with :func:`checkpoint_globals`; CheckpointError on any failure."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{what} {path} does not exist")
    if path.is_dir():
        raise CheckpointError(f"{what} {path} is a directory, expected a file")
    try:
        with torch.serialization.safe_globals(checkpoint_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        msg = str(e)
        refused = _refused_global(msg)
        if refused:
            raise CheckpointError(f"{what} {path}: refused to load global {refused!r} (weights_only loading "
                                  f"admits tensors, numpy arrays and the allow-listed config types only; "
                                  f"see README 'Safety')") from None
        raise CheckpointError(f"{what} {path}: unreadable ({_first_line(msg)})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, KeyError, AttributeError,
            TypeError, IndexError) as e:
        raise CheckpointError(f"{what} {path}: truncated or not a torch checkpoint ({type(e).__name__}: "
                              f"{_first_line(str(e))})") from None


def _first_line(msg: str) -> str:
    lines = [ln.strip() for ln in msg.strip().splitlines() if ln.strip()]
    for ln in lines:  # torch wraps the reason in a long preamble
        if "WeightsUnpickler error" in ln or "Unsupported" in ln:
            return ln[:300]
    return (lines[0] if lines else "no detail")[:300]


def _refused_global(msg: str) -> str | None:
    m = re.search(r"Unsupported global: GLOBAL ([\w.]+)", msg) or re.search(
        r"allowlisted via `add_safe_globals`, but got <class '([\w.]+)'>", msg) or re.search(
        r"Unsupported operand \d+|Trying to call reduce for unrecognized function <[^>]* ([\w.]+)", msg)
    if m and m.groups():
        return m.group(1)
    return None


# -- dataset pickles ---------------------------------------------------------------------------------------
_NP_MODULES = ("numpy", "numpy.core.multiarray", "numpy._core.multiarray", "numpy.core.numeric",
               "numpy._core.numeric", "numpy.dtypes")
_NP_NAMES = {"_reconstruct", "scalar", "ndarray", "dtype", "_frombuffer"}
_BUILTINS = {"dict", "list", "tuple", "str", "bytes", "int", "float", "bool", "bytearray"}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, fh, path: Path) -> None:
        super().__init__(fh)
        self.path = path

    def find_class(self, module: str, name: str) -> Any:
        if module in _NP_MODULES and (name in _NP_NAMES or (module == "numpy.dtypes" and name.endswith("DType"))):
            return super().find_class(module, name)
        if module in ("builtins", "__builtin__") and name in _BUILTINS:
            return super().find_class(module, name)
        if module == "_codecs" and name == "encode":  # numpy arrays pickled under Python 2 / protocol 2
            return super().find_class(module, name)
        raise DatasetError(f"refused to unpickle {module}.{name}: dataset pickles may hold only numpy arrays, "
                           f"dicts, lists, tuples, str, int and float (set dataset.trust_pickles=true only "
                           f"for a file you trust; see README 'Safety')", path=self.path)


def load_data_pickle(path: str | os.PathLike, *, trust: bool = False) -> Any:
    """Unpickle a dataset file with :class:`_RestrictedUnpickler` (``trust=True``: plain ``pickle``)."""
    path = Path(path)
    if path.is_dir():
        raise DatasetError("is a directory, expected a pickle file", path=path)
    if not path.is_file():
        raise DatasetError("file missing", path=path)
    data = path.read_bytes()
    try:
        if trust:
            log.warning("%s: unpickled without restrictions (trust_pickles=true)", path)
            return pickle.loads(data)  # noqa: S301 - explicit, documented opt-out
        return _RestrictedUnpickler(io.BytesIO(data), path).load()
    except DatasetError:
        raise
    except Exception as exc:  # noqa: BLE001 - truncated/corrupt pickles raise many types
        raise DatasetError(f"unreadable pickle, truncated or corrupt ({type(exc).__name__}: {exc})",
                           path=path) from None
