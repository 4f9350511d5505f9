"""Train a T2M evaluator with the official contrastive recipe, cached under ``cache_root()/evaluators``.

Recipe (T2M ``train_tex_mot_match.py``, ``networks/trainers.py`` TextMotionMatchTrainer,
``options/train_options.py`` TrainTexMotMatchOptions):

- batch 32 (drop_last), one random caption per motion, official length cropping;
- motions normalised with the evaluator mean/std;
- loss = contrastive(text, motion, label 0) + contrastive(text, motion shifted by a random
  ``shift`` in ``[0, B-1)``, label 1), margin 10 (``negative_margin``);
- Adam lr 1e-4 for the text and motion encoders, grad-norm clip 0.5 per network;
- movement encoder: the official recipe pretrains it as a conv autoencoder
  (``train_decomp_v3.py`` / DecompTrainerV3: L1 reconstruction of all D channels from the
  D-4 input + 0.001 sparsity + 0.001 smoothness of the latents, Adam; official windows of 40
  frames at batch 128, here the matching-loss crops at ``batch_size``) and freezes it. ``movement_pretrain_steps > 0`` does that here; with 0 the movement
  encoder is trained jointly with the matching loss instead (a deviation, cheaper for smoke).
- the official run keeps the checkpoint with the lowest validation loss (``finest.tar``); we
  train a fixed number of steps (``steps``) and keep the last one.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from evaluators.core.safe_load import CheckpointError
from evaluators.core.seeding import numerics_fingerprint, rng_neutral
from evaluators.datasets.cache import cache_key, entry_lock, trained_entry
from evaluators.networks.t2m_data import T2MSplit, crop_like_official, pad_batch, t2m_split
from evaluators.networks.t2m_evaluator import T2MEvaluator, evaluator_config, evaluator_std
from evaluators.networks.t2m_modules import ContrastiveLoss, MovementConvDecoder
from evaluators.networks.word_vectors import PROJECTION_SEED

log = logging.getLogger(__name__)

DEFAULTS = {"steps": 2000, "batch_size": 32, "lr": 1e-4, "margin": 10.0, "movement_pretrain_steps": 0,
            "movement_lr": 1e-4, "grad_clip": 0.5, "seed": 0, "config_overrides": {}}


def data_digest(motions, captions=None) -> str:
    """sha256 of the training motions' float32 bytes (and captions): part of the cache key."""
    h = hashlib.sha256()
    for m in motions:
        h.update(np.ascontiguousarray(m, dtype=np.float32).tobytes())
    for caps in captions or []:
        h.update("\x1f".join(caps).encode())
    return h.hexdigest()[:16]


def _stats(split: T2MSplit, data: Any, joints_num: int, dim: int):
    mean, std = getattr(data, "mean", None), getattr(data, "std", None)
    if mean is not None and std is not None and np.shape(mean)[-1] == dim:
        std = np.asarray(std, np.float64)
        std = evaluator_std(std, joints_num) if dim in (263, 251) else std
        return np.asarray(mean, np.float64), np.maximum(std, 1e-6)  # a constant channel must not divide by 0
    allf = np.concatenate(split.motions, axis=0).astype(np.float64)
    return allf.mean(0), np.maximum(allf.std(0), 1e-3)


def _batch(split: T2MSplit, ev: T2MEvaluator, rng: np.random.Generator, bs: int):
    idx = rng.choice(len(split), bs, replace=len(split) < bs)
    crops, lens, caps = [], [], []
    for i in idx:
        m, n = crop_like_official(split.motions[i], rng, ev.cfg.unit_length, ev.cfg.max_motion_length)
        crops.append(m)
        lens.append(n)
        caps.append(split.caption_input(int(i), int(rng.integers(len(split.captions[i])))))
    motions = ev.normalize(torch.from_numpy(pad_batch(crops, ev.cfg.max_motion_length)), lens)
    return motions, torch.tensor(lens), ev.text_inputs(caps)


def _pretrain_movement(ev: T2MEvaluator, split: T2MSplit, steps: int, lr: float, bs: int, rng) -> None:
    # official DecompTrainerV3: the encoder sees motions[..., :-4], the decoder reconstructs all D
    # channels; L1 + 0.001 sparsity + 0.001 smoothness of the latents; Adam, no clipping
    dec = MovementConvDecoder(ev.cfg.dim_movement_latent, ev.cfg.dim_movement_enc_hidden, ev.cfg.dim_pose)
    dec.to(ev.device)
    opt = torch.optim.Adam(list(ev.movement_encoder.parameters()) + list(dec.parameters()), lr=lr)
    for step in range(steps):
        motions, _, _ = _batch(split, ev, rng, bs)
        z = ev.movement_encoder(motions[..., :-4])
        loss = (nn.functional.l1_loss(dec(z), motions) + 0.001 * z.abs().mean()
                + 0.001 * nn.functional.l1_loss(z[:, 1:], z[:, :-1]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0:
            log.info("movement AE step %d loss %.4f", step, loss.item())


def fit_evaluator(ev: T2MEvaluator, split: T2MSplit, *, steps: int, batch_size: int = 32, lr: float = 1e-4,
                  margin: float = 10.0, movement_pretrain_steps: int = 0, movement_lr: float = 1e-4,
                  grad_clip: float = 0.5, seed: int = 0) -> list[float]:
    """Train ``ev`` in place on ``split``; returns the loss per step."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    if movement_pretrain_steps > 0:
        _pretrain_movement(ev, split, movement_pretrain_steps, movement_lr, batch_size, rng)
    joint = movement_pretrain_steps <= 0
    groups = [ev.text_encoder, ev.motion_encoder] + ([ev.movement_encoder] if joint else [])
    opts = [torch.optim.Adam(m.parameters(), lr=lr) for m in groups]
    crit = ContrastiveLoss(margin)
    losses = []

    for _ in tqdm(range(steps), desc="t2m-evaluator", disable=steps < 50, leave=False):
        ev.train()
        if not joint:
            ev.movement_encoder.eval()
        motions, lens, (w, p, cl) = _batch(split, ev, rng, batch_size)
        if joint:
            mot = ev.motion_embedding_normalized(motions, lens)
        else:
            with torch.no_grad():
                movements = ev.movement_encoder(motions[:, :, :-4])
            mot = ev.motion_encoder(movements, (lens // ev.cfg.unit_length).clamp(min=1))
        txt = ev.text_encoder(w, p, cl)
        b = txt.shape[0]
        shift = int(rng.integers(0, b - 1))  # official: np.random.randint(0, batch_size-1)
        neg_idx = torch.as_tensor(np.arange(shift, b + shift) % b)
        loss = crit(txt, mot, torch.zeros(b)) + crit(txt, mot[neg_idx], torch.ones(b))
        for o in opts:
            o.zero_grad()
        loss.backward()
        for m in groups:
            nn.utils.clip_grad_norm_(m.parameters(), grad_clip)
        for o in opts:
            o.step()
        losses.append(float(loss.item()))
    ev.eval()
    return losses


# the caller's python / numpy / torch generators are left as they were: a run whose evaluator is
# trained here (cache miss) and one that loads it from the cache then draw the same generation
# noise (a resumed run loads the evaluator the uninterrupted run trained, and must end bit-identical)
@rng_neutral()
def train_evaluator(dataset: Any, *, split: str = "train", cache: bool = True, config: str | None = None,
                    **kwargs) -> T2MEvaluator:
    """Train (or load from cache) an evaluator for ``dataset``, cached at
    ``cache_root()/evaluators/<key>-<kernel id>.pt`` (:func:`~evaluators.datasets.cache.trained_entry`).

    ``kwargs`` override :data:`DEFAULTS` (steps, batch_size, lr, margin, movement_pretrain_steps,
    seed, config_overrides). The cache key hashes the hyperparameters, the word-vector source,
    the training data (names, shapes and a checksum of the motions and captions) and what else
    changes the trained weights (:func:`~evaluators.core.seeding.numerics_fingerprint`: torch
    version, thread count, CPU ISA); the file name adds how this machine's kernels round.
    """
    hp = {**DEFAULTS, **kwargs}
    tr = t2m_split(dataset, split)
    dim = tr.dim
    cfg = evaluator_config(config or dim, **hp["config_overrides"])
    if cfg.dim_pose != dim:
        raise ValueError(f"evaluator config {cfg.dataset} expects {cfg.dim_pose}-d motions, data has {dim}")
    key = cache_key("t2m_evaluator", getattr(dataset, "name", type(dataset).__name__), len(tr), dim,
                    data_digest(tr.motions, tr.captions), hp, f"minilm-proj-{PROJECTION_SEED}",
                    numerics_fingerprint())
    if not cache:
        return _train(tr, dataset, cfg, hp, key)
    path = trained_entry("evaluators", key)
    with entry_lock(path):  # a second process missing this entry waits here, then loads it
        if path.exists():
            log.info("loading cached evaluator %s", path)
            try:
                return T2MEvaluator.load(path)
            except (CheckpointError, KeyError) as e:  # a damaged cache entry: rebuild it, one line
                log.warning("cached evaluator unusable (%s): retraining it", e)
        ev = _train(tr, dataset, cfg, hp, key)
        ev.save(path)
    return ev


def _train(tr: T2MSplit, dataset: Any, cfg, hp: dict, key: str) -> T2MEvaluator:
    """A fresh evaluator for ``cfg`` trained on ``tr`` with the hyperparameters ``hp``; ``key`` goes into its meta."""
    mean, std = _stats(tr, dataset, cfg.joints_num, tr.dim)
    torch.manual_seed(hp["seed"])  # the initial weights depend on the seed only
    ev = T2MEvaluator(cfg, mean=mean, std=std)
    losses = fit_evaluator(ev, tr, steps=hp["steps"], batch_size=hp["batch_size"], lr=hp["lr"], margin=hp["margin"],
                           movement_pretrain_steps=hp["movement_pretrain_steps"], movement_lr=hp["movement_lr"],
                           grad_clip=hp["grad_clip"], seed=hp["seed"])
    ev.meta = {"source": "trained", "word_vectors": "minilm", "cache_key": key, "hparams": hp,
               "final_loss": losses[-1] if losses else None, "train_samples": len(tr)}
    return ev
