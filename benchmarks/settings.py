"""Per-method benchmark settings read from each method's own config.

- ``default_steps``: the sampler's configured step / iteration count (batch-32 runs use it:
  the papers' counts at paper scale, the smoke configs' shorter samplers at smoke scale);
- ``configured_batch``: the training batch of the main stage (train-step samples/s);
- ``PRECISION_KEYS`` / ``set_precision``: where each generator's ``precision: fp32 | bf16`` sampler
  setting lives in its method config (the bf16 sampling rows set it before building).

FLOPs, per-step latency and train-step throughput use the methods' own optional hooks
``Method.denoiser_example(batch)`` / ``Method.train_step_example(batch)`` (``methods/base.py``).
"""

from __future__ import annotations


def configured_batch(m, scale: str) -> int:
    """The training batch of the method's main (denoiser / transformer) stage at ``scale``."""
    c = m.cfg
    for path in (("benchmark_batch",), ("denoiser", "batch_size"), ("mask_transformer", "batch_size"),
                 ("pretrain", "batch_size"), ("train", "batch_size")):
        v = c
        for k in path:
            v = v.get(k) if isinstance(v, dict) else None
        if isinstance(v, int):
            # DiffusionPose's paper batch (512 over 8 GPUs) is 64 per device (mmpose 8xb64)
            return min(v, 64) if m.registry_name in ("diffusionpose", "heatmap_baseline") else v
    return 32


def default_steps(m) -> int | None:
    """The sampler's configured step / iteration count (``None``: not an iterative sampler)."""
    c, name = m.cfg, m.registry_name
    if name == "mld":
        return int(m.diff_cfg.get("steps", 50))
    if name in ("momask", "hgm3"):
        return int(m.c["sampler"]["iterations"])
    if name == "macdiff":
        return int((c.get("sampling") or {}).get("ddim_steps", 50))
    if name == "diffusionpose":
        return int(c.get("sample_steps", 2))
    return None


# method -> path of its sampler ``precision`` key in the method config (evaluators/core/precision.py)
PRECISION_KEYS = {"mld": ("diffusion", "precision"), "momask": ("sampler", "precision"),
                  "hgm3": ("sampler", "precision"), "macdiff": ("sampling", "precision"),
                  "diffusionpose": ("precision",)}


def set_precision(cfg: dict, name: str, precision: str) -> dict:
    """``cfg`` (a method config, modified in place and returned) with its sampler precision set."""
    *parents, key = PRECISION_KEYS[name]
    d = cfg
    for k in parents:
        d = d.setdefault(k, {})
    d[key] = precision
    return cfg
