"""Reconstruction protocol: MPJPE / PA-MPJPE / ACCL in mm (and FID for motion VAEs / tokenizers).

Dispatches on the dataset's task:

- ``text2motion`` (MLD VAE Tables 4-5, MoMask RVQ): each test motion is cropped as the T2M test
  loader does (seeded), ``method.reconstruct(x)`` gets RAW features ``[B, L, D]`` (batches of equal
  length ``L``) and returns RAW features; both are turned into joints with
  ``recover_from_ric`` (the dataset's ``features_to_joints`` when it has one). Metrics follow
  MLD ``MRMetrics``: root-aligned MPJPE (``align_root``), per-pose similarity-Procrustes
  PA-MPJPE, acceleration error over all frames of all sequences, metres -> mm (x1000). FID
  between the T2M-evaluator embeddings of the GT crops and of the reconstructions (the
  evaluator of the text2motion protocol; ``fid.enabled``).
- ``skeleton_ssl`` (MacDiff masked-input reconstruction): test clips through the dataset's
  deterministic test feeder (``window`` frames, ``[B, 3, T, 25, 2]``); ``method.reconstruct(x)``
  returns ``x_hat`` of the same shape, or ``{"x_hat", "mask"}`` where ``mask`` marks the
  masked (hidden) positions ``[B, T, 25]`` (or ``[B, T, 25, M]``); errors are averaged over the
  bodies present in the input (non-zero joints), and, when a mask is returned, also over the
  masked joints only (``mpjpe_masked_mm``: the error on what the model had to infer). NTU
  coordinates are metres.
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

import numpy as np
import torch

from evaluators.datasets.motion.humanml3d import recover_from_ric
from evaluators.metrics.generation import fid as fid_metric
from evaluators.metrics.reconstruction import accel_error, mpjpe, procrustes_align
from evaluators.networks.t2m_data import crop_window_official, t2m_split
from evaluators.protocols._t2m_helpers import build_evaluator
from evaluators.protocols.registry import ProtocolResult, RunContext, complete_config, register_protocol
from evaluators.provenance import recipe_entry

log = logging.getLogger(__name__)





class _Acc:
    """Running sums for MPJPE / PA-MPJPE (per joint) and ACCL (per acceleration frame)."""

    def __init__(self):
        self.err = self.pa = 0.0
        self.n = 0
        self.acc = 0.0
        self.n_acc = 0

    def add(self, pred: np.ndarray, gt: np.ndarray, align_root: bool) -> None:
        """``pred, gt [T, J, 3]`` of one sequence."""
        t, j = gt.shape[:2]
        self.err += mpjpe(pred, gt, align_root=align_root) * t * j
        self.pa += float(np.linalg.norm(procrustes_align(pred, gt) - gt, axis=-1).sum())
        self.n += t * j
        if t >= 3:
            self.acc += accel_error(pred, gt) * (t - 2) * j
            self.n_acc += (t - 2) * j

    def metrics(self, scale: float) -> dict[str, float]:
        out = {"mpjpe_mm": scale * self.err / self.n, "pa_mpjpe_mm": scale * self.pa / self.n}
        if self.n_acc:
            out["accel_mm"] = scale * self.acc / self.n_acc
        return out


def _to_joints(data, dim: int):
    if hasattr(data, "features_to_joints"):
        return lambda x: np.asarray(data.features_to_joints(x))

    joints_num = {263: 22, 251: 21}.get(dim)
    if joints_num is None:
        raise ValueError(f"cannot convert {dim}-d features to joints (HumanML3D 263 or KIT 251 expected)")
    return lambda x: np.asarray(recover_from_ric(x, joints_num))


def takes_posterior(method) -> bool:
    """Whether ``method.reconstruct`` has a ``posterior`` argument (a VAE: ``sample`` | ``mean``)."""
    return _takes(method, "posterior")


def _takes(method, name: str) -> bool:
    try:
        return name in inspect.signature(method.reconstruct).parameters
    except (TypeError, ValueError):
        return False


def _reconstruct(method, x: torch.Tensor, posterior: str | None = None):
    kw = {"posterior": posterior} if posterior is not None else {}
    if _takes(method, "return_mask"):  # a method that can report its hidden positions (MacDiff) is asked to
        kw["return_mask"] = True
    with torch.inference_mode():
        out = method.reconstruct(x, **kw)
    mask = None
    if isinstance(out, dict):
        out, mask = out["x_hat"], out.get("mask")
    elif isinstance(out, (tuple, list)):
        out, mask = out[0], (out[1] if len(out) > 1 else None)
    out = torch.as_tensor(out).detach().float().cpu()
    if out.shape != x.shape:
        raise ValueError(f"{type(method).__name__}.reconstruct returned {tuple(out.shape)} for input {tuple(x.shape)}")
    return out.numpy(), (None if mask is None else torch.as_tensor(mask).detach().cpu().numpy())


def text2motion_inputs(split, c: dict, seed: int) -> tuple[list[np.ndarray], list[int], list[list[int]]]:
    """``(crops, crop starts, batches)``: the test motions cropped as the T2M test loader does
    (seeded with ``seed``), and the batches of equal length the protocol reconstructs them in
    (lengths ascending, ``batch_size`` each); the evaluation manifest lists the same."""
    n = len(split) if c["max_samples"] is None else min(len(split), int(c["max_samples"]))
    rng = np.random.default_rng(int(seed))
    windows = [crop_window_official(len(split.motions[i]), rng) for i in range(n)]  # crop_like_official's draws
    crops = [split.motions[i][start:start + m_len] for i, (start, m_len) in enumerate(windows)]
    by_len: dict[int, list[int]] = {}
    for i, m in enumerate(crops):
        by_len.setdefault(len(m), []).append(i)
    bs = int(c["batch_size"])
    batches = [idx[s:s + bs] for _length, idx in sorted(by_len.items()) for s in range(0, len(idx), bs)]
    return crops, [start for start, _ in windows], batches


def is_text2motion(data, method=None) -> bool:
    """Which branch reconstructs ``data``: the dataset's task, else the method's, else whether
    the dataset has a skeleton feeder."""
    task = getattr(data, "task", None) or getattr(method, "task", "")
    return task == "text2motion" or (task != "skeleton_ssl" and not hasattr(data, "feeder"))


def skeleton_batches(n: int, batch_size: int) -> list[list[int]]:
    """The batches (test positions) the skeleton branch reconstructs, in order."""
    return [list(range(s, min(n, s + batch_size))) for s in range(0, n, batch_size)]


def _text2motion(method, data, c: dict, ctx: RunContext) -> ProtocolResult:
    split = t2m_split(data, c["split"])
    crops, _, batches = text2motion_inputs(split, c, int(ctx.seed))
    n = len(crops)
    to_joints = _to_joints(data, split.dim)
    align = True if c["align_root"] is None else bool(c["align_root"])
    acc = _Acc()
    recon = [None] * n
    # a VAE decodes a posterior SAMPLE in the authors' VAE metrics (MLD mld/models/modeltype/mld.py:843
    # -> t2m_eval, :654 vae.encode = dist.rsample() in mld/models/architectures/mld_vae.py:181-183,
    # :663 decode; :865 TemosMetric on those joints); ``posterior: mean`` decodes mu (deterministic)
    posterior = str(c["posterior"]) if takes_posterior(method) else None
    if posterior not in (None, "sample", "mean"):
        raise ValueError(f"protocol reconstruction: posterior must be 'sample' or 'mean', got {posterior!r}")
    for chunk in batches:
        x = torch.from_numpy(np.stack([crops[i] for i in chunk]))
        out, _ = _reconstruct(method, x, posterior)
        for k, i in enumerate(chunk):
            recon[i] = out[k]
            acc.add(to_joints(out[k]), to_joints(crops[i]), align)
    metrics = acc.metrics(float(c["unit_to_mm"]))
    extra: dict[str, Any] = {"align_root": align, "task": "text2motion", "crop": "T2M test loader (seeded)"}
    prov: dict[str, dict] = {}
    if posterior is not None:
        extra["posterior"] = posterior
        k, e = recipe_entry("vae_posterior", posterior, paper=posterior == "sample", paper_value="sample")
        prov[k] = e
    if c["fid"]["enabled"]:
        ev = build_evaluator(data, c["evaluator"], ctx)
        lens = [len(m) for m in crops]
        emb = []
        for src in (crops, recon):
            parts = []
            for s in range(0, n, 64):
                sl = slice(s, s + 64)
                pad = np.zeros((len(src[sl]), ev.cfg.max_motion_length, split.dim), np.float32)
                for k, m in enumerate(src[sl]):
                    pad[k, :len(m)] = m[:ev.cfg.max_motion_length]
                parts.append(ev.embed_motion(torch.from_numpy(pad), lens[sl]).cpu().numpy())
            emb.append(np.concatenate(parts))
        metrics["fid"] = fid_metric(emb[0], emb[1])
        extra["evaluator"] = {"config": ev.cfg.dataset, **{k: v for k, v in ev.meta.items() if k != "hparams"}}
        prov.update(ev.provenance())
    return ProtocolResult(metrics, split=c["split"], n_samples={"expected": len(split), "evaluated": n}, extra=extra,
                          provenance=prov)


def skeleton_inputs(data, c: dict) -> tuple[Any, Any, int]:
    """``(split, feeder, n)``: the test split, its deterministic test feeder (``window`` frames;
    ``None`` for a dataset without one: raw clips) and how many samples are reconstructed."""
    sp = data.split(c["split"])
    n = len(sp) if c["max_samples"] is None else min(len(sp), int(c["max_samples"]))
    feeder = data.feeder(sp, train=False, window=int(c["window"])) if hasattr(data, "feeder") else None
    return sp, feeder, n


def skeleton_input(sp, feeder, idx) -> torch.Tensor:
    """The input batch ``[B, 3, T, 25, M]`` of test positions ``idx``."""
    if feeder is not None:
        return torch.stack([torch.as_tensor(feeder[i][0]) for i in idx]).float()
    return torch.as_tensor(np.stack([sp.data[i] for i in idx])).float()


def _skeleton(method, data, c: dict, ctx: RunContext) -> ProtocolResult:
    sp, feeder, n = skeleton_inputs(data, c)
    n_total = len(sp)
    align = False if c["align_root"] is None else bool(c["align_root"])
    acc, masked_err, masked_n = _Acc(), 0.0, 0
    bs = int(c["batch_size"])
    for idx in skeleton_batches(n, bs):
        x = skeleton_input(sp, feeder, idx)
        out, mask = _reconstruct(method, x)
        gt = x.numpy().transpose(0, 4, 2, 3, 1)  # [B, M, T, V, 3]
        pred = out.transpose(0, 4, 2, 3, 1)
        for b in range(len(gt)):
            for m in range(gt.shape[1]):
                present = np.abs(gt[b, m]).sum(axis=(1, 2)) > 0  # frames where this body exists
                if present.sum() == 0:
                    continue
                acc.add(pred[b, m][present], gt[b, m][present], align)
                if mask is not None:
                    mk_b = np.asarray(mask[b], bool)
                    mk = (mk_b[..., m] if mk_b.ndim == 3 else np.broadcast_to(mk_b, gt.shape[2:4]))[present]
                    err = np.linalg.norm(pred[b, m][present] - gt[b, m][present], axis=-1)
                    masked_err += float(err[mk].sum())
                    masked_n += int(mk.sum())
    metrics = acc.metrics(float(c["unit_to_mm"]))
    if masked_n:
        metrics["mpjpe_masked_mm"] = float(c["unit_to_mm"]) * masked_err / masked_n
    return ProtocolResult(metrics, split=c["split"], n_samples={"expected": n_total, "evaluated": n},
                          extra={"align_root": align, "task": "skeleton_ssl", "window": int(c["window"]),
                                 "input": "deterministic test feeder" if feeder is not None else "raw split"})


@register_protocol("reconstruction", needs="Reconstructor", tasks=("text2motion", "skeleton_ssl"))
def reconstruction(method, data, cfg: dict, ctx: RunContext) -> ProtocolResult:
    """MPJPE / PA-MPJPE / ACCL (mm) of ``method.reconstruct`` on the test split (+ FID for text2motion)."""
    c = complete_config("reconstruction", cfg)
    if is_text2motion(data, method):
        return _text2motion(method, data, c, ctx)
    return _skeleton(method, data, c, ctx)
