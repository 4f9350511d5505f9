"""Evaluation manifests: the exact list of what a generative protocol asks a model to generate.

A manifest lists, per repetition and in the protocol's call order, every ``generate`` call the
protocol makes (seed ``seed + r`` for repetition r):

- ``text2motion``: per repetition the evaluated pass (test id, caption and its index among the
  motion's captions, target length, crop start; batches of ``batch_size``), then the
  MultiModality prompts, each asked ``num_repeats`` times (one call per prompt);
- ``action2motion``: per repetition one item per test clip (action label, length), in batches
  of ``batch_size``;
- ``linear`` (skeleton representations): the train and test sample ids whose frozen features a
  submission gives (no calls: the probes run on the features);
- ``reconstruction``: every input the protocol reconstructs (test id; text2motion: the seeded
  crop), in its batch order.

It is made by the SAME functions the protocols draw with
(:func:`evaluators.protocols._t2m_helpers.draw_t2m_repetition`,
:func:`evaluators.protocols.action2motion.draw_clips`), so a model that answers a manifest is
evaluated on exactly the draw of an in-process run with the same seed. Its ``identity`` (schema
version, protocol, dataset and split file sha256, evaluator geometry and checkpoint sha256, draw
settings) is what a submission must match (``evaluators/protocols/submission.py``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from evaluators.networks.action_train import action_split
from evaluators.networks.t2m_data import t2m_split
from evaluators.networks.t2m_evaluator import evaluator_config, resolve_official_files
from evaluators.protocols import _t2m_helpers as H
from evaluators.protocols import action2motion as A2M
from evaluators.protocols import reconstruction as REC
from evaluators.protocols.registry import complete_config
from evaluators.provenance import sha256_file

SCHEMA = "motionrepro.manifest"
SCHEMA_VERSION = 1
PROTOCOLS = ("text2motion", "action2motion", "coco_ap", "pose", "linear", "reconstruction")


def _sha_json(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def identity_sha256(identity: dict) -> str:
    """sha256 of a manifest's identity block (canonical JSON)."""
    return _sha_json(identity)


def split_identity(data: Any, split: str, names: list[str] | None = None, content: Any = None) -> dict:
    """``{"split", "split_sha256", "split_sha256_of"}``: the split file's sha256 when the dataset has
    one (``split_file(split)``: HumanML3D, KIT-ML, synth_t2m), else a sha256 of the split's content."""
    fn = getattr(data, "split_file", None)
    path = fn(split) if callable(fn) else None
    if path is not None and Path(path).is_file():
        return {"split": split, "split_sha256": sha256_file(path), "split_sha256_of": "file"}
    return {"split": split, "split_sha256": _sha_json({"names": names, "content": content}),
            "split_sha256_of": "content"}


def evaluator_geometry(data: Any, ecfg: dict, source: str, ev: Any = None) -> dict:
    """The T2M evaluator settings the draw depends on (unit and maximum length, feature width) and
    its checkpoint sha256 when one is set, without building the evaluator (``ev``: an already
    built one, whose config then wins, as in the protocol)."""
    ck = None
    if ev is not None:
        cfg = ev.cfg
    else:
        name = H.evaluator_name(data, ecfg)
        if source == "real" or ecfg.get("checkpoint") or ecfg.get("root"):  # as build_evaluator
            ecfg = resolve_official_files(ecfg, name)
        if ecfg.get("checkpoint"):
            cfg, ck = evaluator_config(name), ecfg["checkpoint"]
        else:  # as train_evaluator: the dataset's width (or evaluator.config) + the config overrides
            over = dict((ecfg.get("train") or {}).get("config_overrides") or {})
            cfg = evaluator_config(ecfg.get("config") or t2m_split(data, "test").dim, **over)
    out = {"config": cfg.dataset, "dim_pose": cfg.dim_pose, "unit_length": cfg.unit_length,
           "max_motion_length": cfg.max_motion_length}
    if ck:
        out["checkpoint_sha256"] = sha256_file(ck) if Path(ck).is_file() else None
    return out


def text2motion_manifest(data: Any, cfg: dict, seed: int, dataset: str, source: str = "synthetic",
                         ev: Any = None, scale: str = "paper") -> dict:
    """The manifest of the text2motion protocol with config ``cfg`` (defaults merged) and ``seed``."""
    c = complete_config("text2motion", cfg)
    split = t2m_split(data, c["split"])
    geo = evaluator_geometry(data, c["evaluator"], source, ev)
    bs, unit, max_len = int(c["batch_size"]), geo["unit_length"], geo["max_motion_length"]
    mm = c["mm"] if c["mm"]["enabled"] else None
    k = int(c["mm"]["num_repeats"])
    calls, items = [], []
    for r in range(int(c["repetitions"])):
        draw, chosen = H.draw_t2m_repetition(split, int(seed) + r, bs, unit, max_len, mm)
        rows = []
        for p, (i, start, m_len) in enumerate(draw.windows):
            row = {"key": f"r{r:02d}_i{p:05d}", "repetition": r, "position": p, "test_index": i,
                   "test_id": split.names[i] if split.names else str(i), "caption": draw.captions[p],
                   "caption_index": draw.extra["caption_index"][p], "length": m_len, "crop_start": start}
            rows.append(row)
        items += rows
        for b in range(len(rows) // bs):
            calls.append([row["key"] for row in rows[b * bs:(b + 1) * bs]])
        for q, p in enumerate([] if chosen is None else chosen):
            src = rows[int(p)]
            keys = []
            for j in range(k):
                key = f"r{r:02d}_m{q:03d}_{j:02d}"
                items.append({**src, "key": key, "multimodality": {"prompt": q, "repeat": j, "of": src["key"]}})
                keys.append(key)
            calls.append(keys)
    identity = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "protocol": "text2motion", "dataset": dataset,
                "scale": scale,
                **split_identity(data, c["split"], split.names, [len(m) for m in split.motions]),
                "evaluator": geo, "seed": int(seed), "repetitions": int(c["repetitions"]), "batch_size": bs,
                "mm": {key: c["mm"][key] for key in ("enabled", "mode", "num_samples", "num_repeats", "num_batches")}}
    return _finish(identity, {"features": geo["dim_pose"], "joints": [_joints(geo["dim_pose"]), 3]}, calls, items)


def _joints(dim: int) -> int:
    # HumanML3D features: 4 + 12 (J-1) + 4 = 263 for J = 22 (KIT: 251, J = 21); T2M paper sec. 3
    return (dim - 8) // 12 + 1


def action2motion_manifest(data: Any, cfg: dict, seed: int, dataset: str, scale: str = "paper") -> dict:
    """The manifest of the action2motion protocol with config ``cfg`` (defaults merged) and ``seed``."""
    c = complete_config("action2motion", cfg)
    train = action_split(data, c["train_split"])
    has_test = c["test_split"] != c["train_split"] and A2M._has_split(data, c["test_split"])
    test = action_split(data, c["test_split"]) if has_test else train
    bs = int(c["batch_size"])
    calls, items = [], []
    for r in range(int(c["repetitions"])):
        _, te_clips = A2M.draw_clips(train, test if has_test else None, c["num_frames"], int(seed) + r)
        rows = [{"key": f"r{r:02d}_i{p:05d}", "repetition": r, "position": p, "label": int(test.labels[p]),
                 "length": len(clip)} for p, clip in enumerate(te_clips)]
        items += rows
        for s in range(0, len(rows), bs):
            calls.append([row["key"] for row in rows[s:s + bs]])
    used = c["test_split"] if has_test else c["train_split"]
    shape = list(test.motions[0].shape[1:])
    identity = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "protocol": "action2motion", "dataset": dataset,
                "scale": scale,
                **split_identity(data, used, None, {"labels": test.labels.tolist(),
                                                    "frames": [len(m) for m in test.motions]}),
                "seed": int(seed), "repetitions": int(c["repetitions"]), "batch_size": bs,
                "num_frames": c["num_frames"], "train_split": c["train_split"], "test_split": c["test_split"]}
    return _finish(identity, {"joints": shape}, calls, items)


def pose_manifest(data: Any, protocol: str, dataset: str, scale: str = "paper") -> dict:
    """COCO keypoints: a submission is a results JSON over the evaluation annotation file's images
    (every image counts, as pycocotools evaluates them); the identity names that file's sha256."""
    if getattr(data, "fmt", None) != "coco" or getattr(data, "ann_file", None) is None:
        raise ValueError(f"{dataset}: submitted pose results are scored on COCO-format data only (OKS AP)")
    ann = json.loads(Path(data.ann_file).read_text(encoding="utf-8"))
    kpts = len((ann.get("categories") or [{}])[0].get("keypoints") or []) or 17
    identity = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "protocol": protocol, "dataset": dataset,
                "scale": scale, "split": str(data.eval_split), "split_sha256": sha256_file(data.ann_file),
                "split_sha256_of": "file"}
    images = sorted(int(im["id"]) for im in ann.get("images", []))
    return _finish(identity, {"coco_results": {"num_keypoints": kpts, "image_ids": images}}, [], [])


def features_manifest(data: Any, cfg: dict, dataset: str, scale: str = "paper") -> dict:
    """Skeleton representations (the ``linear`` protocol's probes): a submission gives frozen
    features of every train and test sample, named by the split's sample ids listed here."""
    c = complete_config("linear", cfg)
    train, test = data.split("train"), data.split("test")
    content = {n: {"names": list(sp.names), "labels": [int(v) for v in sp.labels]} for n, sp in
               (("train", train), ("test", test))}
    identity = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "protocol": "linear", "dataset": dataset,
                "scale": scale, **split_identity(data, "train+test", None, content),
                "num_classes": int(data.num_classes)}
    spec = {"train_ids": list(train.names), "test_ids": list(test.names), "poolings": list(c["poolings"]),
            "input": "the dataset's deterministic test feeder (crop p=0.95, resized to the encoder's window) "
                     "for train and test alike: the frozen_once recipe"}
    return _finish(identity, {"skeleton_features": spec}, [], [])


def reconstruction_manifest(data: Any, cfg: dict, seed: int, dataset: str, scale: str = "paper") -> dict:
    """Reconstruction: the inputs the protocol reconstructs (test id, and for text2motion the
    seeded T2M-loader crop), in its batch order; a submission gives each input with its
    reconstruction."""
    c = complete_config("reconstruction", cfg)
    items, calls = [], []
    if REC.is_text2motion(data):
        split = t2m_split(data, c["split"])
        crops, starts, batches = REC.text2motion_inputs(split, c, int(seed))
        names = split.names
        for i, crop in enumerate(crops):
            items.append({"key": f"i{i:05d}", "index": i, "test_id": names[i] if names else str(i),
                          "crop_start": int(starts[i]), "length": len(crop), "shape": list(crop.shape)})
        task, content, extra = "text2motion", [len(m) for m in split.motions], {"seed": int(seed)}
    else:
        sp, feeder, n = REC.skeleton_inputs(data, c)
        batches = REC.skeleton_batches(n, int(c["batch_size"]))
        shape = [3, int(c["window"]), *sp.data.shape[3:]] if feeder is not None else list(sp.data.shape[1:])
        items = [{"key": f"i{i:05d}", "index": i, "test_id": sp.names[i], "shape": shape} for i in range(n)]
        names = list(sp.names)
        task, content, extra = "skeleton_ssl", {"labels": [int(v) for v in sp.labels]}, {"window": int(c["window"])}
    for b in batches:
        calls.append([items[i]["key"] for i in b])
    identity = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "protocol": "reconstruction", "dataset": dataset,
                "scale": scale, **split_identity(data, c["split"], list(names or []), content), "task": task,
                "max_samples": c["max_samples"], "batch_size": int(c["batch_size"]), **extra}
    return _finish(identity, {"reconstruction_pairs": {"task": task}}, calls, items)


def _finish(identity: dict, representation: dict, calls: list, items: list) -> dict:
    return {"identity": identity, "identity_sha256": _sha_json(identity), "representation": representation,
            "n_items": len(items), "calls": calls, "items": items}


def build_manifest(protocol: str, data: Any, cfg: dict, seed: int, dataset: str, source: str = "synthetic",
                   ev: Any = None, scale: str = "paper") -> dict:
    """The manifest of ``protocol`` (one of :data:`PROTOCOLS`) on ``data`` (``cfg``: the protocol
    config resolved at ``scale``, which the identity names)."""
    if protocol == "text2motion":
        return text2motion_manifest(data, cfg, seed, dataset, source, ev, scale)
    if protocol == "action2motion":
        return action2motion_manifest(data, cfg, seed, dataset, scale)
    if protocol in ("coco_ap", "pose"):
        return pose_manifest(data, protocol, dataset, scale)
    if protocol == "linear":
        return features_manifest(data, cfg, dataset, scale)
    if protocol == "reconstruction":
        return reconstruction_manifest(data, cfg, seed, dataset, scale)
    raise ValueError(f"no evaluation manifest for protocol {protocol!r} (manifests: {', '.join(PROTOCOLS)})")


def write_manifest(manifest: dict, path: str | Path) -> Path:
    """Write ``manifest`` as JSON (atomically: a temporary file, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(manifest, indent=None, separators=(",", ":")), encoding="utf-8")
    tmp.replace(path)
    return path
