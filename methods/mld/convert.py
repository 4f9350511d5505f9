"""Map the official MLD Lightning checkpoint onto our modules.

The authors' checkpoints (``ChenFengYe/motion-latent-diffusion``, e.g.
``1222_mld_humanml3d_FID041.ckpt``) are PyTorch-Lightning files whose ``state_dict`` holds
``vae.*`` (``MldVae``), ``denoiser.*`` (``MldDenoiser``), ``text_encoder.text_model.*`` (the
frozen CLIP) and ``t2m_*`` (the frozen T2M evaluator). Our ``MotionVAE`` and
``LatentDenoiser`` keep the official parameter names and shapes, so the conversion is a
prefix split; CLIP and the evaluator are not taken from the file (the text encoder is
loaded from ``text_encoder.clip_path``, the evaluator belongs to ``evaluators/``).

Our own checkpoints are ``{"vae": sd, "denoiser": sd, ...}`` (``Method.state_dict``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from evaluators.core.safe_load import load_checkpoint_file
from methods.mld.support import load_stats

OFFICIAL_PREFIXES = {"vae.": "vae", "denoiser.": "denoiser"}
IGNORED_PREFIXES = ("text_encoder.", "t2m_textencoder.", "t2m_moveencoder.", "t2m_motionencoder.", "_losses.")


def is_official(state: dict[str, Any]) -> bool:
    """True for a Lightning checkpoint (``state_dict`` with ``vae.`` / ``denoiser.`` keys)."""
    sd = state.get("state_dict", state)
    return isinstance(sd, dict) and any(isinstance(k, str) and k.startswith("denoiser.") for k in sd)


def convert_official(state: dict[str, Any]) -> dict[str, dict[str, torch.Tensor]]:
    """Official Lightning ``state_dict`` -> ``{"vae": ..., "denoiser": ...}`` in our key layout."""
    sd = state.get("state_dict", state)
    out: dict[str, dict[str, torch.Tensor]] = {"vae": {}, "denoiser": {}}
    unknown = []
    for key, value in sd.items():
        for prefix, comp in OFFICIAL_PREFIXES.items():
            if key.startswith(prefix):
                out[comp][key[len(prefix):]] = value
                break
        else:
            if not key.startswith(IGNORED_PREFIXES):
                unknown.append(key)
    if unknown:
        raise KeyError(f"official MLD checkpoint has unexpected keys (first 5): {unknown[:5]}")
    if not out["vae"] or not out["denoiser"]:
        raise KeyError("official MLD checkpoint lacks vae.* or denoiser.* weights")
    return out


def infer_sizes(converted: dict[str, dict[str, torch.Tensor]]) -> dict[str, Any]:
    """Architecture sizes read from converted weights (to check them against the config)."""
    vae, den = converted["vae"], converted["denoiser"]
    n_in = len({m.group(1) for k in vae if (m := re.match(r"encoder\.input_blocks\.(\d+)\.", k))})
    sizes: dict[str, Any] = {
        "nfeats": int(vae["skel_embedding.weight"].shape[1]),
        "latent_size": int(vae["global_motion_token"].shape[0]) // 2,
        "latent_dim": int(vae["global_motion_token"].shape[1]),
        "ff_size": int(vae["encoder.middle_block.linear1.weight"].shape[0]),
        "vae_layers": 2 * n_in + 1,
    }
    if "emb_proj.action_embedding" in den:
        sizes["condition"] = "action"
        sizes["nclasses"] = int(den["emb_proj.action_embedding"].shape[0])
    else:
        sizes["condition"] = "text"
        sizes["text_encoded_dim"] = int(den["time_embedding.linear_1.weight"].shape[1])
    return sizes


def load_any(path: str | Path) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, Any]]:
    """Read our checkpoint or an official one -> (component state dicts, extra info)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    state = load_checkpoint_file(path)  # Lightning hparams allow-listed
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {path}: expected a dict, got {type(state).__name__}")
    if is_official(state):
        conv = convert_official(state)
        return conv, {"format": "official", "sizes": infer_sizes(conv)}
    comps = state.get("components", state)
    if "vae" not in comps or "denoiser" not in comps:
        raise ValueError(f"checkpoint {path}: neither an official MLD Lightning checkpoint nor ours "
                         f"(keys: {sorted(comps)[:8]})")
    return {"vae": comps["vae"], "denoiser": comps["denoiser"]}, {"format": "motionrepro",
                                                                  "extra": state.get("extra", {})}


def load_into(method, path: str | Path) -> dict[str, Any]:
    """Load our checkpoint or the authors' Lightning checkpoint into ``method`` (an MLD), strictly;
    rebuilds it first when the file's sizes differ and sets Mean/Std (the file's, or ``stats_dir``'s)."""
    comps, info = load_any(path)
    sizes = info.get("sizes") or {}
    extra = info.get("extra") or {}
    nfeats = int(sizes.get("nfeats", extra.get("nfeats", method.nfeats)))
    nclasses = int(sizes.get("nclasses", extra.get("nclasses", method.nclasses)) or 0)
    if "text_encoded_dim" in sizes and sizes["text_encoded_dim"] != method.denoiser.text_encoded_dim:
        raise ValueError(f"{path}: the denoiser was trained on {sizes['text_encoded_dim']}-d text embeddings "
                         f"but text_encoder gives {method.denoiser.text_encoded_dim}-d; for the official weights "
                         "set CLIP_VIT_L14_DIR=<local CLIP ViT-L/14> (or text_encoder.kind=clip "
                         "text_encoder.clip_path=DIR)")
    if nfeats != method.nfeats or nclasses != method.nclasses:
        method._build(nfeats, nclasses)
    method.load_state_dict(comps, strict=True)
    method._bf16_denoiser = None
    if extra.get("mean") is not None:
        method.set_normalization(extra["mean"], extra["std"])
    elif method.cfg["stats_dir"]:  # official checkpoints carry no Mean/Std: the dataset's files
        method.set_normalization(*load_stats(method.cfg["stats_dir"]))
    elif info.get("format") == "official" and method.mean is None:
        raise FileNotFoundError(f"{path}: the authors' checkpoint carries no Mean/Std; set "
                                "method_cfg.stats_dir=<HumanML3D folder with Mean.npy/Std.npy>")
    method.vae.eval()
    method.denoiser.eval()
    return info
