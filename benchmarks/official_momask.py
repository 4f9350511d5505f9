"""The authors' MoMask modules beside the suite's, at the same shapes and weights, for the side-by-side benchmark.

The official code (EricGuo5513/momask-codes) is never vendored: the user points
``MOTIONREPRO_OFFICIAL_MOMASK`` at a local checkout and its ``models`` package is imported from
there. Only the modules the timed workloads call are imported (``models.vq.model``,
``models.mask_transformer.transformer``); their one unused import, ``clip`` (loaded in the
constructors for text encoding), is stubbed when it is not installed, because both sides take the
same precomputed 512-d sentence vectors: the text encoder is not part of what is timed.

Both sides get the SAME weights: random official modules, converted into the suite's with
:mod:`methods.momask.convert` (the path that loads the released checkpoints), so the workloads do
the same arithmetic on the same numbers (checked by :func:`same_logits`).

Workloads (paper shapes: HumanML3D, 196 frames = 49 tokens, 6 RVQ layers, 8-layer transformers):

- ``sample``: what ``gen_t2m.py`` runs per batch: ``MaskTransformer.generate`` (10 iterations,
  CFG 4, top-k 0.9, categorical), ``ResidualTransformer.generate`` (5 layers, CFG 5) and
  ``RVQVAE.forward_decoder``; the suite's ``MoMask.generate`` (same steps, de-normalised output).
- ``train``: one masked-transformer step as ``MaskTransformerTrainer.update`` runs it
  (``models/mask_transformer/transformer_trainer.py:38-65``): frozen RVQ encode, BERT masking,
  forward, CE, backward, AdamW; the suite's ``bench.train_step_example``. Same math: the authors'
  ``train_t2m_transformer.py:64`` turns on ``torch.autograd.set_detect_anomaly(True)``, an overhead
  of their script, not of the step; ``anomaly=True`` reproduces it for the "as run" number.
"""

from __future__ import annotations

import os
import sys
import types
from argparse import Namespace
from pathlib import Path

import torch
from torch import nn

from evaluators.core.config import load_config
from methods.momask.bench import train_step_example
from methods.momask.convert import convert_tokenizer, convert_transformer
from methods.momask.method import MoMask

ENV = "MOTIONREPRO_OFFICIAL_MOMASK"
CLIP_DIM = 512  # CLIP ViT-B/32 sentence features, as the released weights expect
FRAMES = 196    # HumanML3D max_motion_length; 49 tokens after the 4x downsampling
D_IN = 263      # HumanML3D feature width


def official_root() -> tuple[Path | None, str]:
    """(checkout, "") when ``$MOTIONREPRO_OFFICIAL_MOMASK`` names a momask-codes checkout, else (None, reason)."""
    raw = os.environ.get(ENV)
    if not raw:
        return None, f"{ENV} is not set (a local checkout of EricGuo5513/momask-codes)"
    root = Path(raw).expanduser()
    need = root / "models" / "mask_transformer" / "transformer.py"
    if not need.is_file():
        return None, f"{ENV}={raw}: no {need.relative_to(root)} there (not a momask-codes checkout)"
    return root, ""


class _NoText(nn.Module):
    """Stands in for the CLIP model the official constructors load (text is encoded outside the timing)."""


def _stub_clip() -> None:
    """Register a ``clip`` module when the OpenAI package is absent: the constructors only call ``clip.load``."""
    try:
        import clip  # noqa: F401  (lazy: the authors' optional dependency; used as is when installed)
        return
    except ImportError:
        pass
    mod = types.ModuleType("clip")
    mod.load = lambda *a, **k: (_NoText(), None)
    mod.tokenize = lambda *a, **k: None
    sys.modules["clip"] = mod


def import_official(root: Path) -> Namespace:
    """The authors' ``RVQVAE``, ``MaskTransformer`` and ``ResidualTransformer`` classes from ``root``."""
    _stub_clip()
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    # lazy: the authors' package exists only in the user's checkout
    from models.mask_transformer.transformer import MaskTransformer, ResidualTransformer
    from models.vq.model import RVQVAE  # lazy: as above
    return Namespace(RVQVAE=RVQVAE, MaskTransformer=MaskTransformer, ResidualTransformer=ResidualTransformer)


def _opt(c: dict) -> Namespace:
    t = c["tokenizer"]
    return Namespace(num_tokens=t["nb_code"], num_quantizers=t["num_quantizers"], shared_codebook=False,
                     quantize_dropout_prob=t["quantize_dropout_prob"], mu=t["mu"], device=torch.device("cpu"))


class Pair:
    """The official modules and a suite :class:`MoMask` with the same (random) weights, paper scale."""

    def __init__(self, root: Path, batch: int, seed: int = 0) -> None:
        cls = import_official(root)
        cfg = load_config("method", "momask", "paper")
        cfg["text_encoder"] = {"kind": "clip", "clip_path": None, "dim": CLIP_DIM}
        c, self.batch = cfg, batch
        t, m, r = c["tokenizer"], c["mask_transformer"], c["residual_transformer"]
        opt = _opt(c)
        torch.manual_seed(seed)
        self.vq = cls.RVQVAE(opt, D_IN, t["nb_code"], t["code_dim"], t["code_dim"], t["down_t"], 2, t["width"],
                             t["depth"], t["dilation_growth_rate"], "relu", None).eval()
        self.mt = cls.MaskTransformer(code_dim=t["code_dim"], cond_mode="text", latent_dim=m["latent_dim"],
                                      ff_size=m["ff_size"], num_layers=m["num_layers"], num_heads=m["num_heads"],
                                      dropout=m["dropout"], clip_dim=CLIP_DIM, cond_drop_prob=m["cond_drop_prob"],
                                      clip_version="ViT-B/32", opt=opt)
        self.rt = cls.ResidualTransformer(code_dim=t["code_dim"], cond_mode="text", latent_dim=r["latent_dim"],
                                          ff_size=r["ff_size"], num_layers=r["num_layers"], num_heads=r["num_heads"],
                                          dropout=r["dropout"], clip_dim=CLIP_DIM, cond_drop_prob=r["cond_drop_prob"],
                                          share_weight=r["share_weight"], clip_version="ViT-B/32", opt=opt)
        self.cond = torch.randn(batch, CLIP_DIM)
        self.captions = [f"a person walks forward {i} steps and then waves" for i in range(batch)]
        table = dict(zip(self.captions, self.cond))
        for mod in (self.mt, self.rt):  # precomputed sentence vectors instead of CLIP (not timed on either side)
            mod.encode_text = lambda texts: torch.stack([table[s] for s in texts])
        self.suite = _suite(cfg, self.vq, self.mt, self.rt, table)
        self.sampler = c["sampler"]

    # -- sampling --------------------------------------------------------------------------------------
    def official_sample(self) -> torch.Tensor:
        """``gen_t2m.py`` lines 179-185: mask generate, residual generate, RVQ decoder."""
        s, lens = self.sampler, torch.full((self.batch,), FRAMES // 4, dtype=torch.long)
        ids = self.mt.generate(self.captions, lens, timesteps=int(s["iterations"]), cond_scale=s["cond_scale"],
                               temperature=s["temperature"], topk_filter_thres=s["topk_thres"],
                               gsample=bool(s["gumbel"]))
        ids = self.rt.generate(ids, self.captions, lens, temperature=1, cond_scale=s["res_cond_scale"])
        with torch.no_grad():
            return self.vq.forward_decoder(ids)

    def suite_sample(self) -> torch.Tensor:
        return self.suite.generate(self.captions, [FRAMES] * self.batch)

    def _sample_with(self, switch: str) -> torch.Tensor:
        """The suite's sample with ``sampler.<switch>: true`` for this call only (an opt-in, not the default)."""
        self.suite.c["sampler"][switch] = True
        try:
            return self.suite.generate(self.captions, [FRAMES] * self.batch)
        finally:
            self.suite.c["sampler"][switch] = False

    def suite_sample_compiled(self) -> torch.Tensor:
        """``sampler.compile``: inductor, frozen weights."""
        return self._sample_with("compile")

    def suite_sample_fused(self) -> torch.Tensor:
        """``sampler.fused_encoder``: every encoder layer one call of torch's fused encoder-layer kernel
        (same math to 1e-5, no compilation)."""
        return self._sample_with("fused_encoder")

    def suite_sample_onednn(self) -> torch.Tensor:
        """``sampler.onednn_linear``: the encoder layers' products on oneDNN's packed linear (same math to
        1e-5; the weights are packed at the first call)."""
        return self._sample_with("onednn_linear")

    # -- training --------------------------------------------------------------------------------------
    def official_train_step(self, anomaly: bool = False):
        """A callable running ``MaskTransformerTrainer.update`` on random motions (lr/betas/decay of
        ``transformer_trainer.py:99``); ``anomaly`` = the script's ``set_detect_anomaly(True)``."""
        m = self.suite.c["mask_transformer"]
        opt = torch.optim.AdamW(self.mt.parameters(), betas=(0.9, 0.99), lr=m["lr"], weight_decay=1e-5)
        motion = torch.randn(self.batch, FRAMES, D_IN)
        lens = torch.full((self.batch,), FRAMES, dtype=torch.long)
        self.mt.train()

        def step() -> None:
            with torch.autograd.set_detect_anomaly(anomaly):
                code_idx, _ = self.vq.encode(motion)  # the trainer runs it with grad enabled, as here
                loss, _, _ = self.mt(code_idx[..., 0], self.captions, lens // 4)
                opt.zero_grad()
                loss.backward()
                opt.step()

        return step

    def suite_train_step(self, onednn: bool = False):
        """The suite's masked-transformer step (``onednn``: with ``mask_transformer.onednn_linear: true``)."""
        step = train_step_example(self.suite, self.batch)
        if not onednn:
            return step

        def with_onednn() -> None:
            self.suite.c["mask_transformer"]["onednn_linear"] = True
            try:
                step()
            finally:
                self.suite.c["mask_transformer"]["onednn_linear"] = False

        return with_onednn


class _Features(nn.Module):
    """Text-encoder stand-in of the suite: the same precomputed vectors as the official side."""

    dim = CLIP_DIM

    def __init__(self, table: dict[str, torch.Tensor]) -> None:
        super().__init__()
        self.table = table

    def encode(self, captions: list[str]) -> torch.Tensor:
        return torch.stack([self.table[c] for c in captions])


def _suite(cfg: dict, vq, mt, rt, table) -> MoMask:
    """Suite MoMask at paper scale holding the official modules' weights (released-checkpoint conversion)."""
    s = MoMask(cfg, device="cpu", seed=0)
    s._text = _Features(table)
    s.vq.load_state_dict(convert_tokenizer(vq.state_dict()), strict=True)
    s.mtrans.load_state_dict(convert_transformer(mt.state_dict()), strict=True)
    s.rtrans.load_state_dict(convert_transformer(rt.state_dict()), strict=True)
    for mod in s.components().values():
        mod.eval()
    return s


@torch.no_grad()
def same_logits(p: Pair) -> float:
    """Max |official - suite| of one guided masked-transformer forward on the same ids (the same math check)."""
    ids = torch.randint(0, p.mt.mask_id, (p.batch, FRAMES // 4))
    pad = torch.zeros_like(ids, dtype=torch.bool)
    p.mt.eval()
    ref = p.mt.forward_with_cond_scale(ids, p.cond, pad, cond_scale=p.sampler["cond_scale"]).permute(0, 2, 1)
    ours = p.suite.mtrans.cfg_logits(ids, p.cond[:, None], pad, None, p.sampler["cond_scale"])
    return float((ref - ours).abs().max())
