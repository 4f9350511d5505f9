"""The authors' MacDiff model beside the suite's, at the same shapes and weights, for the side-by-side benchmark.

The official code (``Wenrui-Shen/MacDiff`` at 692888f, the full copy of the authors' code; see
``methods/macdiff/README.md``) is never vendored: the user points ``MOTIONREPRO_OFFICIAL_MACDIFF``
at a local checkout and ``model.transformer_macdiff.Transformer`` is imported from there. That
module needs only torch and numpy (its ``guided_diffusion`` imports load without mpi4py or
blobfile), so no runtime shim is needed to import or run it. Its constructor prints its whole
1000-step loss-reweight table; that output is swallowed (``redirect_stdout``), nothing else
changes. The one monkeypatch is for the equivalence check only (:func:`same_loss`): the
official ``schedule_sampler`` draws t with numpy, the suite with torch, so for that check the
instance's sampler is swapped for one drawing t with ``torch.randint`` (restored afterwards)
so both sides consume the same torch random stream: t, eps, masking noise, condition dropout.

Both sides get the SAME weights: a seeded random official model whose ``state_dict`` is
loaded into the suite's :class:`MacDiff` through :meth:`MacDiff.load_state_any` (the path
that loads the released checkpoints, ``methods/macdiff/convert.py``), strictly.

Workloads (paper shapes, NTU-60 xsub pretraining config ``config/ntu60_xsub_joint/pretrain_madiff.yaml``:
120 frames x 25 joints, 750 tokens of width 256, encoder depth 8, decoder depth 5, 8 heads,
mask ratio 0.9 random masking, 1000 inverse-cosine steps, uncond 0.1, lambda_uni 0.02):

- ``train``: one pretraining optimiser step as ``engine_pretrain.train_one_epoch`` runs it:
  ``model(x, x_aug, mask_ratio=0.9, motion_aware_tau=-1)``, ``loss.item()``, backward, AdamW
  (``main_pretrain.py:203-204``: timm ``add_weight_decay`` groups, lr 1e-3, betas (0.9, 0.95),
  weight decay 0.05); the suite's step is the one ``MacDiff.pretrain`` runs (first person,
  normalise, ``MacDiffCore.loss``, the same AdamW groups). Same math: the authors' AMP autocast
  and ``GradScaler`` are CUDA features that switch themselves off on a CPU, and the grad norm
  their ``NativeScalerWithGradNormCount`` computes for logging is left out on both sides.
- ``denoise``: one denoising-decoder forward (no grad), what a sampler calls per DDIM step. The
  authors' code at 692888f has NO sampling or reconstruction call to time (``feeder_ntu_semi``
  calls a ``model.random_modify`` that no model defines), so only the per-step network is
  compared: ``Transformer.forward_decoder`` (condition dropout off, as a sampler conditions
  every row) against ``build_condition`` + ``MacDiffDecoder`` on the same encoder outputs.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import sys
from argparse import Namespace
from pathlib import Path

import torch

from evaluators.core.config import load_config
from methods.macdiff.convert import convert_official
from methods.macdiff.layout import fold_persons
from methods.macdiff.method import MacDiff
from methods.macdiff.model import build_condition

ENV = "MOTIONREPRO_OFFICIAL_MACDIFF"
MASK_RATIO = 0.9          # pretrain_madiff.yaml mask_ratio
MOTION_AWARE_TAU = -1.0   # pretrain_madiff.yaml motion_aware_tau: plain random masking
PERSONS = 2               # NTU windows carry two bodies; pretraining keeps the first (one_person=True)
JOINT_NOISE = 0.005       # pretrain_madiff.yaml joint_noise [1, 0.005]: the feeder's view, outside the step


def official_root() -> tuple[Path | None, str]:
    """(checkout, "") when ``$MOTIONREPRO_OFFICIAL_MACDIFF`` names a MacDiff checkout, else (None, reason)."""
    raw = os.environ.get(ENV)
    if not raw:
        return None, f"{ENV} is not set (a local checkout of the authors' MacDiff, Wenrui-Shen/MacDiff@692888f)"
    root = Path(raw).expanduser()
    need = root / "model" / "transformer_macdiff.py"
    if not need.is_file():
        return None, f"{ENV}={raw}: no {need.relative_to(root)} there (not a MacDiff checkout)"
    return root, ""


def import_official(root: Path) -> Namespace:
    """The authors' ``Transformer`` (``model/transformer_macdiff.py``) from the checkout at ``root``."""
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    # lazy: the authors' package exists only where the user checked it out
    from model.transformer_macdiff import Transformer

    return Namespace(Transformer=Transformer)


def official_kwargs(cfg: dict) -> dict:
    """Constructor arguments of the official model for the suite config ``cfg`` (paper scale:
    exactly ``model_args`` of ``pretrain_madiff.yaml``)."""
    m = cfg["model"]
    d = cfg["diffusion"]
    return dict(dim_in=3, dim_feat=m["dim_feat"], dim_t_embed=m["dim_t_embed"], depth=m["depth"],
                decoder_depth=m["decoder_depth"], num_heads=m["num_heads"], mlp_ratio=m["mlp_ratio"],
                num_frames=m["num_frames"], num_joints=m["num_joints"], patch_size=m["patch_size"],
                t_patch_size=m["t_patch_size"], qkv_bias=True, qk_scale=None, drop_rate=0.0, attn_drop_rate=0.0,
                drop_path_rate=0.0, diff_prediction="noise", diff_steps=d["steps"],
                diff_noise_schedule=[d["schedule"], d["tau"]], lambda_loss_uni=cfg["lambda_uni"],
                layer_mask_ratio=cfg["layer_mask_ratio"], uncond_ratio=cfg["uncond_ratio"],
                input_mean=list(cfg["input_mean"]), input_var=list(cfg["input_var"]))


def weight_decay_groups(named_params, weight_decay: float) -> list[dict]:
    """timm's ``add_weight_decay`` rule (``main_pretrain.py:203``): no decay for 1-D tensors and biases."""
    decay, no_decay = [], []
    for name, p in named_params:
        if p.requires_grad:
            (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    return [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": weight_decay}]


class Pair:
    """The official ``Transformer`` and a suite :class:`MacDiff` with the same (random) weights."""

    def __init__(self, root: Path, batch: int, seed: int = 0) -> None:
        cls = import_official(root)
        self.cfg = load_config("method", "macdiff", "paper")
        if self.cfg["mask_kind"] != "random" or float(self.cfg["mask_ratio"]) != MASK_RATIO:
            raise ValueError("the paper config no longer matches pretrain_madiff.yaml (random masking, ratio 0.9)")
        self.batch = batch
        torch.manual_seed(seed)
        with contextlib.redirect_stdout(io.StringIO()):  # the constructor prints its 1000-entry reweight table
            self.official = cls.Transformer(**official_kwargs(self.cfg))
        self.suite = MacDiff(self.cfg, device="cpu", seed=seed)
        self.suite.load_state_any(self.official.state_dict(), source="official Transformer")  # strict
        self.x, self.x_aug = inputs(self.cfg, batch, seed + 1)

    # -- training ------------------------------------------------------------------------------------
    def official_train_step(self):
        """A callable running one ``train_one_epoch`` iteration (AMP/scaler off, as on a CPU)."""
        p, m = self.cfg["pretrain"], self.official
        opt = torch.optim.AdamW(weight_decay_groups(m.named_parameters(), float(p["weight_decay"])),
                                lr=float(p["lr"]), betas=tuple(p["betas"]))

        def step() -> float:
            m.train()
            loss, _, _ = m(self.x, self.x_aug, mask_ratio=MASK_RATIO, motion_aware_tau=MOTION_AWARE_TAU)
            value = loss.item()
            loss.backward()
            opt.step()
            opt.zero_grad()
            return value

        return step

    def suite_train_step(self):
        """A callable running one step of ``MacDiff.pretrain`` (its ``step_fn``, backward, AdamW)."""
        p, core = self.cfg["pretrain"], self.suite.core
        opt = torch.optim.AdamW(self.suite._param_groups(float(p["weight_decay"])), lr=float(p["lr"]),
                                betas=tuple(p["betas"]))

        def step() -> float:
            core.train()
            loss, _ = suite_loss(core, self.x, self.x_aug)
            value = float(loss.detach())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return value

        return step

    # -- one denoising step (no authors' sampler exists to time) --------------------------------------
    def denoise_inputs(self, seed: int = 3) -> dict:
        """Encoder outputs of a masked view and a noisy window at a mid timestep, seeded."""
        g = torch.Generator().manual_seed(seed)
        enc = self.suite.core.encoder
        n, keep = self.batch, round(enc.tp * enc.vp * (1 - MASK_RATIO))
        ids_restore = torch.stack([torch.randperm(enc.tp * enc.vp, generator=g) for _ in range(n)])
        latent = torch.randn(n, keep, enc.dim_feat, generator=g)
        x_t = torch.randn(n, enc.num_frames, enc.num_joints, 3, generator=g)
        t = torch.full((n,), 500, dtype=torch.long)  # ours: any step costs the same
        return {"x_t": x_t, "t": t, "latent": latent, "ids_restore": ids_restore}

    def official_denoise(self, d: dict):
        m = self.official

        @torch.no_grad()
        def run() -> torch.Tensor:
            m.eval()
            saved, m.uncond_ratio = m.uncond_ratio, 0.0  # a sampler conditions every row
            try:
                return m.forward_decoder(d["x_t"], latent=d["latent"], cls_token=d["latent"].mean(1, keepdim=True),
                                         t=d["t"], ids_restore=d["ids_restore"])
            finally:
                m.uncond_ratio = saved

        return run

    def suite_denoise(self, d: dict):
        core = self.suite.core

        @torch.inference_mode()
        def run() -> torch.Tensor:
            core.eval()
            return core.decoder(d["x_t"], d["t"], build_condition(d["latent"], d["ids_restore"], core.fusion))

        return run


def inputs(cfg: dict, batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw NTU-like windows ``[B, 3, T, V, M]`` (per-axis mean/std of the pretraining set) and the
    feeder's jittered view of them, seeded."""
    m = cfg["model"]
    g = torch.Generator().manual_seed(seed)
    mean = torch.tensor(cfg["input_mean"]).view(1, 3, 1, 1, 1)
    std = torch.tensor(cfg["input_var"]).sqrt().view(1, 3, 1, 1, 1)
    x = mean + std * torch.randn(batch, 3, m["num_frames"], m["num_joints"], PERSONS, generator=g)
    return x, x + JOINT_NOISE * torch.randn(x.shape, generator=g)


def suite_loss(core, x: torch.Tensor, x_aug: torch.Tensor, contiguous: bool = False):
    """The loss of ``MacDiff.pretrain``'s ``step_fn`` (``methods/macdiff/method.py``) on one batch.

    ``contiguous``: the person fold leaves a strided view, and ``randn_like`` fills a strided
    tensor in memory order, so the suite's eps holds the same draws as the official one (which
    folds with ``.contiguous()``) at other positions; the equivalence check makes the normalised
    windows contiguous so both sides get the same eps (a layout change, not a change of math)."""
    r0 = fold_persons(x[..., :1])
    mu = core.shift(r0)
    x0, xa = core.normalise(r0, mu), core.normalise(fold_persons(x_aug[..., :1]), mu)
    if contiguous:
        x0, xa = x0.contiguous(), xa.contiguous()
    return core.loss(x0, xa, x_raw=r0)


class _TorchUniform:
    """t ~ U{0..T-1} drawn with ``torch.randint`` (the suite's draw), for the equivalence check."""

    def __init__(self, steps: int) -> None:
        self.steps = steps

    def sample(self, n: int, device):
        return torch.randint(0, self.steps, (n,), device=device), torch.ones(n, device=device)


def same_loss(p: Pair, batch: int = 4, seed: int = 5) -> dict:
    """Loss and gradients of both sides on the same inputs and the same t, eps, masking noise and
    condition dropout (small batch, fresh copies of the pair's weights, no optimiser step).

    Returns ``{"loss": (official, suite), "max_rel_grad_gap": float}``: the gradient gap is the
    largest ``max|g_off - g_suite| / max|g_off|`` over all parameters (names through the checkpoint
    conversion)."""
    off, core = copy.deepcopy(p.official), copy.deepcopy(p.suite.core)
    x, x_aug = inputs(p.cfg, batch, seed)
    off.schedule_sampler = _TorchUniform(off.diff_steps)  # instance attribute: the copy only
    torch.manual_seed(seed)
    off.train()
    with contextlib.redirect_stdout(io.StringIO()):  # their forward prints at random (np.random)
        loss_off, _, _ = off(x, x_aug, mask_ratio=MASK_RATIO, motion_aware_tau=MOTION_AWARE_TAU)
    loss_off.backward()
    torch.manual_seed(seed)
    core.train()
    loss_suite, _ = suite_loss(core, x, x_aug, contiguous=True)
    loss_suite.backward()
    g_off = {k: v.grad for k, v in off.named_parameters()}
    enc, dec, _ = convert_official(g_off)
    ours = {**{f"encoder.{k}": v for k, v in enc.items()}, **{f"decoder.{k}": v for k, v in dec.items()}}
    mine = {k: v.grad for k, v in core.named_parameters()}
    if ours.keys() != mine.keys():
        raise AssertionError(f"parameter sets differ: {sorted(ours.keys() ^ mine.keys())[:5]}")
    gap = max(float((ours[k] - mine[k]).abs().max() / ours[k].abs().max().clamp_min(1e-12)) for k in ours)
    return {"loss": (float(loss_off.detach()), float(loss_suite.detach())), "max_rel_grad_gap": gap}


@torch.no_grad()
def same_denoise(p: Pair) -> float:
    """Max |official - suite| of one denoising-decoder forward on the same inputs (same math check)."""
    d = p.denoise_inputs()
    return float((p.official_denoise(d)() - p.suite_denoise(d)()).abs().max())
