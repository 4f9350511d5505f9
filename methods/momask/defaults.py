"""MoMask default configuration (paper scale) and small config/schedule helpers.

Values: EricGuo5513/momask-codes ``options/{vq,base,train}_option.py``, README commands,
``utils/eval_t2m.py`` (see ``configs/method/momask.yaml`` for the annotated copy).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

DEFAULTS: dict[str, Any] = {
    "d_in": 263, "max_motion_length": 196,
    "text_encoder": {"kind": "minilm", "clip_path": None, "dim": 384},
    "tokenizer": {"nb_code": 512, "code_dim": 512, "down_t": 2, "width": 512, "depth": 3,
                  "dilation_growth_rate": 3, "num_quantizers": 6, "quantize_dropout_prob": 0.2, "mu": 0.99,
                  "batch_size": 256, "window": 64, "epochs": 50, "steps": None, "lr": 2e-4, "warmup": 2000,
                  "milestones": [150000, 250000], "gamma": 0.05, "weight_decay": 0.0,
                  "w_explicit": 0.5, "w_commit": 0.02},
    "mask_transformer": {"latent_dim": 384, "ff_size": 1024, "num_layers": 8, "num_heads": 6, "dropout": 0.2,
                         "cond_drop_prob": 0.1, "batch_size": 64, "epochs": 500, "steps": None, "lr": 2e-4,
                         "warmup": 2000, "milestones": [50000], "gamma": 0.1, "weight_decay": 1e-5},
    "residual_transformer": {"latent_dim": 384, "ff_size": 1024, "num_layers": 8, "num_heads": 6,
                             "dropout": 0.2, "cond_drop_prob": 0.2, "share_weight": True, "batch_size": 64,
                             "epochs": 500, "steps": None, "lr": 2e-4, "warmup": 2000, "milestones": [50000],
                             "gamma": 0.1, "weight_decay": 1e-5},
    "sampler": {"iterations": 10, "cond_scale": 4.0, "res_cond_scale": 5.0, "temperature": 1.0,
                "topk_thres": 0.9, "gumbel": False, "precision": "fp32",
                "compile": False},  # ours: torch.compile of the guided transformer forward (eager fallback)
    "ckpt_every": 500,
}


def merge(base: dict, over: dict | None) -> dict:
    """Recursive dict merge (``over`` wins)."""
    out = dict(base)
    for k, v in (over or {}).items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def lr_lambda(warmup: int, milestones: Sequence[int], gamma: float):
    """Official schedule: linear warm-up ``(s+1)/(warmup+1)``, then x``gamma`` at each milestone."""
    def f(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return gamma ** sum(step >= m for m in milestones)
    return f


def joints_from_dim(d: int) -> int | None:
    """HumanML3D-style feature size ``12 J - 1`` -> ``J`` (263 -> 22, 251 -> 21); None otherwise."""
    return (d + 1) // 12 if (d + 1) % 12 == 0 else None
