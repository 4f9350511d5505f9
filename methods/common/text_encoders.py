"""Which frozen text encoder a method uses: the paper's CLIP from a local folder, or MiniLM.

The papers condition on CLIP text features (MLD: ViT-L/14, 768-d; MoMask and HGM3: ViT-B/32,
512-d: ``clip.encode_text`` = projected EOT-token state, momask-codes
``models/mask_transformer/transformer.py:179-197``). CLIP weights are never downloaded, so a
config chooses with ``text_encoder.kind``:

- ``clip``: ``clip_path`` must be a local folder (transformers ``save_pretrained`` layout of
  ``CLIPModel`` or ``CLIPTextModelWithProjection``, plus its tokenizer);
- ``minilm``: the bundled offline sentence encoder (384-d) - numbers are NOT comparable with
  the paper's;
- ``auto`` (the paper experiments): CLIP when a folder is given by ``clip_path`` or by the
  variable of the paper's variant (``$CLIP_VIT_B32_DIR`` / ``$CLIP_VIT_L14_DIR``), else MiniLM
  with ONE warning line saying so.

:func:`resolve_text_encoder` turns a config block into ``{kind, clip_path, dim}``;
:func:`text_encoder_entry` is its provenance entry (``evaluators/provenance.py``).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from evaluators.provenance import entry, sha256_tree

log = logging.getLogger(__name__)

CLIP_ENV = {"clip-vit-b32": "CLIP_VIT_B32_DIR", "clip-vit-l14": "CLIP_VIT_L14_DIR"}
CLIP_LABEL = {"clip-vit-b32": "CLIP ViT-B/32", "clip-vit-l14": "CLIP ViT-L/14"}
MINILM_DIM = 384
_WARNED: set[str] = set()


def clip_projection_dim(folder: str | Path) -> int:
    """The projection width in a local CLIP folder's ``config.json`` (CLIPModel or text-only layout)."""
    conf = Path(folder) / "config.json"
    if not conf.is_file():
        raise FileNotFoundError(f"{conf}: not a transformers CLIP folder (no config.json)")
    c = json.loads(conf.read_text())
    dim = c.get("projection_dim") or (c.get("text_config") or {}).get("projection_dim")
    if not dim:
        raise ValueError(f"{conf}: no projection_dim (expected a CLIP text model with projection)")
    return int(dim)


def resolve_text_encoder(te: dict, variant: str, method: str, env: dict | None = None) -> dict[str, Any]:
    """Config block (``kind`` required) -> ``{"kind": "clip"|"minilm", "clip_path", "dim", "variant"}``
    (see module doc)."""
    env = os.environ if env is None else env
    te = dict(te)
    kind = str(te["kind"])
    path = te.get("clip_path")
    if kind == "auto":
        path = path or env.get(CLIP_ENV[variant])
        if path:
            kind = "clip"
        else:
            kind = "minilm"
            if method not in _WARNED:
                _WARNED.add(method)
                log.warning("%s: no %s folder (set %s or method_cfg.text_encoder.clip_path): using MiniLM, so "
                            "these numbers are NOT comparable with the paper's", method, CLIP_LABEL[variant],
                            CLIP_ENV[variant])
    if kind == "clip":
        if te.get("kind") == "clip" and not (path and Path(str(path)).is_dir()):
            # explicit clip without a folder: sizes only (model cards, tests); the encoder refuses on use
            return {**te, "kind": "clip", "clip_path": path, "variant": variant}
        if not path or not Path(str(path)).is_dir():
            raise ValueError(f"{method}: text_encoder.kind=clip needs a local {CLIP_LABEL[variant]} folder, got "
                             f"clip_path={path!r} (set {CLIP_ENV[variant]}; nothing is downloaded)")
        dim = clip_projection_dim(path)
        if te.get("dim") and int(te["dim"]) != dim and te.get("kind") != "auto":
            raise ValueError(f"{method}: text_encoder.dim={te['dim']} but {path} projects to {dim}-d")
        return {**te, "kind": "clip", "clip_path": str(path), "dim": dim, "variant": variant}
    if kind != "minilm":
        raise ValueError(f"{method}: text_encoder.kind must be auto, clip or minilm, got {kind!r}")
    dim = int(te["dim"]) if te.get("dim") and te.get("kind") != "auto" else MINILM_DIM
    return {**te, "kind": "minilm", "clip_path": None, "dim": dim, "variant": variant}


def text_encoder_entry(te: dict) -> dict[str, Any]:
    """Provenance entry of a resolved text encoder block."""
    if te.get("kind") == "clip":
        variant = str(te.get("variant") or "clip")
        return entry(variant, f"{CLIP_LABEL.get(variant, 'CLIP')} (local folder)", path=str(te["clip_path"]),
                     config_sha256=sha256_tree(te["clip_path"], ("*.json", "*.txt")), dim=int(te["dim"]))
    return entry("minilm", "all-MiniLM-L6-v2 (not the paper's CLIP)", dim=int(te.get("dim") or MINILM_DIM))


def load_clip_text_model(folder: str | Path):
    """The CLIP text tower WITH its projection from a local folder, loaded strictly.

    A full ``CLIPModel`` folder (``openai/clip-vit-*`` as released) keeps ``projection_dim`` at the
    top level, which ``CLIPTextModelWithProjection.from_pretrained`` does not read: it would
    silently re-initialise ``text_projection`` at the default width. So a full folder is loaded as
    ``CLIPModel`` and its ``text_model`` + ``text_projection`` weights copied with ``strict=True``.
    """
    from transformers import CLIPModel, CLIPTextConfig, CLIPTextModelWithProjection  # lazy: heavy import, CLIP only

    conf = json.loads((Path(folder) / "config.json").read_text())
    if conf.get("model_type") != "clip":
        return CLIPTextModelWithProjection.from_pretrained(str(folder), local_files_only=True)
    full = CLIPModel.from_pretrained(str(folder), local_files_only=True)
    tcfg = CLIPTextConfig(**{**full.config.text_config.to_dict(), "projection_dim": full.config.projection_dim})
    text = CLIPTextModelWithProjection(tcfg)
    sd = {k: v for k, v in full.state_dict().items() if k.startswith(("text_model.", "text_projection."))}
    text.load_state_dict(sd, strict=True)
    return text.eval()
