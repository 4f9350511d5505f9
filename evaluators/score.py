"""Score anyone's model with the papers' evaluators: a callable, or files generated elsewhere.

Python API (any callable, no registered method needed)::

    from evaluators.score import text2motion
    metrics = text2motion(generate=my_fn, dataset="synth_t2m", repetitions=20)
    # my_fn(captions: list[str], lengths: list[int]) -> [B, T >= max(lengths), D] RAW features

    from evaluators.score import action2motion
    metrics = action2motion(generate=my_fn, dataset="synth_action")
    # my_fn(labels: list[int], lengths: list[int]) -> [B, T >= max(lengths), J, 3]

    from evaluators.score import linear
    by_variant = linear(encode=my_encoder, dataset="synth_ntu")
    # my_encoder(x: [B, C, T, V, M], pooling: "mean" | "joint") -> [B, D] frozen features

    reconstruction(reconstruct=fn, dataset="synth_t2m")   # fn(x) -> x_hat, same shape
    reconstruction_inputs(manifest)                        # {key: input} of a reconstruction manifest
    coco_results(results, dataset="coco_kpt")              # a COCO keypoint results list -> OKS AP

Both run the suite's own protocol function (``evaluators/protocols/text2motion.py``,
``action2motion.py``) with the callable in the place of a method: same evaluator, metrics,
repetitions and 95% confidence intervals as ``./reproduce.sh METHOD DATASET``. They return the
generated row's metrics ``{name: {"value", "ci95"}}``.

Files generated elsewhere (``./reproduce.sh score``) go through :func:`score_submission`, which
replays a checked submission folder (``evaluators/protocols/submission.py``) through the same
protocol function. This module never imports a concrete method (import-linter contract
``score-is-method-free``); ``evaluators/runner/score.py`` adds the command line and the records.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from evaluators.core.config import load_config
from evaluators.core.seeding import seed_everything
from evaluators.datasets import load_dataset
from evaluators.networks.action_train import action_split
from evaluators.networks.t2m_data import t2m_split
from evaluators.protocols import RunContext, get_protocol
from evaluators.protocols import reconstruction as REC
from evaluators.protocols.linear import knn_result, probe_frozen_features
from evaluators.protocols.manifest import build_manifest
from evaluators.protocols.pose import coco_ap_metrics
from evaluators.protocols.registry import ProtocolResult, complete_config
from evaluators.protocols.submission import ReplayGenerator, Submission, SubmissionError
from evaluators.protocols.submission_arrays import (
    INPUT_ATOL,
    FeatureSubmission,
    PairsSubmission,
    ReplayReconstructor,
)
from evaluators.provenance import recipe_entry

# what a submission cannot be scored on: its own speed, a sampler's step counts
SCORE_PATCH = {"text2motion": {"aits": {"enabled": False}, "steps": None, "steps_sweep": None},
               "action2motion": {"steps": None}, "linear": {}, "coco_ap": {}, "pose": {},
               "reconstruction": {}}
POSE_PROTOCOLS = ("coco_ap", "pose")


@dataclass
class Setup:
    """One protocol on one dataset at one scale: the configs and the loaded data."""

    protocol: str
    dataset: str
    scale: str
    source: str
    dataset_cfg: dict
    protocol_cfg: dict
    data: Any


def setup(protocol: str, dataset: str, scale: str | None = None, overrides: list[str] | None = None,
          dataset_overrides: list[str] | None = None) -> Setup:
    """Resolve the protocol and dataset configs at ``scale`` (default: ``smoke`` for a synthetic
    set, ``paper`` for real data) and load the dataset. ``overrides``: protocol config dotlist
    (``repetitions=5``); ``dataset_overrides``: dataset config dotlist (``root=/data``)."""
    dcfg0 = load_config("dataset", dataset, "paper")
    source = str(dcfg0.get("source", "real"))
    scale = scale or ("smoke" if source == "synthetic" else "paper")
    dcfg = load_config("dataset", dataset, scale, list(dataset_overrides or []))
    pcfg = load_config("protocol", protocol, scale, list(overrides or []))
    patch = SCORE_PATCH.get(protocol)
    if patch is None:
        raise ValueError(f"protocol {protocol!r} cannot score submissions (supported: {', '.join(SCORE_PATCH)})")
    pcfg = _merge(pcfg, patch)
    return Setup(protocol, str(dcfg.get("name", dataset)), scale, source, dcfg, pcfg, load_dataset(dcfg))


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out.get(k) or {}, v) if isinstance(v, dict) else v
    return out


def manifest_for(s: Setup, seed: int, ev: Any = None) -> dict:
    """The evaluation manifest of ``s`` (``evaluators/protocols/manifest.py``), with its scale."""
    return build_manifest(s.protocol, s.data, s.protocol_cfg, seed, s.dataset, s.source, ev, s.scale)


def run_protocol(s: Setup, method: Any, seed: int, device: str = "cpu", extra: dict | None = None
                 ) -> list[ProtocolResult]:
    """The suite's own protocol function on ``method`` (seeded as the runner seeds it)."""
    spec = get_protocol(s.protocol)
    ctx = RunContext(seed=int(seed), device=device, data_source=s.source, scale=s.scale,
                     extra={"dataset_cfg": s.dataset_cfg, **dict(extra or {})})
    seed_everything(int(seed))
    out = spec.fn(method, s.data, s.protocol_cfg, ctx)
    return out if isinstance(out, list) else [out]


def score_submission(s: Setup, sub: Submission, seed: int, device: str = "cpu", extra: dict | None = None
                     ) -> list[ProtocolResult]:
    """Replay a checked submission through the protocol; every manifest call must be used."""
    gen = ReplayGenerator(sub)
    try:
        out = run_protocol(s, gen, seed, device, extra)
    finally:
        sub.close()
    if not gen.done():
        raise RuntimeError(f"the protocol used {gen.next} of the manifest's {len(gen.calls)} generate calls")
    return out


class CallableGenerator:
    """A ``MotionGenerator`` around ``fn(conditions, lengths) -> motions``; each answer is checked
    (batch size, at least ``max(lengths)`` frames, trailing shape, finite) before it is evaluated."""

    def __init__(self, fn: Callable, trailing: tuple[int, ...], task: str) -> None:
        self.fn, self.trailing, self.task, self.calls = fn, tuple(trailing), task, 0

    def fit(self, dataset) -> None:
        pass

    def generate(self, conditions, lengths, steps=None) -> torch.Tensor:
        self.calls += 1
        lengths = [int(v) for v in lengths]
        out = self.fn(list(conditions), lengths)
        x = torch.as_tensor(np.asarray(out.detach().cpu() if torch.is_tensor(out) else out, np.float32))
        want = f"[{len(lengths)}, >= {max(lengths)}, {', '.join(map(str, self.trailing))}]"
        if x.ndim != 2 + len(self.trailing) or x.shape[0] != len(lengths) or tuple(x.shape[2:]) != self.trailing \
                or x.shape[1] < max(lengths):
            raise SubmissionError(f"generate call {self.calls}: returned shape {tuple(x.shape)}, expected {want}")
        if not torch.isfinite(x).all():
            raise SubmissionError(f"generate call {self.calls}: returned NaN or Inf")
        return x


def _metrics(results: list[ProtocolResult]) -> dict:
    main = [r for r in results if r.variant == ""]
    return dict(main[0].metrics)


def text2motion(generate: Callable, dataset: str = "synth_t2m", repetitions: int | None = None, *, seed: int = 0,
                scale: str | None = None, device: str = "cpu", overrides: list[str] | None = None,
                evaluator: Any = None) -> dict:
    """Metrics of ``generate(captions, lengths) -> RAW features [B, T, D]`` under the text2motion
    protocol on ``dataset`` (HumanML3D 263-d, KIT-ML 251-d, synth_t2m 263-d)."""
    ov = list(overrides or []) + ([f"repetitions={int(repetitions)}"] if repetitions is not None else [])
    s = setup("text2motion", dataset, scale, ov)
    m = manifest_for(s, seed, evaluator)
    gen = CallableGenerator(generate, (m["representation"]["features"],), "text2motion")
    return _metrics(run_protocol(s, gen, seed, device, {"t2m_evaluator": evaluator} if evaluator else None))


def action2motion(generate: Callable, dataset: str = "synth_action", repetitions: int | None = None, *,
                  seed: int = 0, scale: str | None = None, device: str = "cpu",
                  overrides: list[str] | None = None) -> dict:
    """Metrics of ``generate(labels, lengths) -> joints [B, T, J, 3]`` under the action2motion protocol."""
    ov = list(overrides or []) + ([f"repetitions={int(repetitions)}"] if repetitions is not None else [])
    s = setup("action2motion", dataset, scale, ov)
    trailing = tuple(np.asarray(action_split(s.data, s.protocol_cfg["train_split"]).motions[0]).shape[1:])
    gen = CallableGenerator(generate, trailing, "action2motion")
    return _metrics(run_protocol(s, gen, seed, device))


class CallableEncoder:
    """A frozen skeleton encoder around ``fn(x, pooling) -> features`` for the linear probe:
    ``x`` ``[B, C, T, V, M]`` windows; ``pooling`` ``mean`` -> ``[B, D]``, ``joint`` -> ``[B, V * D]``
    (``tokens`` -> ``[B, M, T', V', D]`` optionally; raise ValueError when not supported)."""

    def __init__(self, fn: Callable, window: int, device: str) -> None:
        self.fn, self.window, self.device, self.calls = fn, int(window), device, 0

    def encode(self, x: torch.Tensor, pooling: str = "mean") -> torch.Tensor:
        self.calls += 1
        out = torch.as_tensor(self.fn(x, pooling)).float()
        if pooling != "tokens" and (out.ndim != 2 or out.shape[0] != x.shape[0]):
            raise SubmissionError(f"encode call {self.calls} (pooling={pooling}): returned shape {tuple(out.shape)}, "
                                  f"expected [{x.shape[0]}, D]")
        if not torch.isfinite(out).all():
            raise SubmissionError(f"encode call {self.calls} (pooling={pooling}): returned NaN or Inf")
        return out


def linear(encode: Callable, dataset: str = "synth_ntu", *, features: str | None = None,
           poolings: list[str] | None = None, window: int = 120, seed: int = 0, scale: str | None = None,
           device: str = "cpu", overrides: list[str] | None = None) -> dict:
    """Linear-probe top-1 of a frozen skeleton encoder ``encode(x, pooling)`` (the suite's ``linear``
    protocol: MAMP / MacDiff recipe); ``{variant: metrics}``, one per pooling. ``features``:
    ``per_epoch_augmented`` (the authors', default) or ``frozen_once`` (fast, not the paper's)."""
    ov = list(overrides or []) + ([f"features={features}"] if features else []) + \
        ([f"poolings=[{','.join(poolings)}]"] if poolings else [])
    s = setup("linear", dataset, scale, ov)
    out = run_protocol(s, CallableEncoder(encode, window, device), seed, device)
    return {r.variant: dict(r.metrics) for r in out}


def score_features(s: Setup, sub: FeatureSubmission, seed: int, device: str = "cpu") -> list[ProtocolResult]:
    """Submitted frozen features through the linear probe (the ``frozen_once`` recipe of the
    submission's pooling, as the ``linear`` protocol runs it) and the weighted kNN probe."""
    c = complete_config("linear", s.protocol_cfg)
    train, test = s.data.split("train"), s.data.split("test")
    ftr, fte = torch.from_numpy(sub.train), torch.from_numpy(sub.test)
    ytr, yte = torch.as_tensor(train.labels).long(), torch.as_tensor(test.labels).long()
    seed_everything(int(seed))
    out = probe_frozen_features(ftr, ytr, fte, yte, s.data.num_classes, c, sub.pooling, int(seed), device)
    key, prov = recipe_entry("linear_features", "frozen_once", paper=False, paper_value="per_epoch_augmented")
    n = {"expected": len(test), "evaluated": len(yte)}
    probe = ProtocolResult(metrics={"top1": out["top1_best"], "top1_last": out["top1_last"]}, split="test",
                           n_samples=n, variant=f"pool={sub.pooling},features=frozen_once", provenance={key: prov},
                           extra={"pooling": sub.pooling, "feature_dim": int(fte.shape[1]), "curve": out["curve"],
                                  "features": "frozen_once", "features_text": "submitted frozen features",
                                  "top1_is": "best epoch (papers' 'Max accuracy'); top1_last = last epoch"})
    return [probe, knn_result(ftr, ytr, fte, yte, s.data.num_classes, c, sub.pooling, len(test))]


def pair_inputs(s: Setup, manifest: dict, seed: int) -> dict[str, np.ndarray]:
    """``{item key: input}``: what the reconstruction protocol feeds the model for each manifest
    item (text2motion: the seeded RAW feature crop; skeletons: the test feeder window)."""
    c = complete_config("reconstruction", s.protocol_cfg)
    items = manifest["items"]
    if REC.is_text2motion(s.data):
        crops = REC.text2motion_inputs(t2m_split(s.data, c["split"]), c, int(seed))[0]
        return {it["key"]: np.asarray(crops[it["index"]], np.float32) for it in items}
    sp, feeder, _ = REC.skeleton_inputs(s.data, c)
    return {it["key"]: REC.skeleton_input(sp, feeder, [it["index"]])[0].numpy() for it in items}


def reconstruction_inputs(manifest: dict, dataset_overrides: list[str] | None = None) -> dict[str, np.ndarray]:
    """The inputs a reconstruction manifest asks to reconstruct, ``{item key: array}`` (give
    each back with its reconstruction: ``inputs.npz`` / ``reconstructions.npz``)."""
    ident = manifest["identity"]
    over = [f"max_samples={'null' if ident['max_samples'] is None else ident['max_samples']}",
            f"batch_size={ident['batch_size']}"] + ([f"window={ident['window']}"] if "window" in ident else [])
    s = setup("reconstruction", ident["dataset"], ident["scale"], over, dataset_overrides)
    return pair_inputs(s, manifest, int(ident.get("seed", 0)))


def check_pair_inputs(s: Setup, sub: PairsSubmission, seed: int) -> None:
    """Every submitted input is the protocol's (the manifest's item), before any evaluation work."""
    items = sub.manifest["items"]
    expected = pair_inputs(s, sub.manifest, seed)
    for it in items:
        k = it["key"]
        diff = float(np.abs(sub.inputs[k].astype(np.float64) - expected[k]).max())
        if diff > INPUT_ATOL:
            raise SubmissionError(f"{sub.paths['inputs']}[{k}]: differs from the evaluation's input (test id "
                                  f"{it['test_id']}) by up to {diff:.3g}; the inputs must be the manifest's items")


def score_pairs(s: Setup, sub: PairsSubmission, seed: int, device: str = "cpu") -> list[ProtocolResult]:
    """Replay checked reconstruction pairs through the reconstruction protocol."""
    check_pair_inputs(s, sub, seed)
    gen = ReplayReconstructor(sub)
    out = run_protocol(s, gen, seed, device)
    if not gen.done():
        raise RuntimeError(f"the protocol used {gen.next} of the manifest's {len(gen.calls)} reconstruct calls")
    return out


def score_coco(s: Setup, results: list[dict]) -> list[ProtocolResult]:
    """OKS AP of checked COCO keypoint results (``load_coco_results``) over every image of the
    evaluation annotation file, as the pose protocol scores its own predictions."""
    metrics, extra = coco_ap_metrics(results, s.data.ann_file)
    n = len({int(r["image_id"]) for r in results})
    extra.update({"boxes": "submitted (the submission's own detector)", "results": len(results),
                  "images_with_results": n})
    gt = len(s.data.instances(s.data.eval_split))  # COCOeval scores every GT person of every image
    return [ProtocolResult(metrics=metrics, split=str(s.data.eval_split), variant="",
                           n_samples={"expected": gt, "evaluated": gt}, extra=extra)]


def coco_results(results: list[dict], dataset: str = "synth_coco", *, scale: str | None = None) -> dict:
    """COCO keypoint AP (percent) of a results list ``[{"image_id", "category_id", "keypoints", "score"}]``
    on ``dataset``'s evaluation annotation file (pycocotools, every image)."""
    s = setup("coco_ap", dataset, scale)
    m = manifest_for(s, 0)
    return dict(score_coco(s, _check_results_list(results, m))[0].metrics)


def _check_results_list(results: list[dict], manifest: dict) -> list[dict]:
    spec = manifest["representation"]["coco_results"]
    images, k = set(spec["image_ids"]), 3 * int(spec["num_keypoints"])
    for i, r in enumerate(results):
        kp = np.asarray(r.get("keypoints", []), np.float64).reshape(-1)
        if r.get("image_id") not in images or kp.size != k or not np.isfinite(kp).all() \
                or not np.isfinite(float(r.get("score", np.nan))):
            raise SubmissionError(f"results[{i}]: needs an image_id of the annotation file, {k} finite keypoint "
                                  "values and a finite score")
    return list(results)


class CallableReconstructor:
    """A ``Reconstructor`` around ``fn(x) -> x_hat`` (same shape; text2motion: RAW features
    ``[B, L, D]``, skeletons: ``[B, 3, T, 25, 2]``), each answer checked before it is scored."""

    def __init__(self, fn: Callable) -> None:
        self.fn, self.calls = fn, 0

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        out = self.fn(x)
        y = torch.as_tensor(np.asarray(out.detach().cpu() if torch.is_tensor(out) else out, np.float32))
        if tuple(y.shape) != tuple(x.shape):
            raise SubmissionError(f"reconstruct call {self.calls}: returned shape {tuple(y.shape)}, "
                                  f"expected the input's {tuple(x.shape)}")
        if not torch.isfinite(y).all():
            raise SubmissionError(f"reconstruct call {self.calls}: returned NaN or Inf")
        return y


def reconstruction(reconstruct: Callable, dataset: str = "synth_t2m", *, seed: int = 0, scale: str | None = None,
                   device: str = "cpu", overrides: list[str] | None = None) -> dict:
    """MPJPE / PA-MPJPE / ACCL (mm, + FID on text2motion sets) of ``reconstruct(x) -> x_hat`` under
    the suite's reconstruction protocol (MLD ``MRMetrics`` conventions)."""
    s = setup("reconstruction", dataset, scale, overrides)
    out = run_protocol(s, CallableReconstructor(reconstruct), seed, device)
    return dict(out[0].metrics)
