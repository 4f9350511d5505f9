"""Submissions of skeleton features and of reconstruction pairs: checked before any work, replayed.

Skeleton representations (``representation: skeleton_features``; manifest of ``linear``)::

    submission.yaml      model: NAME, representation: skeleton_features, manifest: {...}
                         pooling: mean | joint     (optional, default mean: the probe recipe's
                                                    batch size and dropout, configs/protocol/linear.yaml)
                         train: {features: train_features.npy, ids: train_ids.txt}   (optional: these
                         test:  {features: test_features.npy,  ids: test_ids.txt}    are the defaults)
    train_features.npy   float [N_train, D] frozen features, row i of sample ids line i
    train_ids.txt        one sample id per line: every id of the manifest's ``train_ids`` once
    test_features.npy / test_ids.txt   the same for ``test_ids`` (same D)

Reconstruction (``representation: reconstruction_pairs``; manifest of ``reconstruction``)::

    submission.yaml      model: NAME, representation: reconstruction_pairs, manifest: {...}
                         inputs: inputs.npz, reconstructions: reconstructions.npz   (optional defaults)
    inputs.npz           one array per manifest item key (``i00000`` ...): the input reconstructed,
                         shaped as the item's ``shape`` (text2motion: the RAW feature crop
                         ``[length, D]``; skeletons: the test feeder window ``[3, T, 25, 2]``)
    reconstructions.npz  the same keys and shapes: the model's output for that input

File names in ``submission.yaml`` are relative to the folder and may not leave it
(:func:`evaluators.core.paths.resolve_inside`). Every problem is a :class:`SubmissionError` whose
one line names the file.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from evaluators.core.errors import DatasetError
from evaluators.core.paths import resolve_inside
from evaluators.protocols.submission import META, SubmissionError, check_identity, read_meta

FEATURE_FILES = {"train": {"features": "train_features.npy", "ids": "train_ids.txt"},
                 "test": {"features": "test_features.npy", "ids": "test_ids.txt"}}
PAIR_FILES = {"inputs": "inputs.npz", "reconstructions": "reconstructions.npz"}
POOLINGS = ("mean", "joint")
# a submitted input may differ from the suite's by float32 round-off of the submitter's own
# loading (ours: 1e-5 of a metre / a feature unit), never by a different crop or sample
INPUT_ATOL = 1e-5


def _fail(path, problem: str) -> SubmissionError:
    return SubmissionError(f"{path}: {problem}")


def _inside(folder: Path, rel, what: str) -> Path:
    """``folder / rel`` for a file name from ``submission.yaml``; escaping the folder is refused."""
    if not isinstance(rel, str):
        raise _fail(folder / META, f"{what} must be a file name, got {rel!r}")
    try:
        return resolve_inside(folder, rel, source=folder / META)
    except DatasetError as e:  # resolve_inside words it for datasets; the rule is the same here
        msg = str(e).replace("the dataset folder", "the submission folder").replace("a dataset file", META)
        raise SubmissionError(msg) from None


def _meta_for(folder: Path, manifest: dict, representation: str) -> dict:
    meta = read_meta(folder)
    check_identity(meta["manifest"], manifest, folder / META)
    if meta["representation"] != representation:
        raise _fail(folder / META, f"representation {meta['representation']!r}: a "
                                   f"{manifest['identity']['protocol']} submission is {representation!r}")
    return meta


def _floats(x: np.ndarray, where) -> None:
    if not np.issubdtype(x.dtype, np.floating):
        raise _fail(where, f"dtype {x.dtype}, expected floating point")
    if not np.isfinite(x).all():
        raise _fail(where, "contains NaN or Inf")


@dataclass
class FeatureSubmission:
    """Checked frozen features, rows in the manifest's id order (= the dataset split's order)."""

    folder: Path
    meta: dict
    sha256: str
    pooling: str
    train: np.ndarray
    test: np.ndarray

    @property
    def representation(self) -> str:
        return str(self.meta["representation"])


def _read_ids(path: Path, wanted: list[str], split: str) -> list[str]:
    if not path.is_file():
        raise _fail(path, f"missing (the {split} sample ids, one per line)")
    try:
        ids = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise _fail(path, f"unreadable ({e})") from None
    seen: dict[str, int] = {}
    known = set(wanted)
    for line, i in enumerate(ids, 1):
        if i in seen:
            raise _fail(path, f"duplicate id {i!r} (lines {seen[i]} and {line})")
        if i not in known:
            raise _fail(path, f"id {i!r} (line {line}) is not a sample of the {split} split")
        seen[i] = line
    if len(ids) != len(wanted):
        gone = next(w for w in wanted if w not in seen)
        raise _fail(path, f"{len(wanted) - len(ids)} of the {split} split's {len(wanted)} ids missing "
                          f"(first: {gone!r})")
    return ids


def _read_array(path: Path, what: str) -> np.ndarray:
    if not path.is_file():
        raise _fail(path, f"missing ({what})")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise _fail(path, f"not a readable .npy ({str(e).splitlines()[0]})") from None


def load_feature_submission(folder: str | Path, manifest: dict) -> FeatureSubmission:
    """Check a skeleton-features submission against ``manifest`` (ids, shapes, finiteness,
    file names inside the folder) and return the features in the manifest's order."""
    folder = Path(folder)
    meta = _meta_for(folder, manifest, "skeleton_features")
    spec = manifest["representation"]["skeleton_features"]
    pooling = str(meta.get("pooling", "mean"))
    if pooling not in POOLINGS:
        raise _fail(folder / META, f"pooling {pooling!r} is not one of {', '.join(POOLINGS)} (the probe recipe)")
    h = hashlib.sha256((folder / META).read_bytes())
    out, dim = {}, None
    for split in ("train", "test"):
        files = meta.get(split, FEATURE_FILES[split])
        if not isinstance(files, dict) or not {"features", "ids"} <= set(files):
            raise _fail(folder / META, f"{split} must map 'features' and 'ids' to file names")
        ids_path = _inside(folder, files["ids"], f"{split}.ids")
        feat_path = _inside(folder, files["features"], f"{split}.features")
        wanted = [str(v) for v in spec[f"{split}_ids"]]
        ids = _read_ids(ids_path, wanted, split)
        x = _read_array(feat_path, f"the {split} features, [N, D]")
        if x.ndim != 2 or len(x) != len(ids):
            raise _fail(feat_path, f"shape {tuple(x.shape)}, expected [{len(ids)}, D] (one row per line of "
                                   f"{ids_path.name})")
        _floats(x, feat_path)
        if dim is not None and x.shape[1] != dim:
            raise _fail(feat_path, f"{x.shape[1]} features per sample, the train features have {dim}")
        dim = x.shape[1]
        row = {i: r for r, i in enumerate(ids)}
        out[split] = np.ascontiguousarray(x[[row[w] for w in wanted]], dtype=np.float32)
        h.update(split.encode() + b"\0" + out[split].tobytes())
    return FeatureSubmission(folder, meta, h.hexdigest(), pooling, out["train"], out["test"])


@dataclass
class PairsSubmission:
    """Checked reconstruction pairs ``{key: array}`` of every manifest item."""

    folder: Path
    meta: dict
    manifest: dict
    sha256: str
    paths: dict
    inputs: dict
    reconstructions: dict

    @property
    def representation(self) -> str:
        return str(self.meta["representation"])


def _read_npz(path: Path, what: str) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise _fail(path, f"missing ({what}: one array per manifest item key)")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise _fail(path, f"not a readable .npz ({str(e).splitlines()[0]})") from None


def load_pairs_submission(folder: str | Path, manifest: dict) -> PairsSubmission:
    """Check a reconstruction-pairs submission against ``manifest``: every item's input and
    reconstruction present once, shaped as the item, finite; file names inside the folder."""
    folder = Path(folder)
    meta = _meta_for(folder, manifest, "reconstruction_pairs")
    items = {it["key"]: it for it in manifest["items"]}
    h = hashlib.sha256((folder / META).read_bytes())
    paths, arrays = {}, {}
    for part, default in PAIR_FILES.items():
        path = _inside(folder, meta.get(part, default), part)
        paths[part] = path
        got = _read_npz(path, part)
        for k in got:
            if k not in items:
                raise _fail(f"{path}[{k}]", f"item {k!r} is not in the manifest")
        for k, it in items.items():
            if k not in got:
                raise _fail(f"{path}[{k}]", f"missing (manifest item {k}: test id {it['test_id']}, shape {it['shape']})")
            x = got[k]
            if list(x.shape) != list(it["shape"]):
                raise _fail(f"{path}[{k}]", f"shape {tuple(x.shape)}, expected {tuple(it['shape'])}")
            _floats(x, f"{path}[{k}]")
            h.update(part.encode() + k.encode() + b"\0" + np.ascontiguousarray(x).tobytes())
        arrays[part] = got
    return PairsSubmission(folder, meta, manifest, h.hexdigest(), paths, arrays["inputs"], arrays["reconstructions"])


class ReplayReconstructor:
    """A ``Reconstructor`` answering the protocol's ``reconstruct(x)`` calls from a pairs
    submission, in the manifest's batch order; each submitted input must be the protocol's
    ``x`` (within :data:`INPUT_ATOL`), so the pair is scored against the suite's own data."""

    def __init__(self, sub: PairsSubmission) -> None:
        self.sub, self.calls, self.next = sub, list(sub.manifest["calls"]), 0

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        if self.next >= len(self.calls):
            raise RuntimeError(f"the protocol asked for more than the manifest's {len(self.calls)} reconstruct calls")
        keys = self.calls[self.next]
        self.next += 1
        xs = x.detach().cpu().numpy()
        if len(keys) != len(xs):
            raise RuntimeError(f"reconstruct call {self.next}: {len(xs)} inputs, the manifest lists {len(keys)}")
        for k, row in zip(keys, xs):
            diff = float(np.abs(self.sub.inputs[k].astype(np.float64) - row).max())
            if diff > INPUT_ATOL:
                raise _fail(f"{self.sub.paths['inputs']}[{k}]", f"differs from the evaluation's input by up to {diff:.3g} "
                                                               "(the inputs must be the manifest's items)")
        return torch.from_numpy(np.stack([self.sub.reconstructions[k] for k in keys]).astype(np.float32))

    def done(self) -> bool:
        return self.next == len(self.calls)
