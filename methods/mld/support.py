"""MLD helpers kept out of ``method.py``: dataset access, GMACs (fvcore), demo rendering."""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evaluators.datasets.motion.humanml3d import recover_from_ric
from evaluators.datasets.motion.render import render_motion
from methods.mld.data import condition_of, motion_of

log = logging.getLogger(__name__)


def _call_split(fn, split: str):
    params = inspect.signature(fn).parameters
    return fn(split=split) if "split" in params else fn(split)


def dataset_parts(dataset: Any, condition: str, split: str = "train") -> tuple[Any, Any, Any, int]:
    """-> (map-style training items, Mean or None, Std or None, number of action classes).

    Accepts a dataset object exposing ``torch_dataset(split)`` (the evaluators' dataset API)
    or any map-style dataset of item dicts (see ``methods/mld/data.py``).
    """
    if hasattr(dataset, "torch_dataset"):  # MotionTextDataset API: raw features, we normalise ourselves
        fn = dataset.torch_dataset
        params = inspect.signature(fn).parameters
        base = fn(split, normalise=False) if "normalise" in params else _call_split(fn, split)
    else:
        base = dataset
    mean = getattr(dataset, "mean", None)
    std = getattr(dataset, "std", None)
    if callable(mean):
        mean, std = mean(), std()
    mean = None if mean is None else np.asarray(mean, dtype=np.float32).reshape(-1)
    std = None if std is None else np.asarray(std, dtype=np.float32).reshape(-1)
    nclasses = 0
    if condition == "action":
        for attr in ("num_classes", "nclasses", "n_classes"):
            if getattr(dataset, attr, None):
                nclasses = int(getattr(dataset, attr))
                break
        else:
            names = getattr(dataset, "classes", None) or getattr(dataset, "action_names", None)
            if names:
                nclasses = len(names)
            else:
                nclasses = 1 + max(int(condition_of(base[i], "action")) for i in range(len(base)))
    return base, mean, std, nclasses


def load_stats(stats_dir) -> tuple[np.ndarray, np.ndarray]:
    """``Mean.npy`` / ``Std.npy`` of a dataset folder (HumanML3D layout) as float32 [D]."""
    d = Path(stats_dir)
    paths = [d / "Mean.npy", d / "Std.npy"]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"mld stats_dir: missing {missing} (the dataset's Mean.npy/Std.npy)")
    return tuple(np.load(p).astype(np.float32).reshape(-1) for p in paths)


def _sdpa_macs(inputs, outputs) -> int:
    """fvcore handle: MACs of ``scaled_dot_product_attention`` (QKᵀ and AV), [B, h, L, e]."""
    from fvcore.nn.jit_handles import get_shape  # lazy: fvcore (model cards, benchmarks) is heavy to import

    q, k = get_shape(inputs[0]), get_shape(inputs[1])
    batch = int(np.prod(q[:-2]))
    return 2 * batch * q[-2] * k[-2] * q[-1]


def count_gmacs(method, frames: int = 196) -> dict[str, float]:
    """GMACs (fvcore) of one denoiser forward at batch 1, of one VAE decode of ``frames``
    frames, and of a default generation (CFG doubles the denoiser batch; ``steps`` passes)."""
    from fvcore.nn import FlopCountAnalysis  # lazy: fvcore (model cards, benchmarks) is heavy to import

    den, vae = method.denoiser.eval(), method.vae.eval()
    n, d = vae.latent_size, vae.latent_dim
    z = torch.zeros(1, n, d, device=method.device)
    if method.condition == "text":
        cond = torch.zeros(1, 1, den.text_encoded_dim, device=method.device)
    else:
        cond = torch.zeros(1, dtype=torch.long, device=method.device)
    handles = {"aten::scaled_dot_product_attention": _sdpa_macs}

    def macs(model, inputs) -> float:
        fca = FlopCountAnalysis(model, inputs).set_op_handle(**handles)
        fca.unsupported_ops_warnings(False)
        fca.uncalled_modules_warnings(False)
        return fca.total() / 1e9

    with torch.no_grad():
        g_den = macs(den, (z, torch.tensor([10], device=method.device), cond))
        g_dec = macs(_Decode(vae, frames), (z,))
    steps = int(method.diff_cfg["steps"])
    return {"denoiser_step": g_den, f"vae_decode_{frames}f": g_dec, f"generate_{steps}steps_cfg": 2 * steps * g_den + g_dec}


class _Decode(torch.nn.Module):
    def __init__(self, vae, frames: int) -> None:
        super().__init__()
        self.vae, self.frames = vae, frames

    def forward(self, z):
        return self.vae.decode(z, torch.tensor([self.frames], device=z.device))


def features_to_joints(feats: np.ndarray) -> np.ndarray | None:
    """HumanML3D / KIT features ``[T, 263|251]`` -> joints ``[T, J, 3]`` (None if not such features)."""
    width = feats.shape[-1]
    if width not in (263, 251):
        return None
    return np.asarray(recover_from_ric(feats, 22 if width == 263 else 21))


def render_demo(method, out_dir: Path, base, n: int | None = None, kinematic_chain=None,
                class_names=None) -> list[Path]:
    """Generate ``n`` samples for captions of the training items and write stick-figure GIFs.

    Uses ``evaluators.datasets.motion.render.render_motion`` (rendering is a convenience, not a metric).
    """
    n = int(method.cfg["render"]["n"] if n is None else n)
    if n <= 0 or len(base) == 0:
        return []
    items = [base[i] for i in range(min(n, len(base)))]
    conds = [condition_of(it, method.condition) for it in items]
    lengths = [len(motion_of(it)) for it in items]
    motions = method.generate(conds, lengths)
    paths = []
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fps = float(method.cfg["render"]["fps"])
    for i, (c, m, L) in enumerate(zip(conds, motions.numpy(), lengths)):
        joints = m[:L] if m.ndim == 3 else features_to_joints(m[:L])
        if joints is None:
            log.info("mld: cannot turn %d-d features into joints; not rendering", m.shape[-1])
            return paths
        path = out_dir / f"sample_{i:02d}.gif"
        title = str(class_names[c]) if class_names is not None and isinstance(c, int) else str(c)
        try:
            render_motion(joints, path, title=title, kinematic_chain=kinematic_chain, fps=fps)
        except (ValueError, TypeError) as exc:  # e.g. a skeleton the renderer does not know: not fatal
            log.warning("mld: could not render the demo samples (%s)", exc)
            return paths
        paths.append(path)
    log.info("mld: wrote %d demo GIFs to %s", len(paths), out_dir)
    return paths
