"""The registered MacDiff method: pretraining, features, reconstruction, augmentation, fine-tune model.

Skeleton tensors follow ``methods.base``: ``[B, 3, T, V=25, M=2]`` raw coordinates (feeder
windows, ``T`` = the model's ``num_frames``). Persons are folded into the batch for the
networks (``[B*M, T, V, 3]``); pretraining uses person 1 only (official ``one_person=True``).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import methods.macdiff.convert as convert
from evaluators.core.io import atomic_torch_save
from evaluators.core.precision import LowPrecisionCache, check_precision
from evaluators.core.safe_load import load_checkpoint_file
from evaluators.provenance import recipe_entry
from methods.base import Method
from methods.common.compile import compiled_view
from methods.common.training import stage_steps, train
from methods.macdiff.diffusion import MacDiffCore
from methods.macdiff.finetune_model import MacDiffClassifier
from methods.macdiff.layout import fold_persons, resize_time, unfold_persons
from methods.macdiff.recipe import pretrain_lr_lambda, rotation_kwargs
from methods.registry import register_method

log = logging.getLogger(__name__)

POOLINGS = ("joint", "mean")


@register_method("macdiff")
class MacDiff(Method):
    """Masked conditional diffusion (Wu et al., ECCV 2024) for skeleton representation learning."""

    task = "skeleton_ssl"
    main_stage = "pretrain"
    precision_key = ("sampling", "precision")
    benchmark_steps = (1, 2, 5, 10, 50)
    speed_targets = (None, 0.60)  # ours: fraction of the fp32 matmul peak to reach (paper scale, CPU; batch 32 only)
    paper_needs = """  Authors' weights: checkpoint=PATH (MacDiff release .pt/.pth, Wenrui-Shen/MacDiff@692888f layout;
    methods/macdiff/convert.py) - or trained here.
  Data: dataset.root=<NTU RGB+D 60> or $NTU60_ROOT (raw .skeleton files, or the official
    NTU60_XSub.npz / NTU60_XView.npz); layout in configs/dataset/ntu60_xsub.yaml."""

    @property
    def default_steps(self) -> int:
        return int(self.cfg["sampling"]["ddim_steps"])  # configs/method/macdiff.yaml sampling.ddim_steps

    def __init__(self, cfg: dict | None = None, **kw: Any) -> None:
        super().__init__(cfg, **kw)
        c = self.cfg
        torch.manual_seed(self.seed)
        self.core = MacDiffCore(model=dict(c["model"]), diffusion=c["diffusion"],
                                mask_ratio=float(c["mask_ratio"]),
                                uncond_ratio=float(c["uncond_ratio"]),
                                lambda_uni=float(c["lambda_uni"]), fusion=bool(c["fusion"]),
                                input_mean=tuple(c["input_mean"]),
                                input_var=tuple(c["input_var"]),
                                self_shift=bool(c["self_shift"]),
                                mask_kind=str(c["mask_kind"]),
                                motion_aware_tau=float(c["motion_aware_tau"]),
                                layer_mask_ratio=float(c["layer_mask_ratio"]),
                                layer_mask_train_only=bool(c["layer_mask_train_only"])).to(self.device)
        self._low = LowPrecisionCache()  # bf16 decoder for sampling.precision=bf16 (rebuilt when weights change)
        if c["checkpoint"]:
            self.load_checkpoint(c["checkpoint"])

    # -- provenance (evaluators/provenance.py) ------------------------------------------------------------
    def provenance(self) -> dict[str, dict]:
        """Recipe switches of this method config that can depart from the authors' code."""
        base = getattr(super(), "provenance", None)
        out = dict(base()) if callable(base) else {}
        if float(self.cfg["layer_mask_ratio"]) > 0:
            train_only = bool(self.cfg["layer_mask_train_only"])
            k, e = recipe_entry("layer_mask_at_sampling", "off" if train_only else "on", paper=not train_only,
                                paper_value="on")
            out[k] = e
        return out

    # -- model card --------------------------------------------------------------------------------
    def components(self) -> dict[str, nn.Module]:
        return {"encoder": self.core.encoder, "decoder": self.core.decoder}

    def gmacs(self) -> dict[str, float]:
        """GMACs (fvcore) of one unmasked encoder forward and one decoder (denoising) step on a
        single window; SDPA counted as the two matmuls ``QK^T`` and ``AV``."""
        from fvcore.nn import FlopCountAnalysis  # lazy: fvcore (model cards, benchmarks) is heavy to import

        def sdpa(inputs, outputs):
            q, v = inputs[0].type().sizes(), inputs[2].type().sizes()
            return math.prod(q) * q[-2] + math.prod(q[:-1]) * q[-2] * v[-1]

        enc, dec = self.core.encoder, self.core.decoder
        x = torch.zeros(1, enc.num_frames, enc.num_joints, 3, device=self.device)
        z = torch.zeros(1, enc.tp * enc.vp, enc.dim_feat, device=self.device)
        t = torch.zeros(1, dtype=torch.long, device=self.device)
        out = {}
        with torch.no_grad():
            for name, mod, args in [("encoder", enc, (x,)), ("decoder_step", dec, (x, t, z))]:
                mod.eval()
                fl = FlopCountAnalysis(mod, args).set_op_handle("aten::scaled_dot_product_attention", sdpa)
                fl.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
                out[name] = fl.total() / 1e9
        return out

    @property
    def window(self) -> int:
        return self.core.encoder.num_frames

    # -- pretraining ----------------------------------------------------------------------------------
    def pretrain(self, dataset: Any) -> Any:
        """Self-supervised pretraining on ``dataset.split("train")`` through the shared train loop.

        ``dataset``: a :class:`~evaluators.datasets.skeleton.dataset.SkeletonDataset`. The feeder
        yields ``(x, x_aug)`` pairs (random crop p in [0.5, 1], resize to the model window;
        ``x_aug`` adds N(0, 0.005) joint noise, optionally a random rotation).
        """
        p = dict(self.cfg["pretrain"])
        feeder = dataset.feeder("train", train=True, window=self.window, pair=True, one_person=True,
                                noise_std=float(p["noise_std"]), **rotation_kwargs(p))
        bs = int(p["batch_size"])
        steps_per_epoch = max(len(feeder) // bs, 1)
        # total_steps (the smoke scale's budget) is optional: absent or null = epochs x steps per epoch
        total = stage_steps(p.get("total_steps"), lambda: int(p["epochs"]) * steps_per_epoch, "pretrain.total_steps")
        warmup = int(round(float(p["warmup_epochs"]) * steps_per_epoch))
        hold = int(round(float(p["min_lr_epochs"]) * steps_per_epoch))
        lr, min_lr = float(p["lr"]), float(p["min_lr"])
        opt = torch.optim.AdamW(self._param_groups(float(p["weight_decay"])), lr=lr, betas=tuple(p["betas"]))
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: pretrain_lr_lambda(
            s, total=total, warmup=warmup, hold=hold, lr=lr, min_lr=min_lr))
        core = self.core

        def step_fn(batch, step):
            x, x_aug = batch[0].to(self.device), batch[1].to(self.device)
            r0 = fold_persons(x[..., :1])
            mu = core.shift(r0)  # official self_shift uses the clean sequence's mean for both views
            x0 = core.normalise(r0, mu)
            xa = core.normalise(fold_persons(x_aug[..., :1]), mu)
            return core.loss(x0, xa, x_raw=r0)

        ckpt_dir = Path(p["ckpt_dir"]) if p.get("ckpt_dir") else (self.workdir / "pretrain" if self.workdir else None)
        state = train(modules={"core": core}, optimizer=opt, dataset=feeder, batch_size=bs, total_steps=total,
                      step_fn=step_fn, ckpt_dir=ckpt_dir, seed=self.seed, desc="macdiff-pretrain",
                      lr_scheduler=sched, grad_clip=p["grad_clip"], ckpt_every=int(p["ckpt_every"]),
                      stop_after=p.get("stop_after"))
        core.eval()
        return state

    def _param_groups(self, wd: float) -> list[dict]:
        # timm add_weight_decay (official main_pretrain.py): no decay for 1-D params and biases
        decay, no_decay = [], []
        for name, prm in self.core.named_parameters():
            (no_decay if prm.ndim <= 1 or name.endswith(".bias") else decay).append(prm)
        return [{"params": no_decay, "weight_decay": 0.0}, {"params": decay, "weight_decay": wd}]

    # -- representation ---------------------------------------------------------------------------------
    @torch.inference_mode()
    def encode(self, skeletons: torch.Tensor, pooling: str = "joint", batch_size: int = 256) -> torch.Tensor:
        """Frozen unmasked features ``[B, 3, T, V, M]`` -> ``[B, V*D]`` (``joint``, MacDiff
        linprobe2: mean over persons and time), ``[B, D]`` (``mean``, MAMP: also over joints) or
        the unpooled tokens ``[B, M, TP, VP, D]`` (``tokens``: the linear probe applies its
        dropout to every token before pooling, official ``ActionHeadLinprobe2``)."""
        if pooling not in (*POOLINGS, "tokens"):
            raise ValueError(f"pooling must be one of {(*POOLINGS, 'tokens')}, got {pooling!r}")
        self.core.eval()
        out = []
        for chunk in torch.split(skeletons, batch_size):
            b, m = chunk.shape[0], chunk.shape[-1]
            f = self.core.encoder(self.core.normalise(fold_persons(chunk.to(self.device).float())))
            f = f.reshape(b, m, *f.shape[1:])  # [B, M, TP, VP, D]
            if pooling != "tokens":
                f = f.mean(dim=(1, 2)).reshape(b, -1) if pooling == "joint" else f.mean(dim=(1, 2, 3))
            out.append(f.float().cpu())
        return torch.cat(out)

    def finetune_normalisation(self, finetune: dict | None = None) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """``(mean, std, self_shift)`` of the fine-tune model: ``finetune.input_mean`` /
        ``input_var`` / ``self_shift`` of the method config (or of ``finetune``, a block given in its
        place, as the transfer protocol does), each ``null`` = the pretraining value.
        The official fine-tune yamls set their own (``config/<dataset>/finetune_madiff.yaml``:
        NTU-120 statistics for NTU-120, no ``self_shift`` for PKU-v1, ``self_shift`` for PKU-v2);
        with ``self_shift`` the mean is 0 (official ``transformer_downstream.py`` __init__)."""
        # a block passed in (the transfer protocol's) replaces the configured one, as a whole
        f = dict(self.cfg["finetune"] if finetune is None else finetune)
        shift = self.core.self_shift if f.get("self_shift") is None else bool(f["self_shift"])
        if f.get("input_mean") is not None:
            mean = torch.tensor(f["input_mean"], dtype=torch.float32)
        else:
            mean = torch.tensor(self.cfg["input_mean"], dtype=torch.float32)
        std = self.core.std.detach().cpu() if f["input_var"] is None else \
            torch.tensor(f["input_var"], dtype=torch.float32).sqrt()
        if shift:
            mean = torch.zeros(3)
        return mean, std, shift

    def finetune_model(self, num_classes: int, drop_path: float = 0.3, head_dropout: float = 0.3,
                       finetune: dict | None = None) -> nn.Module:
        """A fresh classifier (encoder copy with drop-path + MacDiff fine-tune head) initialised
        from the pretrained encoder; see :class:`MacDiffClassifier`. ``finetune`` replaces the
        config's ``finetune`` block (the normalisation, :meth:`finetune_normalisation`)."""
        mean, std, self_shift = self.finetune_normalisation(finetune)
        model = MacDiffClassifier(self.core.model_cfg, num_classes, drop_path=drop_path, head_dropout=head_dropout,
                                  mean=mean, std=std, self_shift=self_shift)
        model.encoder.load_state_dict(self.core.encoder.state_dict())
        return model.to(self.device)

    def finetuned_classifier(self, head_dropout: float = 0.3) -> nn.Module:
        """The authors' fine-tuned model, ready to evaluate: encoder + the ``head.*`` of the loaded
        official fine-tune checkpoint (``ActionHeadFinetune``, MacDiff ``model/transformer_downstream.py:101-123``,
        keys ``fc1``/``bn``/``fc2``), in eval mode. Raises if no fine-tuned checkpoint was loaded."""
        head = getattr(self, "official_head", None)
        if not head:
            raise ValueError("finetuned_classifier(): no classification head loaded; load an official fine-tuned "
                             "checkpoint (its state dict holds head.fc1/head.bn/head.fc2) with load_checkpoint()")
        if "fc2.weight" not in head:
            raise ValueError(f"finetuned_classifier(): the loaded head has keys {sorted(head)[:6]}, not the official "
                             "fine-tune head (head.fc1/bn/fc2); a linear-probe head cannot be used here")
        mean, std, self_shift = self.finetune_normalisation()
        model = MacDiffClassifier(self.core.model_cfg, int(head["fc2.weight"].shape[0]), drop_path=0.0,
                                  head_dropout=head_dropout, mean=mean, std=std, self_shift=self_shift)
        model.encoder.load_state_dict(self.core.encoder.state_dict())
        try:
            model.head.load_state_dict(head, strict=True)
        except RuntimeError as e:
            raise ValueError(f"finetuned_classifier(): official head does not match this encoder: {e}") from e
        return model.to(self.device).eval()

    # -- benchmark hooks (methods/base.py; timed and FLOP-counted by benchmarks/test_methods.py) -----------
    def denoiser_example(self, batch: int = 1) -> tuple[nn.Module, tuple]:
        """The decoder as run at every DDIM step: x_t ``[B, T, V, 3]``, t ``[B]``, condition
        ``[B, L, D]`` (L = all 750 tokens at paper size); CFG (guidance != 1) doubles the rows."""
        enc, dec = self.core.encoder, self.core.decoder.eval()
        x_t = torch.randn(batch, enc.num_frames, enc.num_joints, 3, device=self.device)
        z = torch.randn(batch, dec.tp * dec.vp, dec.dim_feat, device=self.device)
        if float(self._sampling()["guidance"]) != 1.0:  # one batched [cond; uncond] forward
            x_t, z = torch.cat([x_t, x_t]), torch.cat([z, z])
        return dec, (x_t, torch.full((x_t.shape[0],), 500, dtype=torch.long, device=self.device), z)

    def train_step_example(self, batch: int):
        """One pretraining optimiser step (``MacDiffCore.loss``) on random normalised clips."""
        enc, p = self.core.encoder, dict(self.cfg["pretrain"])
        x = torch.randn(batch, enc.num_frames, enc.num_joints, 3, device=self.device)
        opt = torch.optim.AdamW(self._param_groups(float(p["weight_decay"])), lr=float(p["lr"]))

        def step() -> None:
            self.core.train()
            loss, _ = self.core.loss(x, x + 0.005 * torch.randn_like(x))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return step

    # -- generation --------------------------------------------------------------------------------------
    def _sampling(self) -> dict:
        return dict(self.cfg["sampling"])

    def precision(self) -> str:
        """``sampling.precision`` (reconstruction and augmentation): ``fp32`` (default) or ``bf16``."""
        return check_precision(self._sampling()["precision"], "macdiff: sampling.precision")

    def sampler_settings(self) -> dict[str, Any]:
        """What a run record says about sampling (reconstruction ``sampling``, augmentation ``augment``)."""
        return {"sampler": "ddim", "eta": 0.0, **self._sampling(), "augment": dict(self.cfg["augment"]),
                "precision": self.precision(), "compile": bool(self._sampling()["compile"])}

    def _sampling_core(self) -> MacDiffCore:
        """The core as DDIM sampling calls it. bf16: a view of the core whose decoder (the network
        run at every step) is a cached copy with bf16 weights, cast once, taking and returning fp32;
        the encoder (one pass for the condition), the DDIM update and the CFG mix stay fp32."""
        self.core.eval()
        core = self.core if self.precision() == "fp32" else self._low.view("core", self.core, ("decoder",))
        if bool(self._sampling()["compile"]):  # ours: the per-step decoder compiled
            core = compiled_view(self.__dict__.setdefault("_compiled", {}), "macdiff", core, ("decoder",))
        return core

    @torch.inference_mode()
    def reconstruct(self, x: torch.Tensor, steps: int | None = None, guidance: float | None = None,
                    mask_ratio: float | None = None, seed: int | None = None, return_mask: bool = False):
        """Masked reconstruction ``[B, 3, T, V, M] -> [B, 3, T, V, M]`` (raw coordinates).

        ``return_mask``: ``{"x_hat": ..., "mask": bool [B, T, V, M]}``, the mask marking the
        frames/joints of the tokens hidden from the encoder (each token = ``t_patch`` frames of
        one joint), so the reconstruction protocol also reports ``mpjpe_masked_mm``.

        ``T`` other than the model window is resampled to the window and back (linear in time).

        Each person is encoded from a randomly masked view (``mask_ratio``, default the training
        ratio) and re-generated by conditional DDIM from pure noise; absent (all-zero) persons
        stay zero.
        """
        s = self._sampling()
        self.core.eval()
        m, t_in = x.shape[-1], x.shape[2]
        if t_in != self.window:  # e.g. a protocol window other than the model's: resample time both ways
            res = self.reconstruct(resize_time(x.float(), self.window), steps, guidance, mask_ratio, seed,
                                   return_mask=return_mask)
            if not return_mask:
                return resize_time(res, t_in)
            src = torch.clamp(((torch.arange(t_in) + 0.5) * self.window / t_in).long(), max=self.window - 1)
            return {"x_hat": resize_time(res["x_hat"], t_in), "mask": res["mask"][:, src]}
        rows = fold_persons(x.to(self.device).float())
        mu = self.core.shift(rows)
        out, tok_mask = self._sampling_core().reconstruct(
            self.core.normalise(rows, mu), steps=int(steps or s["ddim_steps"]),
            guidance=float(guidance if guidance is not None else s["guidance"]),
            mask_ratio=mask_ratio if mask_ratio is not None else s["mask_ratio"],
            seed=self.seed if seed is None else seed, return_mask=True)
        out = self.core.denormalise(out, mu) * (rows.abs().sum(dim=(1, 2, 3)) > 0).float()[:, None, None, None]
        x_hat = unfold_persons(out, m).cpu()
        if not return_mask:
            return x_hat
        enc = self.core.encoder
        tm = tok_mask.reshape(-1, enc.tp, enc.vp).bool().cpu()
        tm = tm.repeat_interleave(self.core.t_patch, dim=1).repeat_interleave(self.core.patch, dim=2)  # [BM, T, V]
        return {"x_hat": x_hat, "mask": tm.reshape(-1, m, *tm.shape[1:]).permute(0, 2, 3, 1).contiguous()}

    @torch.inference_mode()
    def augment(self, x: torch.Tensor, y: torch.Tensor | np.ndarray, ratio: float,
                seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Diffusion data augmentation: ``round(ratio * N)`` label-preserving generated windows.

        ``x [N, 3, T, V, M]`` labelled windows, ``y [N]``. Sample ``i`` of the output is a variant
        of input ``idx[i]`` (the labelled set repeated ``floor(ratio)`` times, then a seeded random
        subset for the fractional part) with label ``y[idx[i]]``: encode a masked view, optionally
        perturb the condition (``z_noise_std``), noise the window to ``t_start`` and denoise with
        DDIM (official ``feeder_ntu_semi.expand_dataset`` / ``random_modify``).
        """
        a = dict(self.cfg["augment"])
        n = len(x)
        y = torch.as_tensor(np.asarray(y), dtype=torch.long)
        n_gen = int(round(ratio * n))
        if n_gen <= 0 or n == 0:
            return x.new_zeros((0, *x.shape[1:])), y.new_zeros((0,))
        seed = self.seed if seed is None else seed
        rng = np.random.RandomState(seed)
        idx = np.concatenate([np.tile(np.arange(n), n_gen // n), rng.permutation(n)[: n_gen % n]]).astype(np.int64)
        t_start = a["t_start"]  # ours: (expand_dataset is never called in the official code)
        outs, bs = [], int(a["batch_size"])
        for k, part in enumerate(np.array_split(idx, max(1, math.ceil(len(idx) / bs)))):
            xb = x[torch.from_numpy(part)].to(self.device).float()
            m = xb.shape[-1]
            rows = fold_persons(xb)
            mu = self.core.shift(rows)
            gen = self._sampling_core().generate_like(self.core.normalise(rows, mu), steps=int(a["ddim_steps"]),
                                          guidance=float(a["guidance"]),
                                          t_start=None if t_start is None else int(t_start),
                                          z_noise_std=float(a["z_noise_std"]),
                                          mask_ratio=a.get("mask_ratio"), seed=seed + 7919 * k)
            gen = self.core.denormalise(gen, mu) * (rows.abs().sum(dim=(1, 2, 3)) > 0).float()[:, None, None, None]
            outs.append(unfold_persons(gen, m).cpu())
        return torch.cat(outs), y[torch.from_numpy(idx)]

    # -- checkpoints ---------------------------------------------------------------------------------------
    def save_checkpoint(self, path: str | Path) -> None:
        """Write ``{"encoder", "decoder", "config"}`` atomically (reloadable by :meth:`load_checkpoint`)."""
        atomic_torch_save({**self.state_dict(), "config": self.cfg}, Path(path))

    def load_checkpoint(self, path: str | Path) -> None:
        """Load our checkpoints (``state_dict()`` files or the train loop's ``last.pt``) or an official
        MacDiff/MAMP checkpoint (converted by :mod:`methods.macdiff.convert`). Official
        pretraining checkpoints load strictly; encoder-only (downstream) ones load the encoder."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"checkpoint {path} does not exist")
        obj = load_checkpoint_file(path)  # weights_only=True; official files' argparse args are allow-listed
        self.load_state_any(obj, source=str(path))

    def load_state_any(self, obj: Any, source: str = "<state>") -> None:
        self.official_head = None
        if isinstance(obj, dict) and "modules" in obj and "core" in obj.get("modules", {}):
            self.core.load_state_dict(obj["modules"]["core"])
            return
        if isinstance(obj, dict) and "encoder" in obj and isinstance(obj["encoder"], dict):
            self.core.encoder.load_state_dict(obj["encoder"])
            if "decoder" in obj:
                self.core.decoder.load_state_dict(obj["decoder"])
            return
        flat = convert.unwrap(obj)
        if not convert.is_official(flat):
            raise ValueError(f"{source}: neither our checkpoint layout nor the official MacDiff/MAMP one")
        enc, dec, head = convert.convert_official(flat)
        self.core.encoder.load_state_dict(enc, strict=True)
        if dec:
            self.core.decoder.load_state_dict(dec, strict=True)
        else:
            log.info("%s: encoder-only (downstream) checkpoint; decoder left as is", source)
        self.official_head = head or None  # fine-tuned checkpoints: see finetuned_classifier()
        if head:
            log.info("%s: kept %d classification-head tensors (finetuned_classifier())", source, len(head))
