"""``./reproduce.sh export`` for the non-generative protocols: a submission folder from a method.

- ``linear`` (skeleton representations): the method's frozen features of every train and test
  sample through the dataset's deterministic test feeder (the ``frozen_once`` recipe), ``.npy`` +
  ids (:mod:`evaluators.protocols.submission_arrays`);
- ``reconstruction``: every manifest input with the method's reconstruction, batched as the
  protocol batches them;
- ``coco_ap`` / ``pose``: the method's predictions on the suite's boxes as a COCO keypoint results
  JSON, made exactly as the pose protocol makes its own (``coco_results`` with its NMS settings).

Every folder is staged under ``OUT.part`` and renamed, so nothing half-written remains.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import yaml

from evaluators.core.seeding import seed_everything
from evaluators.core.validate import ConfigError
from evaluators.metrics.pose2d import coco_results
from evaluators.networks.t2m_data import t2m_split
from evaluators.protocols import reconstruction as REC
from evaluators.protocols._skeleton_common import extract_features, window_of
from evaluators.protocols.pose import predict_instances
from evaluators.protocols.registry import complete_config
from evaluators.protocols.submission import META, RESULTS
from evaluators.protocols.submission_arrays import FEATURE_FILES, PAIR_FILES


def staged(out: Path, write: Callable[[Path], dict], manifest: dict, meta: dict) -> Path:
    """Run ``write(part_folder) -> extra metadata``, add ``submission.yaml``, rename to ``out``."""
    part = out.with_name(out.name + ".part")
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    try:
        extra = write(part)
        doc = {**{k: v for k, v in meta.items() if v is not None}, **extra, "manifest": manifest["identity"]}
        (part / META).write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        part.replace(out)
    except BaseException:
        shutil.rmtree(part, ignore_errors=True)
        raise
    return out


def write_features(method, data, cfg: dict, pooling: str, manifest: dict, out: Path, meta: dict) -> Path:
    """Frozen features of the train and test splits (pooling ``mean`` | ``joint``), as the linear
    protocol's ``frozen_once`` recipe extracts them."""
    c = complete_config("linear", cfg)
    window = window_of(method, c)

    def write(part: Path) -> dict:
        for split, files in FEATURE_FILES.items():
            with torch.no_grad():
                f, _ = extract_features(method, data.feeder(split, train=False, window=window), pooling)
            np.save(part / files["features"], f.numpy().astype(np.float32))
            (part / files["ids"]).write_text("".join(f"{n}\n" for n in data.split(split).names), encoding="utf-8")
        return {"representation": "skeleton_features", "pooling": pooling, "window": window}
    return staged(out, write, manifest, meta)


def write_pairs(method, data, cfg: dict, seed: int, manifest: dict, out: Path, meta: dict) -> Path:
    """Each manifest input with ``method.reconstruct`` of it, in the protocol's batches, from
    ``seed_everything(seed)`` as the runner seeds the protocol (a VAE's posterior sample)."""
    c = complete_config("reconstruction", cfg)
    calls = manifest["calls"]
    index = {it["key"]: it["index"] for it in manifest["items"]}
    if REC.is_text2motion(data, method):
        crops = REC.text2motion_inputs(t2m_split(data, c["split"]), c, seed)[0]

        def batch(idx):
            return torch.from_numpy(np.stack([crops[i] for i in idx]))
    else:
        sp, feeder, _ = REC.skeleton_inputs(data, c)

        def batch(idx):
            return REC.skeleton_input(sp, feeder, idx)
    posterior = str(c["posterior"]) if REC.takes_posterior(method) else None

    def write(part: Path) -> dict:
        seed_everything(seed)
        inputs, recons = {}, {}
        for keys in calls:
            x = batch([index[k] for k in keys])
            y, _ = REC._reconstruct(method, x, posterior)
            for k, xi, yi in zip(keys, x.numpy(), y):
                inputs[k], recons[k] = xi, yi
        np.savez(part / PAIR_FILES["inputs"], **inputs)
        np.savez(part / PAIR_FILES["reconstructions"], **recons)
        return {"representation": "reconstruction_pairs"}
    return staged(out, write, manifest, meta)


def write_coco(method, data, cfg: dict, boxes: str, manifest: dict, out: Path, meta: dict) -> Path:
    """The method's COCO keypoint results on ``boxes`` (``det`` | ``gt``), made as the pose
    protocol makes them (``predict_instances`` + ``coco_results`` with its NMS settings)."""
    c = complete_config(str(cfg.get("name") or "coco_ap"), cfg)
    if boxes not in ("det", "gt"):
        raise ConfigError(f"boxes={boxes}: expected det or gt")
    insts = data.instances("det" if boxes == "det" else (c["split"] or data.eval_split))
    if not insts:
        raise ConfigError(f"boxes={boxes}: {data.name} has no such instances")

    def write(part: Path) -> dict:
        preds, _ = predict_instances(method, insts, c, c["steps"])
        res = coco_results(preds, insts, c["nms_thr"], c["kpt_score_thr"])
        (part / RESULTS).write_text(json.dumps(res), encoding="utf-8")
        return {"representation": "coco_results", "boxes": boxes}
    return staged(out, write, manifest, meta)
