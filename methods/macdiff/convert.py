"""Official MacDiff / MAMP checkpoint layout -> ours.

The official pretraining checkpoint (``main_pretrain.py``, MAE-style ``save_model``) is a dict
``{"model": state_dict, "optimizer": ..., "epoch": ..., "args": ...}`` whose ``model`` holds the
``Transformer`` of ``model/transformer_macdiff.py`` (``Wenrui-Shen/MacDiff@692888f``)::

    joints_embed.proj.{weight,bias}  temp_embed  pos_embed  norm.{weight,bias}
    blocks.{i}.{norm1,norm2}.{weight,bias}  blocks.{i}.attn.{qkv,proj}.{weight,bias}
    blocks.{i}.mlp.{fc1,fc2}.{weight,bias}
    decoder_embed.proj.*  decoder_temp_embed  decoder_pos_embed  decoder_norm.*  decoder_pred.*
    decoder_blocks.{i}.{norm1,norm2}.{fc_z,fc_t,norm}.{weight,bias}
    decoder_blocks.{i}.attn.{qkv,proj}.*  decoder_blocks.{i}.mlp.{fc1,fc2}.*

Ours (``MacDiffCore``): ``encoder.<official encoder key>`` and ``decoder.<key without the
decoder_ prefix>`` (``decoder_blocks`` -> ``decoder.blocks``, ``decoder_pred`` -> ``decoder.pred``).
Downstream checkpoints (``transformer_downstream.py``, MAMP ``model/transformer.py``) hold the
encoder keys plus ``head.*``; they convert to an encoder-only state dict (the head is returned
separately). A DDP ``module.`` prefix is stripped.
"""

from __future__ import annotations

from typing import Any

import torch

ENCODER_PREFIXES = ("joints_embed.", "blocks.", "norm.", "temp_embed", "pos_embed")
_DECODER_MAP = {"decoder_embed.": "embed.", "decoder_blocks.": "blocks.", "decoder_norm.": "norm.",
                "decoder_temp_embed": "temp_embed", "decoder_pos_embed": "pos_embed", "decoder_pred.": "pred."}


def unwrap(obj: Any) -> dict[str, torch.Tensor]:
    """The parameter dict inside an official checkpoint file's object (``model``/``state_dict``)."""
    for key in ("model", "state_dict", "model_state"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(k, str) for k in obj):
        raise ValueError("checkpoint does not contain a state dict (expected a dict or {'model': dict})")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in obj.items()}


def is_official(state: dict[str, Any]) -> bool:
    """True when the keys follow the official layout (no ``encoder.``/``decoder.`` prefixes)."""
    return any(k.startswith("joints_embed.") for k in state) and not any(k.startswith("encoder.") for k in state)


def convert_official(state: dict[str, torch.Tensor]) -> tuple[dict, dict, dict]:
    """Official keys -> ``(encoder_sd, decoder_sd, head_sd)`` in our naming.

    Raises ValueError naming any key that maps nowhere (nothing is silently dropped).
    """
    enc, dec, head, unknown = {}, {}, {}, []
    for key, val in unwrap(state).items():
        if key.startswith("head."):
            head[key[len("head."):]] = val
            continue
        for src, dst in _DECODER_MAP.items():
            if key.startswith(src):
                dec[dst + key[len(src):]] = val
                break
        else:
            if key.startswith(ENCODER_PREFIXES):
                enc[key] = val
            else:
                unknown.append(key)
    if unknown:
        raise ValueError(f"official checkpoint has keys with no counterpart in our model: {unknown[:10]}")
    return enc, dec, head


def to_official(encoder_sd: dict, decoder_sd: dict) -> dict[str, torch.Tensor]:
    """Our encoder/decoder state dicts -> the official flat layout (inverse of :func:`convert_official`)."""
    out = dict(encoder_sd)
    inv = {v: k for k, v in _DECODER_MAP.items()}
    for key, val in decoder_sd.items():
        for src, dst in inv.items():
            if key.startswith(src):
                out[dst + key[len(src):]] = val
                break
        else:
            raise ValueError(f"decoder key {key!r} has no official counterpart")
    return out
