"""Shared plumbing of the top-down heatmap pose methods (DiffusionPose and its baseline).

Config (``configs/method/{diffusionpose,heatmap_baseline}.yaml``, resolved at a scale):
``arch`` (HRNet w32/w48/tiny), ``input_size`` [w, h], ``heatmap_stride`` (4 = 1/4
resolution), ``sigma`` (heatmap px at stride 4, scaled by 4/s: see ``width_scale``), ``keypoint_format`` (coco/mpii; switched to the dataset's in
``fit``), ``flip_test``, ``shift_heatmap``, ``refine`` (quarter/dark), ``backbone.pretrained``
(local ImageNet HRNet file or null; MMPose / timm layouts, ``backbone.convert_imagenet_state``), ``train`` {batch_size, total_steps or epochs, lr,
milestones (fractions of training), grad_clip}, ``aug``.

Training follows the MMPose HRNet recipe (Adam 5e-4, x0.1 at epochs 170 and 200 of 210,
flip / scale / rotation augmentation); the loop is :func:`methods.common.training.train`.
The method reads no file and computes no metric itself: the images come from the dataset object
and the best-checkpoint validation score from the caller (``fit(dataset, validate=...)``; the
runner passes :func:`evaluators.protocols.pose.checkpoint_scorer`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from fvcore.nn import FlopCountAnalysis
from torch import nn

from evaluators.core import distributed as D
from evaluators.core.io import atomic_torch_save
from evaluators.core.safe_load import load_checkpoint_file
from evaluators.datasets.pose2d.transforms import (
    COCO_FLIP_PAIRS,
    COCO_SKELETON,
    MPII_FLIP_PAIRS,
    MPII_SKELETON,
    box_to_center_scale,
    crop_to_image,
    decode_heatmaps,
    flip_heatmaps,
    get_warp_matrix,
    normalize_image,
    warp_image,
)
from methods.base import Method
from methods.common.hrnet_weights import convert_official, is_official_layout, load_imagenet
from methods.common.training import stage_steps, train

log = logging.getLogger(__name__)

# ``validate(predict) -> (metric name, value)``: scores ``predict(images, boxes) -> [B, K, 3]`` on the
# dataset's evaluation split, higher is better (evaluators.protocols.pose.checkpoint_scorer)
Scorer = Callable[[Callable[..., Any]], tuple[str, float]]


class _Call(nn.Module):
    """Wrap a callable as a module so fvcore can trace it."""

    def __init__(self, fn, owner: nn.Module):
        super().__init__()
        self.fn, self.owner = fn, owner  # owner registered so its parameters are traced as such

    def forward(self, *args):
        return self.fn(*args)


def _fvcore_gmacs(fn, inputs, owner: nn.Module) -> float:
    level = logging.getLogger("fvcore").level
    logging.getLogger("fvcore").setLevel(logging.ERROR)
    try:
        with torch.no_grad():
            fca = FlopCountAnalysis(_Call(fn, owner).eval(), inputs)
            fca.unsupported_ops_warnings(False)
            fca.uncalled_modules_warnings(False)
            return float(fca.total()) / 1e9
    finally:
        logging.getLogger("fvcore").setLevel(level)


def lr_factor(step: int, total_steps: int, warmup_iters: int = 500, start_factor: float = 0.001,
              milestones=(170 / 210, 200 / 210), gamma: float = 0.1) -> float:
    """LR multiplier after ``step`` optimiser steps: MMPose's HRNet schedule
    (``td-hm_hrnet-w32_8xb64-210e_coco-256x192.py:13-24``): ``LinearLR(start_factor=0.001, begin=0,
    end=500, by_epoch=False)`` warm-up times ``MultiStepLR(milestones=[170, 200], gamma=0.1)``;
    the milestones are given as fractions of training (epochs 170 and 200 of 210)."""
    warm = 1.0 if warmup_iters <= 0 else start_factor + (1.0 - start_factor) * min(step, warmup_iters) / warmup_iters
    drops = sum(step >= int(f * total_steps) for f in milestones)
    return warm * gamma ** drops


def make_lr_scheduler(opt: torch.optim.Optimizer, tcfg: dict, total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """The :func:`lr_factor` schedule from the method's ``train`` config (``warmup`` {iters, start_factor},
    ``milestones``), stepped once per optimiser step by the training loop."""
    warm = tcfg["warmup"]  # null: no warm-up (then the start factor plays no part)
    kw = {"warmup_iters": int(warm["iters"]) if warm else 0, "start_factor": float(warm["start_factor"]) if warm else 1.0,
          "milestones": tuple(tcfg["milestones"])}
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(step, total_steps, **kw))


class BestCheckpoint:
    """MMPose ``CheckpointHook(save_best='coco/AP', rule='greater')`` with ``val_interval`` epochs:
    evaluate every ``every`` optimiser steps and at the last step, keep the weights with the highest
    metric (``ckpt_dir/best.pt``, written atomically, survives a resume), and reload them at the end.
    The metric is ``score(method.predict)``, given by the caller (the method computes none).
    """

    def __init__(self, method: TopDownPoseMethod, score: Scorer, split: str, every: int, total_steps: int,
                 steps_per_epoch: int, ckpt_dir: Path | None):
        self.method, self.score, self.split, self.every, self.total = method, score, split, every, total_steps
        self.steps_per_epoch, self.path = steps_per_epoch, (Path(ckpt_dir) / "best.pt") if ckpt_dir else None
        self.best: dict | None = None
        self.best_state: dict | None = None
        if self.path is not None and self.path.exists():  # resumed run: the best so far
            obj = load_checkpoint_file(self.path, what="best checkpoint")
            self.best, self.best_state = obj["info"], obj["state"]

    @staticmethod
    def wanted(method, dataset, tcfg: dict, score: Scorer | None) -> bool:
        """Whether best-checkpoint selection runs: ``train.save_best`` set and the dataset has an
        evaluation split. Sets ``method.checkpoint_selection`` when it does not; raises (before
        training) when it should run but the caller gave no ``score``."""
        if not tcfg.get("save_best"):
            method.checkpoint_selection = {"id": "last", "label": "last weights (train.save_best: null)"}
            return False
        split = getattr(dataset, "eval_split", None)
        if split is None or split not in getattr(dataset, "splits", {}):
            log.warning("%s: no evaluation split to select the best checkpoint on; keeping the last weights",
                        method.registry_name)
            method.checkpoint_selection = {"id": "last", "label": "last weights (no val split)"}
            return False
        if score is None:
            raise ValueError(f"{method.registry_name}: train.save_best={tcfg['save_best']!r} needs a validation "
                             "scorer: call fit(dataset, validate=evaluators.protocols.pose.checkpoint_scorer(dataset)) "
                             "or set method_cfg.train.save_best=null to keep the last weights")
        return True

    @classmethod
    def from_config(cls, method, dataset, tcfg: dict, *, score: Scorer | None, steps_per_epoch: int,
                    total_steps: int, ckpt_dir):
        """``train.save_best`` (null = keep the last weights), ``train.val_interval`` (epochs, MMPose 10)
        or ``train.val_interval_steps``; None when disabled or the dataset has no evaluation split."""
        if not cls.wanted(method, dataset, tcfg, score):
            return None
        every = int(tcfg["val_interval_steps"] or int(tcfg["val_interval"]) * steps_per_epoch)
        return cls(method, score, dataset.eval_split, max(1, every), total_steps, steps_per_epoch, ckpt_dir)

    def on_step(self, state) -> None:
        if state.step % self.every and state.step != self.total:
            return
        name, value = self.score(self.method.predict)
        state.val[name] = float(value)  # the loop's curves: val/<name> at this step
        info = {"id": "best_val", "metric": name, "value": float(value), "step": int(state.step),
                "epoch": state.step / self.steps_per_epoch, "split": self.split}
        log.info("%s: val %s = %.3f at step %d (epoch %.2f)", self.method.registry_name, name, value, state.step,
                 info["epoch"])
        if self.best is None or value > self.best["value"]:  # rule='greater'; ties keep the earlier one
            self.best = info
            self.best_state = {k: v.detach().cpu().clone() for k, v in self.method.net.state_dict().items()}
            if self.path is not None and D.is_main():
                atomic_torch_save({"info": self.best, "state": self.best_state}, self.path)

    def restore_best(self) -> dict:
        """Load the best weights into the method's network; provenance entry of the selection."""
        if self.best is None:
            return {"id": "last", "label": "last weights (no validation ran)"}
        self.method.net.load_state_dict(self.best_state)
        b = self.best
        return {**b, "label": f"best {b['metric']} on {b['split']} ({b['value']:.2f}) at epoch {b['epoch']:.2f} "
                              f"(step {b['step']}; MMPose save_best)"}


FORMATS = {"coco": (17, COCO_FLIP_PAIRS, COCO_SKELETON), "mpii": (16, MPII_FLIP_PAIRS, MPII_SKELETON)}


class TopDownPoseMethod(Method):
    """Base for methods whose network maps a crop to heatmaps (``net.heatmaps(img, steps)``).

    Subclasses define ``build_net() -> nn.Module`` (with ``backbone``, ``loss(batch, gen)`` and
    ``heatmaps(img, steps)``) using ``self.num_keypoints`` / ``self.skeleton``.
    """

    task = "pose2d"
    default_steps: int | None = None

    def train_batch(self) -> int:
        """The main stage's batch per device: the paper's 512 over 8 GPUs is 64 each (mmpose 8xb64)."""
        return min(super().train_batch(), 64)

    def __init__(self, cfg: dict | None = None, *, device="cpu", seed: int = 0, workdir=None) -> None:
        super().__init__(cfg, device=device, seed=seed, workdir=workdir)
        self.input_size = tuple(int(v) for v in self.cfg["input_size"])
        self.stride = int(self.cfg["heatmap_stride"])
        self.heatmap_size = (self.input_size[0] // self.stride, self.input_size[1] // self.stride)
        # sigma and the mask widths delta_* are given in heatmap pixels at the reference stride 4
        # (MMPose's 1/4 heatmap, sigma 2 = 8 image px) and scaled by 4 / s, so that their size in
        # IMAGE pixels is the same at every stride of the high-resolution ablation (s in {1,2,4,8}).
        # ours: the paper note gives no per-stride sigma / delta.
        self.width_scale = float(self.cfg["width_ref_stride"]) / self.stride
        self.sigma_hm = float(self.cfg["sigma"]) * self.width_scale
        self._set_format(self.cfg["keypoint_format"])

    # -- building ---------------------------------------------------------------------------
    def _set_format(self, fmt: str) -> None:
        if fmt not in FORMATS:
            raise ValueError(f"keypoint_format must be one of {sorted(FORMATS)}, got {fmt!r}")
        self.fmt = fmt
        self.num_keypoints, self.flip_pairs, self.skeleton = FORMATS[fmt]
        torch.manual_seed(self.seed)
        self.net = self.build_net().to(self.device)
        path = self.pretrained_path()
        if path:
            self.backbone_init = load_imagenet(self.net.backbone, path)
        else:
            self.backbone_init = {"id": "scratch", "label": "random initialisation (no ImageNet weights)"}

    def pretrained_path(self) -> str | None:
        """``backbone.pretrained`` (or the older top-level ``pretrained``): a local ImageNet HRNet file."""
        nested = (self.cfg.get("backbone") or {}).get("pretrained")
        flat = self.cfg.get("pretrained")
        if nested and flat and str(nested) != str(flat):
            raise ValueError(f"both backbone.pretrained={nested!r} and pretrained={flat!r} are set; use backbone.pretrained")
        return nested or flat or None

    def provenance(self) -> dict[str, dict]:
        """Comparability-relevant choices for the run record: backbone init and checkpoint selection."""
        base = getattr(super(), "provenance", None)
        out = dict(base()) if callable(base) else {}
        out["backbone_init"] = dict(self.backbone_init)
        sel = getattr(self, "checkpoint_selection", None)
        if sel is not None:
            out["checkpoint_selection"] = dict(sel)
        return out

    def components(self) -> dict[str, nn.Module]:
        return {"model": self.net}

    def gmacs(self) -> dict[str, float]:
        """GMACs (fvcore; conv/linear/BN multiply-adds) of one forward per component at batch 1."""
        return {k: _fvcore_gmacs(fn, inputs, self.net) for k, (fn, inputs) in self.gmac_examples().items()}

    def gmac_examples(self) -> dict[str, tuple]:
        w, h = self.input_size
        return {"backbone_head": (lambda x: self.net.head(self.net.backbone(x)), (torch.zeros(1, 3, h, w),))}

    def train_step_example(self, batch: int):
        """A callable running one optimiser step on random crops of ``batch`` samples (benchmarks)."""
        (w, h), (hw, hh) = self.input_size, self.heatmap_size
        dev, k = self.device, self.num_keypoints
        data = {"img": torch.randn(batch, 3, h, w, device=dev), "target": torch.rand(batch, k, hh, hw, device=dev),
                "target_weight": torch.ones(batch, k, device=dev),
                "keypoints_hm": torch.rand(batch, k, 2, device=dev) * torch.tensor([hw - 1.0, hh - 1.0], device=dev)}
        opt = torch.optim.Adam(self.net.parameters(), lr=1e-4)

        def step() -> None:
            self.net.train()
            loss, _ = self.net.loss(data)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return step

    # -- training ---------------------------------------------------------------------------
    def fit(self, dataset: Any, validate: Scorer | None = None) -> None:
        """Train on ``dataset.instances('train')`` (a :class:`PoseDataset`).

        ``validate(predict) -> (name, value)`` scores the weights for the best-checkpoint selection
        (``train.save_best``); required when that selection runs (it is checked before training).
        """
        if self.backbone_init["id"] == "scratch" and self.cfg["arch"] != "tiny":
            # the MMPose / HRNet recipe starts from ImageNet weights; a paper-size run without them is not comparable
            log.warning("%s: HRNet-%s trained from scratch (backbone.pretrained not set; the recipe uses ImageNet "
                        "weights, e.g. hrnet_w32-36af842e.pth) -> provenance backbone_init: scratch",
                        self.registry_name, self.cfg["arch"])
        if getattr(dataset, "fmt", self.fmt) != self.fmt:
            log.info("switching keypoint format %s -> %s for dataset %s", self.fmt, dataset.fmt, dataset.name)
            self.cfg["keypoint_format"] = dataset.fmt
            self._set_format(dataset.fmt)
        if "train" not in getattr(dataset, "splits", {"train": None}):
            raise ValueError(f"dataset {dataset.name!r} has no train split (its train annotation file is missing); "
                             "to evaluate saved or released weights pass checkpoint=PATH")
        tcfg = dict(self.cfg["train"])
        select_best = BestCheckpoint.wanted(self, dataset, tcfg, validate)  # no scorer: fails here, before any work
        aug = self.cfg.get("aug")
        if aug is not None:
            aug = {k: (tuple(v) if isinstance(v, list) else dict(v) if hasattr(v, "keys") else v)
                   for k, v in dict(aug).items()}
        tds = dataset.top_down_dataset("train", self.input_size, self.heatmap_size, self.sigma_hm,
                                       train=True, aug=aug, seed=self.seed)
        bs = int(tcfg["batch_size"])
        steps = stage_steps(tcfg["total_steps"], lambda: max(1, int(tcfg["epochs"]) * len(tds) // bs), "train.total_steps")
        opt = torch.optim.Adam(self.net.parameters(), lr=float(tcfg["lr"]))
        sched = make_lr_scheduler(opt, tcfg, steps)
        gen = torch.Generator(device=self.device).manual_seed(self.seed)

        def step_fn(batch, step):
            self.net.train()
            batch = {k: (v.to(self.device) if torch.is_tensor(v) else v) for k, v in batch.items()}
            return self.net.loss(batch, gen)

        ckpt = (self.workdir / f"{self.registry_name}_train") if self.workdir is not None else None
        selector = BestCheckpoint.from_config(self, dataset, tcfg, score=validate, steps_per_epoch=max(1, len(tds) // bs),
                                              total_steps=steps, ckpt_dir=ckpt) if select_best else None
        self.train_state = train(modules={"model": self.net}, optimizer=opt, dataset=tds, batch_size=bs,
                                 total_steps=steps, step_fn=step_fn, ckpt_dir=ckpt, seed=self.seed,
                                 desc=self.registry_name, lr_scheduler=sched, grad_clip=tcfg.get("grad_clip"),
                                 ckpt_every=int(tcfg["ckpt_every"]),
                                 on_step=selector.on_step if selector is not None else None,
                                 generators={"noise": gen})  # checkpointed: resume draws the same noise
        if selector is not None:
            self.checkpoint_selection = selector.restore_best()
        self.net.eval()

    # -- inference --------------------------------------------------------------------------
    def crops(self, images: Sequence[np.ndarray], boxes) -> tuple[torch.Tensor, list]:
        """Affine crops ``[B, 3, H, W]`` of COCO xywh ``boxes`` (padding 1.25) and their (centre, scale)."""
        aspect = self.input_size[0] / self.input_size[1]
        out, cs = [], []
        for img, box in zip(images, np.asarray(boxes, dtype=np.float64).reshape(-1, 4)):
            c, s = box_to_center_scale(box, aspect)
            out.append(normalize_image(warp_image(np.asarray(img), get_warp_matrix(c, s, 0.0, self.input_size), self.input_size)))
            cs.append((c, s))
        return torch.stack(out) if out else torch.zeros(0, 3, self.input_size[1], self.input_size[0]), cs

    def _sampling_net(self) -> nn.Module:
        """The network as inference calls it (DiffusionPose: bf16 networks when ``precision: bf16``)."""
        return self.net

    @torch.inference_mode()
    def heatmaps(self, x: torch.Tensor, steps: int | None = None, flip: bool | None = None) -> torch.Tensor:
        """Heatmaps ``[B, K, h, w]`` of normalised crops, with the flip test when enabled."""
        self.net.eval()
        flip = self.cfg["flip_test"] if flip is None else flip
        steps = self.default_steps if steps is None else steps
        x = x.to(self.device)
        net = self._sampling_net()
        hm = net.heatmaps(x, steps)
        if flip:
            hf = net.heatmaps(x.flip(-1), steps)
            hm = (hm + flip_heatmaps(hf, self.flip_pairs, shift=self.cfg["shift_heatmap"])) / 2
        return hm

    @torch.inference_mode()
    def predict(self, images: Sequence[np.ndarray], boxes, steps: int | None = None, flip: bool | None = None,
                batch_size: int = 64) -> torch.Tensor:
        """Images (``HxWx3`` uint8 RGB) + COCO xywh boxes ``[B, 4]`` -> keypoints ``[B, K, 3]`` (x, y, score)."""
        out = []
        for i in range(0, len(images), batch_size):
            x, cs = self.crops(images[i:i + batch_size], np.asarray(boxes)[i:i + batch_size])
            hm = self.heatmaps(x, steps, flip).float().cpu()
            xy, score = decode_heatmaps(hm, self.cfg["refine"])
            xy_in = xy.numpy() * np.array([self.input_size[0] / hm.shape[-1], self.input_size[1] / hm.shape[-2]])
            for j, (c, s) in enumerate(cs):
                img_xy = crop_to_image(xy_in[j], c, s, self.input_size)
                out.append(np.concatenate([img_xy, score[j].numpy()[:, None]], axis=1))
        return torch.from_numpy(np.stack(out).astype(np.float32)) if out else torch.zeros(0, self.num_keypoints, 3)

    # -- checkpoints ------------------------------------------------------------------------
    def load_checkpoint(self, path: str | Path) -> None:
        """Load a checkpoint written by ``save_checkpoint`` (switching keypoint format if needed), or a
        released HRNet pose checkpoint (official / MMPose layout, see ``methods/common/hrnet_weights.py``:
        backbone and head are loaded, DiffusionPose's decoder keeps its initialisation)."""
        obj = load_checkpoint_file(path)
        flat = obj.get("state_dict", obj) if isinstance(obj, dict) else obj
        if isinstance(flat, dict) and is_official_layout(flat):  # released HRNet / MMPose weights
            state = convert_official(flat)
            k = state["head.final_layer.weight"].shape[0] if "head.final_layer.weight" in state else self.num_keypoints
            if k != self.num_keypoints:
                self.cfg["keypoint_format"] = "mpii" if k == 16 else "coco"
                self._set_format(self.cfg["keypoint_format"])
            missing, unexpected = self.net.load_state_dict(state, strict=False)
            if unexpected or any(m.startswith(("backbone.", "head.")) for m in missing):
                raise ValueError(f"{path}: official checkpoint does not fit (missing {missing[:3]}, unexpected {unexpected[:3]})")
            log.info("loaded official HRNet weights from %s (%d tensors; not in it: %s)", path, len(state),
                     sorted({m.split('.')[0] for m in missing}) or "none")
            self.net.eval()
            return
        fmt = (obj.get("cfg") or {}).get("keypoint_format") if isinstance(obj, dict) else None
        if fmt and fmt != self.fmt:
            self.cfg["keypoint_format"] = fmt
            self._set_format(fmt)
        super().load_checkpoint(path)
        self.net.eval()
