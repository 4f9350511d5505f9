"""Submissions: motions generated elsewhere, answering an evaluation manifest, checked and replayed.

A submission is a folder::

    submission.yaml      model: NAME            (required)
                         representation: features | joints   (required)
                         manifest: {...}        (required: the manifest's ``identity`` it answers)
                         paper: ..., url: ...   (optional; any other key is kept as metadata)
    r00_i00000.npy ...   one array per manifest item (its ``key``), or
    r00.npz ...          one archive per repetition, holding that repetition's keys

``features``: text2motion RAW (unnormalised) features ``[length, D]`` (HumanML3D 263, KIT 251).
``joints``: text2motion ``[length + 1, J, 3]`` joint positions, converted with the suite's own
``extract_features`` (``evaluators/datasets/motion/humanml3d_features.py``), or action2motion
``[length, J, C]`` in the action dataset's representation.

:func:`load_submission` checks everything before any evaluation work: the manifest identity,
every item present once, its shape, length and finiteness; a problem is a :class:`SubmissionError`
(one line naming the file). :class:`ReplayGenerator` then serves the items to the protocol in the
manifest's call order, zero-padded per call to the longest item (as the suite's generators
return them), so the protocol's own code computes every number.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from evaluators.core.validate import ConfigError
from evaluators.datasets.motion.humanml3d_features import extract_features

META = "submission.yaml"
# features / joints: generative protocols (this module); coco_results: 2D pose (load_coco_results);
# skeleton_features / reconstruction_pairs: evaluators/protocols/submission_arrays.py
REPRESENTATIONS = ("features", "joints", "coco_results", "skeleton_features", "reconstruction_pairs")
RESULTS = "results.json"  # representation coco_results: the COCO keypoint results list


class SubmissionError(ConfigError):
    """A submission that cannot be scored; the message names the file and the problem."""


def _fail(path: Path | str, problem: str) -> SubmissionError:
    return SubmissionError(f"{path}: {problem}")


def read_meta(folder: Path) -> dict:
    """``submission.yaml`` as a dict, with the required keys checked."""
    path = folder / META
    if not folder.is_dir():
        raise _fail(folder, "not a folder (a submission is a folder holding submission.yaml and the items)")
    if not path.is_file():
        raise _fail(path, "missing (name the model, its representation and the manifest it answers)")
    try:
        meta = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise _fail(path, f"not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(meta, dict):
        raise _fail(path, "must be a mapping (model:, representation:, manifest:)")
    for key in ("model", "representation", "manifest"):
        if not meta.get(key):
            raise _fail(path, f"no {key!r} given")
    if meta["representation"] not in REPRESENTATIONS:
        raise _fail(path, f"representation {meta['representation']!r} is not one of {', '.join(REPRESENTATIONS)}")
    if not isinstance(meta["manifest"], dict):
        raise _fail(path, "'manifest' must be the identity block of the manifest answered")
    return meta


def check_identity(answered: dict, manifest: dict, path: Path) -> None:
    """The submission answers THIS manifest: same schema version, protocol, dataset, split, draw."""
    want = manifest["identity"]
    for key in ("schema_version", "protocol", "dataset", "split", "split_sha256", *sorted(want)):
        if answered.get(key) != want.get(key):
            raise _fail(path, f"answers a manifest with {key}={answered.get(key)!r}, this evaluation's is "
                              f"{want.get(key)!r} (a manifest from another dataset or version: regenerate "
                              "with ./reproduce.sh manifest)")


def _item_files(folder: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """``{key: .npy path}`` and ``{key: .npz path}``; a key given twice is a duplicate."""
    npy, npz = {}, {}
    for p in sorted(folder.iterdir()):
        if p.suffix == ".npy":
            npy[p.stem] = p
        elif p.suffix == ".npz":
            try:
                with np.load(p, allow_pickle=False) as z:
                    keys = list(z.files)
            except (OSError, ValueError, zipfile.BadZipFile) as e:
                raise _fail(p, f"not a readable .npz ({e})") from None
            for k in keys:
                if k in npz or k in npy:
                    raise _fail(p, f"duplicate item {k!r} (also in {(npz.get(k) or npy.get(k)).name})")
                npz[k] = p
    for k, p in npy.items():
        if k in npz:
            raise _fail(p, f"duplicate item {k!r} (also in {npz[k].name})")
    return npy, npz


class Submission:
    """A checked submission folder: metadata, its sha256, and lazy access to each item."""

    def __init__(self, folder: Path, meta: dict, manifest: dict, npy: dict, npz: dict, sha256: str) -> None:
        self.folder, self.meta, self.manifest, self.sha256 = folder, meta, manifest, sha256
        self._npy, self._npz = npy, npz
        self._open: dict[Path, Any] = {}

    @property
    def representation(self) -> str:
        return str(self.meta["representation"])

    def raw(self, key: str) -> np.ndarray:
        """The item as submitted."""
        if key in self._npy:
            return np.load(self._npy[key], allow_pickle=False)
        p = self._npz[key]
        if p not in self._open:  # one archive open at a time: items are read in repetition order
            self.close()
            self._open = {p: np.load(p, allow_pickle=False)}
        return self._open[p][key]

    def close(self) -> None:
        for z in self._open.values():
            z.close()
        self._open = {}

    def motion(self, key: str) -> np.ndarray:
        """The item in the protocol's representation (text2motion joints -> features)."""
        x = np.asarray(self.raw(key), np.float32)
        if self.representation == "joints" and self.manifest["identity"]["protocol"] == "text2motion":
            x = extract_features(x).astype(np.float32)
        return x


def _where(key: str, npy: dict, npz: dict) -> str:
    return str(npy[key]) if key in npy else f"{npz[key]}[{key}]"


def _check_item(x: np.ndarray, item: dict, rep: str, manifest: dict, where: str) -> None:
    proto = manifest["identity"]["protocol"]
    shape_of = manifest["representation"]
    if not np.issubdtype(x.dtype, np.floating):
        raise _fail(where, f"dtype {x.dtype}, expected floating point")
    if rep == "features":
        if "features" not in shape_of:
            raise _fail(where, f"representation 'features' is not available for {proto}")
        want = ("length", shape_of["features"])
        ok_rank, dims, n = x.ndim == 2, list(x.shape[1:]), item["length"]
        want_dims = [shape_of["features"]]
    else:
        want_dims = list(shape_of["joints"])
        n = item["length"] + (1 if proto == "text2motion" else 0)  # features of T+1 joint frames are T frames
        want = ("length+1" if proto == "text2motion" else "length", *want_dims)
        ok_rank, dims = x.ndim == 1 + len(want_dims), list(x.shape[1:])
    if not ok_rank or dims != want_dims:
        raise _fail(where, f"shape {tuple(x.shape)}, expected [{', '.join(map(str, want))}] ({rep})")
    if len(x) != n:
        raise _fail(where, f"{len(x)} frames, the manifest asks for {n} (item {item['key']}, length {item['length']})")
    if not np.isfinite(x).all():
        raise _fail(where, "contains NaN or Inf")


def load_submission(folder: str | Path, manifest: dict) -> Submission:
    """Check a submission folder against ``manifest`` (every item, before any work); raises
    :class:`SubmissionError` naming the file and the problem."""
    folder = Path(folder)
    meta = read_meta(folder)
    check_identity(meta["manifest"], manifest, folder / META)
    npy, npz = _item_files(folder)
    wanted = {it["key"]: it for it in manifest["items"]}
    for k in list(npy) + list(npz):
        if k not in wanted:
            raise _fail(_where(k, npy, npz), f"item {k!r} is not in the manifest")
    h = hashlib.sha256((folder / META).read_bytes())
    sub = Submission(folder, meta, manifest, npy, npz, "")
    try:
        for k, item in wanted.items():
            if k not in npy and k not in npz:
                raise _fail(folder / f"{k}.npy", f"missing (manifest item {k}: {_describe(item)})")
            try:
                x = sub.raw(k)
            except (OSError, ValueError) as e:
                raise _fail(_where(k, npy, npz), f"unreadable ({str(e).splitlines()[0]})") from None
            _check_item(x, item, sub.representation, manifest, _where(k, npy, npz))
            h.update(k.encode() + b"\0" + np.ascontiguousarray(x).tobytes() + str(x.shape).encode())
    finally:
        sub.close()
    sub.sha256 = h.hexdigest()
    return sub


def _describe(item: dict) -> str:
    if "caption" in item:
        return f"test id {item['test_id']}, length {item['length']}"
    return f"label {item['label']}, length {item['length']}"


class ReplayGenerator:
    """A ``MotionGenerator`` that answers the protocol's ``generate`` calls from a submission, in
    the manifest's call order; a call that differs from the manifest's is an error (the protocol
    and the manifest disagree, which is a bug, not a bad submission)."""

    task = "generation"

    def __init__(self, submission: Submission) -> None:
        self.sub = submission
        self.items = {it["key"]: it for it in submission.manifest["items"]}
        self.calls = list(submission.manifest["calls"])
        self.next = 0

    def fit(self, dataset) -> None:  # nothing to train: the motions are given
        pass

    def generate(self, conditions, lengths, steps=None) -> torch.Tensor:
        if self.next >= len(self.calls):
            raise RuntimeError(f"the protocol asked for more than the manifest's {len(self.calls)} generate calls")
        keys = self.calls[self.next]
        self.next += 1
        items = [self.items[k] for k in keys]
        got = [int(v) for v in lengths]
        if got != [it["length"] for it in items] or len(list(conditions)) != len(items):
            raise RuntimeError(f"generate call {self.next}: the protocol's lengths {got[:4]}... differ from the "
                               f"manifest's {[it['length'] for it in items][:4]}...")
        motions = [self.sub.motion(k) for k in keys]
        out = np.zeros((len(motions), max(got), *motions[0].shape[1:]), np.float32)
        for b, m in enumerate(motions):
            out[b, :len(m)] = m[:max(got)]
        return torch.from_numpy(out)

    def done(self) -> bool:
        """Every manifest call was made (the protocol used the whole submission)."""
        return self.next == len(self.calls)


def load_coco_results(folder: str | Path, manifest: dict) -> tuple[dict, list[dict], str]:
    """``(meta, results, sha256)`` of a COCO keypoint submission: ``submission.yaml`` +
    ``results.json`` (``[{"image_id", "category_id": 1, "keypoints": [x, y, s] * K, "score"}]``),
    every entry checked (an image of the annotation file, K keypoints, finite numbers)."""
    folder = Path(folder)
    meta = read_meta(folder)
    check_identity(meta["manifest"], manifest, folder / META)
    if meta["representation"] != "coco_results":
        raise _fail(folder / META, f"representation {meta['representation']!r}: pose submissions are 'coco_results'")
    path = folder / RESULTS
    if not path.is_file():
        raise _fail(path, "missing (the COCO keypoint results list)")
    raw = path.read_bytes()
    try:
        results = json.loads(raw)
    except ValueError as e:
        raise _fail(path, f"not valid JSON ({e})") from None
    if not isinstance(results, list):
        raise _fail(path, "must be a list of results")
    spec = manifest["representation"]["coco_results"]
    images, k = set(spec["image_ids"]), int(spec["num_keypoints"])
    for i, r in enumerate(results):
        where = f"{path}[{i}]"
        if not isinstance(r, dict) or not {"image_id", "keypoints", "score"} <= set(r):
            raise _fail(where, "needs image_id, keypoints and score")
        if r["image_id"] not in images:
            raise _fail(where, f"image_id {r['image_id']!r} is not an image of the annotation file")
        if int(r.get("category_id", 1)) != 1:
            raise _fail(where, f"category_id {r['category_id']!r}, expected 1 (person)")
        try:
            kp = np.asarray(r["keypoints"], np.float64)
            score = float(r["score"])
        except (TypeError, ValueError):
            raise _fail(where, "keypoints and score must be numbers") from None
        if kp.shape != (3 * k,):
            raise _fail(where, f"{kp.size} keypoint values, expected {3 * k} ({k} x [x, y, score])")
        if not (np.isfinite(kp).all() and np.isfinite(score)):
            raise _fail(where, "contains NaN or Inf")
    sha = hashlib.sha256((folder / META).read_bytes() + b"\0" + raw).hexdigest()
    return meta, results, sha
