"""MoMask (Guo et al., CVPR 2024): residual VQ tokenizer + masked + residual transformers.

``fit`` trains the three stages in order through the shared loop
(:func:`methods.common.training.train`, resumable, seeded, DDP-ready; the stages and their
losses are in :mod:`methods.momask.training`); ``generate``
runs confidence-based iterative decoding of layer 0 with CFG, then the residual
transformer (one guided pass per residual layer), then the RVQ decoder, and returns
RAW (de-normalised) features ``[B, T, D]`` zero beyond each length.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

import methods.momask.bench as bench
import methods.momask.masking as M
from evaluators.core.io import atomic_torch_save
from evaluators.core.precision import LowPrecisionCache, check_precision, weights_fingerprint
from evaluators.provenance import sha256_file, sha256_text
from methods.base import Method
from methods.common.compile import CompiledOrEager
from methods.common.paper_needs import T2M_EVAL
from methods.common.text_encoders import resolve_text_encoder, text_encoder_entry
from methods.momask.convert import load_into
from methods.momask.text import TextEncoder, shared_text_encoder
from methods.momask.tokenizer import RVQVAE
from methods.momask.training import MoMaskTraining
from methods.momask.transformer import Encoder, MaskTransformer, ResidualTransformer
from methods.registry import register_method

log = logging.getLogger(__name__)


@register_method("momask")
class MoMask(MoMaskTraining, Method):
    """MotionGenerator + Reconstructor. Components: tokenizer, mask_transformer, residual_transformer."""

    task = "text2motion"
    checkpoint_accepts_dir = True  # the official release is a folder tree (convert.load_into)
    main_stage = "mask_transformer"
    precision_key = ("sampler", "precision")
    benchmark_steps = (1, 2, 5, 10, 18)
    speed_targets = (0.65, 0.80)  # ours: fraction of the fp32 matmul peak to reach (paper scale, CPU; batch 1, 32)
    paper_needs = """  Text encoder: $CLIP_VIT_B32_DIR = a local openai/clip-vit-base-patch32 folder (transformers
    save_pretrained); else MiniLM + a warning.
  Authors' weights: checkpoint=DIR = the release tree checkpoints/t2m/ (rvq_nq6_dc512_nc512_noshare_qdp0.2/,
    t2m_nlayer8_nhead6_ld384_ff1024_cdp0.1_rvq6ns/, tres_nlayer8_ld384_ff1024_rvq6ns_cdp0.2_sw/ with
    model/*.tar and the tokenizer's meta/{mean,std}.npy), or method_cfg.stats_dir=<HumanML3D>.
  Data: dataset.root=<HumanML3D> or $HUMANML3D_ROOT.
""" + T2M_EVAL + """
  Example: CLIP_VIT_B32_DIR=... T2M_EVALUATOR_ROOT=... ./reproduce.sh momask humanml3d checkpoint=checkpoints/t2m"""

    @property
    def default_steps(self) -> int:
        return int(self.c["sampler"]["iterations"])

    def __init__(self, cfg: dict | None = None, *, device="cpu", seed: int = 0, workdir=None) -> None:
        super().__init__(cfg, device=device, seed=seed, workdir=workdir)
        self.c = copy.deepcopy(self.cfg)  # resolved in place (text encoder, d_in at fit); the YAML holds every key
        # kind: auto (paper experiments) -> local CLIP ViT-B/32 from $CLIP_VIT_B32_DIR, else MiniLM + one warning
        self.c["text_encoder"] = resolve_text_encoder(self.c["text_encoder"], "clip-vit-b32",
                                                      getattr(self, "registry_name", "momask"))
        self._text: TextEncoder | None = None
        self._low = LowPrecisionCache()  # bf16 copies for sampler.precision=bf16 (rebuilt when weights change)
        self.mean = torch.zeros(self.c["d_in"])
        self.std = torch.ones(self.c["d_in"])
        # the initial weights follow ``seed`` alone, whatever the global RNG went through before (as MLD's
        # and MacDiff's do): the runner seeds right before building, the API caller may not
        torch.manual_seed(seed)
        self._build(self.c["d_in"])

    # -- construction -----------------------------------------------------------------------------
    def _build(self, d_in: int) -> None:
        t, m, r = self.c["tokenizer"], self.c["mask_transformer"], self.c["residual_transformer"]
        cond_dim = int(self.c["text_encoder"]["dim"])
        self.vq = RVQVAE(d_in, t["nb_code"], t["code_dim"], t["down_t"], t["width"], t["depth"],
                         t["dilation_growth_rate"], t["num_quantizers"], t["quantize_dropout_prob"], t["mu"])
        self.mtrans = MaskTransformer(t["nb_code"], t["code_dim"], m["latent_dim"], m["ff_size"], m["num_layers"],
                                      m["num_heads"], m["dropout"], cond_dim, m["cond_drop_prob"],
                                      pe_over_condition=self._pe_over_condition())
        self.rtrans = ResidualTransformer(t["nb_code"], t["num_quantizers"], t["code_dim"], r["latent_dim"],
                                          r["ff_size"], r["num_layers"], r["num_heads"], r["dropout"], cond_dim,
                                          r["cond_drop_prob"], r["share_weight"]) if t["num_quantizers"] > 1 else None
        self.mean, self.std = torch.zeros(d_in), torch.ones(d_in)
        for mod in self.components().values():
            mod.to(self.device)

    def _pe_over_condition(self) -> bool:
        return False

    @property
    def text(self) -> TextEncoder:
        """The frozen text encoder, loaded on first use."""
        if self._text is None:
            te = self.c["text_encoder"]
            self._text = shared_text_encoder(te["kind"], te["clip_path"]).to(self.device)
            if self._text.dim != int(te["dim"]):
                raise ValueError(f"text_encoder.dim={te['dim']} but the {te['kind']} encoder gives {self._text.dim}")
        return self._text

    def components(self) -> dict[str, nn.Module]:
        out = {"tokenizer": self.vq, "mask_transformer": self.mtrans}
        if self.rtrans is not None:
            out["residual_transformer"] = self.rtrans
        return out

    def frozen_components(self) -> dict[str, nn.Module]:
        """The frozen text encoder (loaded here if needed; absent when a CLIP path is missing)."""
        try:
            return {"text_encoder": self.text.model}
        except (ValueError, OSError) as e:
            log.warning("text encoder unavailable for the model card: %s", e)
            return {}

    def gmacs(self) -> dict[str, float]:
        """GMACs of one forward of each network (fvcore) on a 196-frame / 49-token sample."""
        return bench.gmacs(self)

    # -- normalisation ------------------------------------------------------------------------------
    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x)) / self.std.to(x)

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std.to(x) + self.mean.to(x)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "stats": {"mean": self.mean.clone(), "std": self.std.clone()}}

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> None:
        stats = state.get("stats")
        super().load_state_dict({k: v for k, v in state.items() if k != "stats"}, strict=strict)
        if stats is not None:
            self.mean, self.std = stats["mean"].float().cpu(), stats["std"].float().cpu()

    # -- text conditions (hooks: HGM3 overrides them) ----------------------------------------------
    def prepare_text(self, captions: list[str]) -> None:
        """Hook: precompute frozen text features (HGM3 parses graphs here)."""

    def conditions(self, captions: list[str]) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """Condition levels for the masked transformer: ``[(cond [B, Lc, Dc], cond_pad [B, Lc] | None)]``.

        MoMask: one level, the sentence embedding as a single token.
        """
        return [(self.text.encode(captions).to(self.device)[:, None], None)]

    # -- benchmark hooks (methods/base.py; implemented in methods/momask/bench.py) ----------------------
    def denoiser_example(self, batch: int = 1) -> tuple[nn.Module, tuple]:
        return bench.denoiser_example(self, batch)

    def train_step_example(self, batch: int):
        return bench.train_step_example(self, batch)

    # -- inference ------------------------------------------------------------------------------------
    def sampler_settings(self) -> dict[str, Any]:
        # the fast paths are named only when on (the records of the default path stay as they were)
        s = {k: v for k, v in self.c["sampler"].items() if k not in ("fused_encoder", "onednn_linear") or v}
        return {**s, "precision": self.precision()}

    def precision(self) -> str:
        """``sampler.precision``: ``fp32`` (default, paper numbers) or ``bf16``."""
        return check_precision(self.c["sampler"]["precision"],
                               f"{getattr(self, 'registry_name', 'momask')}: sampler.precision")

    def _sampling_modules(self) -> tuple[nn.Module, nn.Module | None]:
        """(masked transformer, residual transformer) as decoding calls them. fp32: the trained
        modules. bf16: copies with the weights cast to bf16 ONCE (cached; rebuilt when the weights
        change, :mod:`evaluators.core.precision`) that take fp32 inputs and return fp32 logits, so
        CFG mixing, top-k, softmax / Gumbel sampling and the confidences stay fp32."""
        if self.precision() == "fp32":
            return self.mtrans, self.rtrans
        rt = None if self.rtrans is None else self._low.get("residual_transformer", self.rtrans)
        return self._low.get("mask_transformer", self.mtrans), rt

    def _decode(self, ids: torch.Tensor) -> torch.Tensor:
        """RVQ decoder ``vq.decode`` (codebook sums in fp32; with bf16 the conv decoder is a cached
        bf16 copy returning fp32)."""
        self.vq.eval()
        if self.precision() == "fp32":
            return self.vq.decode(ids)
        z = self.vq.quantizer.get_codes_from_indices(ids).sum(0).permute(0, 2, 1)
        return self._low.get("decoder", self.vq.decoder.model)(z).permute(0, 2, 1)

    def _guided(self, fn):
        """``sampler.compile`` (ours, default false): the guided transformer forward ``fn`` (a bound
        ``guided_logits``) through ``torch.compile`` with an eager fallback and one warning when
        compilation fails (:class:`methods.common.compile.CompiledOrEager`); one wrapper per module
        and method, kept for the life of the method (graphs are reused across generate calls).

        Inductor *freezing* is on: the inference graph takes the weights as constants, so its
        linear layers run on MKL-prepacked weights and the elementwise chains between them are
        fused (measured on the 2-core CPU at paper size, batch 1: one guided forward 1.34x faster
        than eager, same inputs, alternating calls). Because the weights are baked in, the wrapper
        is rebuilt when they change (the fingerprint of :mod:`evaluators.core.precision`)."""
        if not bool(self.c["sampler"]["compile"]):
            return fn
        cache = self.__dict__.setdefault("_compiled", {})
        key = (id(fn.__self__), fn.__func__.__name__)
        weights = weights_fingerprint(fn.__self__)
        if key not in cache or cache[key][0] != weights or cache[key][1].fn.__self__ is not fn.__self__:
            cache[key] = (weights, CompiledOrEager(fn, name=f"{getattr(self, 'registry_name', 'momask')} sampler",
                                                   dynamic=None, options={"freezing": True}))
        return cache[key][1]

    def level_at(self, k: int, steps: int, n_levels: int) -> int:
        """Condition level used at decoding iteration ``k`` (MoMask: the only one)."""
        return 0

    @torch.inference_mode()
    def generate_tokens(self, captions: list[str], token_lens: torch.Tensor, steps: int,
                        force_mask: bool = False) -> torch.Tensor:
        """Layer-0 decoding then residual layers: ids ``[B, N, Q]`` (-1 beyond length).

        ``force_mask=True`` is the official ``MaskTransformer.generate(force_mask=True)``: the
        masked transformer sees a zeroed condition and no guidance (``forward_with_cond_scale``
        returns the unconditional logits, momask-codes ``models/mask_transformer/transformer.py:314-315``);
        the residual transformer, whose official ``generate`` has no such switch, is unchanged.
        """
        s = self.c["sampler"]
        for mod in self.components().values():  # incl. HGM3's graph encoder (dropout off)
            mod.eval()
        mt, _ = self._sampling_modules()
        _fuse_layers(mt, s)
        levels = self.conditions(captions)
        n = int(token_lens.max())
        pad = M.lengths_to_pad(token_lens, n)
        guides: dict[int, Any] = {}  # per condition level, built once per call (resident across iterations)

        def logits_fn(ids, k):
            lvl = self.level_at(k, steps, len(levels))
            if lvl not in guides:
                cond, cpad = levels[lvl]
                guides[lvl] = mt.guidance(cond, pad, cpad, s["cond_scale"], force_uncond=force_mask)
            return self._guided(mt.guided_logits)(ids, guides[lvl])

        ids0 = M.iterative_decode(logits_fn, token_lens, n, steps, mt.mask_id, mt.pad_id, s["temperature"],
                                  s["topk_thres"], s["gumbel"])
        return self.residual_tokens(ids0, captions, token_lens)

    @torch.inference_mode()
    def residual_tokens(self, ids0: torch.Tensor, captions: list[str], token_lens: torch.Tensor) -> torch.Tensor:
        """Residual layers 1..Q-1 from layer-0 ids ``[B, N]`` (official ``ResidualTransformer.generate``)."""
        rt, s = self.rtrans, self.c["sampler"]
        if rt is None:
            return ids0[..., None]
        rt.eval()
        _, rt_s = self._sampling_modules()  # rt_s: the network (bf16 copy or rt); rt: its fp32 tables
        _fuse_layers(rt_s, s)
        pad = M.lengths_to_pad(token_lens, ids0.shape[1])
        cond = self.text.encode(captions).to(self.device)
        g = rt_s.guidance(cond, pad, s["res_cond_scale"])  # condition rows, masks, tables: once per call
        emb, _ = rt.embed_tables()  # fp32 history tables (bf16: the network's own are bf16)
        cur = torch.where(pad, rt.pad_id, ids0)
        out, hist = [cur], 0
        for q in range(1, rt.nq):
            hist = hist + emb[q - 1][cur]  # incremental: only the newest layer is gathered
            logits = self._guided(rt_s.guided_logits)(hist, q, g)
            cur = torch.where(pad, rt.pad_id, M.sample_ids(logits, s["temperature"], s["topk_thres"], gumbel=True,
                                                            name=f"residual_logits[q={q}]"))
            out.append(cur)
        ids = torch.stack(out, -1)
        return torch.where(ids == rt.pad_id, -1, ids)

    def last_generation_codes(self) -> torch.Tensor | None:
        """Token ids ``[B, N, Q]`` (-1 = pad) of the last :meth:`generate` call, for protocol debug checks."""
        return getattr(self, "_last_codes", None)

    def provenance(self) -> dict[str, dict]:
        """``text_encoder`` entry (CLIP ViT-B/32 folder + config hash, or MiniLM) and a ``weights`` entry
        naming the official files loaded (none when the weights were trained here)."""
        base = getattr(super(), "provenance", None)
        out = dict(base()) if callable(base) else {}
        out["text_encoder"] = text_encoder_entry(self.c["text_encoder"])
        files = getattr(self, "official_files_loaded", None) or {}
        if files:
            per = {role: {"file": f, "sha256": sha256_file(f)} for role, f in sorted(files.items())}
            out["weights"] = {
                "id": "official-converted",
                "label": "official weights (" + ", ".join(f"{r} {Path(f).name}" for r, f in sorted(files.items())) + ")",
                "file": "; ".join(f"{r}={f}" for r, f in sorted(files.items())),
                "sha256": sha256_text("".join(per[r]["sha256"] for r in sorted(per))),
                "files": per}
        return out

    @torch.inference_mode()
    def generate(self, conditions, lengths, steps: int | None = None, force_mask: bool = False) -> torch.Tensor:
        """Captions + frame lengths -> raw motions ``[B, max(lengths), D]`` (zeros beyond each length).

        ``force_mask=True``: unconditional layer-0 decoding (see :meth:`generate_tokens`).
        """
        if conditions is None or len(conditions) != len(lengths):
            raise ValueError("momask.generate needs one caption per length")
        steps = int(steps or self.c["sampler"]["iterations"])
        lens = torch.as_tensor(list(lengths), dtype=torch.long, device=self.device)
        unit = self.vq.unit_length
        tok = ((lens + unit - 1) // unit).clamp(min=1)  # eval lengths are multiples of 4 (floor == ceil)
        ids = self.generate_tokens([str(c) for c in conditions], tok, steps, force_mask=force_mask)
        self._last_codes = ids.detach().cpu()
        x = self.denormalize(self._decode(ids))
        t = int(lens.max())
        out = torch.zeros(len(lens), t, x.shape[-1], device=x.device)
        out[:, :min(t, x.shape[1])] = x[:, :t]
        keep = torch.arange(t, device=x.device)[None] < lens[:, None]
        return (out * keep[..., None]).cpu()

    @torch.inference_mode()
    def reconstruct(self, x: torch.Tensor, num_layers: int | None = None) -> torch.Tensor:
        """Raw motions ``[B, T, D]`` -> tokenizer round trip ``[B, T, D]`` (raw); ``num_layers`` ablates RVQ depth."""
        self.vq.eval()
        t, unit = x.shape[1], self.vq.unit_length
        xn = self.normalize(x.to(self.device).float())
        padn = (-t) % unit
        if padn:
            xn = torch.cat([xn, xn[:, -1:].expand(-1, padn, -1)], 1)
        ids = self.vq.encode(xn, num_layers=num_layers)
        return self.denormalize(self.vq.decode(ids))[:, :t].cpu()

    # -- checkpoints ---------------------------------------------------------------------------------
    def save_checkpoint(self, path: str | Path | None = None) -> Path | None:
        if path is None:
            if self.workdir is None:
                return None
            path = self.workdir / f"{self.registry_name}.pt"
        atomic_torch_save({"format": f"motionrepro-{self.registry_name}", "cfg": self.c,
                           "state": self.state_dict()}, path)
        return Path(path)

    def load_checkpoint(self, path_or_dir: str | Path) -> None:
        """Load ours (``<name>.pt``) or the official MoMask layout (see :mod:`methods.momask.convert`)."""
        load_into(self, Path(path_or_dir))


def _fuse_layers(module: nn.Module, sampler: dict) -> None:
    """``sampler.fused_encoder`` / ``sampler.onednn_linear``: every encoder stack of ``module`` on the
    fused encoder-layer kernel or on oneDNN's products at inference (:mod:`methods.momask.native_encoder`),
    or back to the eager layers."""
    for m in module.modules():
        if isinstance(m, Encoder):
            m.fused, m.onednn = bool(sampler["fused_encoder"]), bool(sampler["onednn_linear"])
