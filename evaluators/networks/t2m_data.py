"""Duck-typed access to a text-to-motion split, and the official test-loader cropping.

A text-to-motion dataset object (``evaluators/datasets``) is read through :func:`t2m_split`,
which accepts any of these shapes (so the evaluators do not depend on one loader's class):

- ``data.split(name)`` returning an object with ``motions`` (list of RAW ``[T_i, D]`` arrays)
  and ``captions`` (list of lists of strings) or ``texts``; optional ``tokens`` (list of
  lists of ``word/POS`` lists, aligned with ``captions``) and ``names``;
- or a sequence of items, either dicts with ``motion`` and ``captions`` / ``texts`` keys, or
  objects with ``motion`` / ``texts`` attributes (``MotionTextDataset.split`` returns
  ``MotionTextSample(name, motion, texts=[Caption(caption, tokens, ...)])``); a caption may be
  a string, a dict with ``caption`` and ``tokens``, or an object with those attributes.

:func:`crop_like_official` reproduces the length handling of ``Text2MotionDatasetV2``
(T2M ``data/dataset.py``): length rounded down to a multiple of ``unit_length`` and, with
probability 1/3 ("double" coin), one more unit removed; a random start offset; the
evaluation then zero-pads to 196 frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class T2MSplit:
    """Raw motions ``[T_i, D]``, captions per motion, optional ``word/POS`` tokens per caption."""

    motions: list[np.ndarray]
    captions: list[list[str]]
    tokens: list[list[list[str]] | None] = field(default_factory=list)
    names: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.motions)

    @property
    def dim(self) -> int:
        return int(self.motions[0].shape[-1])

    def caption_input(self, i: int, j: int) -> str | list[str]:
        """Tokens of caption j of motion i when the dataset ships them, else the caption string."""
        toks = self.tokens[i] if i < len(self.tokens) else None
        return list(toks[j]) if toks and j < len(toks) and toks[j] else self.captions[i][j]


def _caption_fields(caps: Any) -> tuple[list[str], list[list[str]] | None]:
    if isinstance(caps, str):
        return [caps], None
    texts, toks = [], []
    for c in caps:
        if isinstance(c, dict):
            texts.append(str(c.get("caption", c.get("text", ""))))
            toks.append(list(c["tokens"]) if c.get("tokens") else [])
        elif hasattr(c, "caption"):
            texts.append(str(c.caption))
            toks.append(list(getattr(c, "tokens", None) or []))
        else:
            texts.append(str(c))
            toks.append([])
    return texts, (toks if any(toks) else None)


def t2m_split(data: Any, split: str = "test") -> T2MSplit:
    """Read ``split`` of a text-to-motion dataset (see module docstring for accepted shapes)."""
    if isinstance(data, T2MSplit):
        return data
    s = data.split(split) if hasattr(data, "split") and callable(data.split) else data
    if isinstance(s, T2MSplit):
        return s
    motions = getattr(s, "motions", None)
    if motions is not None:
        caps = getattr(s, "captions", None) or getattr(s, "texts", None)
        if caps is None:
            raise ValueError(f"text-to-motion split {split!r} has motions but no captions/texts")
        fields = [_caption_fields(c) for c in caps]
        tokens = getattr(s, "tokens", None)
        toks = list(tokens) if tokens is not None else [f[1] for f in fields]
        return T2MSplit([np.asarray(m, np.float32) for m in motions], [f[0] for f in fields], toks,
                        list(getattr(s, "names", []) or []))
    if isinstance(s, Sequence) or hasattr(s, "__getitem__"):
        items = [s[i] for i in range(len(s))]
        if items and not isinstance(items[0], dict) and hasattr(items[0], "motion"):
            items = [{"motion": it.motion, "captions": getattr(it, "texts", None) or getattr(it, "captions", []),
                      "name": getattr(it, "name", str(i))} for i, it in enumerate(items)]
        if items and isinstance(items[0], dict):
            fields = [_caption_fields(it.get("captions", it.get("texts", it.get("caption")))) for it in items]
            return T2MSplit([np.asarray(it["motion"], np.float32) for it in items], [f[0] for f in fields],
                            [it.get("tokens") or f[1] for it, f in zip(items, fields)],
                            [str(it.get("name", i)) for i, it in enumerate(items)])
    raise ValueError(f"cannot read a text-to-motion split {split!r} from {type(data).__name__}: expected "
                     "split(name) with motions/captions, or items with 'motion' and 'captions'")


def crop_like_official(motion: np.ndarray, rng: np.random.Generator, unit_length: int = 4,
                       max_len: int = 196) -> tuple[np.ndarray, int]:
    """Official ``Text2MotionDatasetV2`` length handling -> (cropped motion ``[m_len, D]``, m_len)."""
    idx, m_len = crop_window_official(len(motion), rng, unit_length, max_len)
    return motion[idx:idx + m_len], m_len


def crop_window_official(n_frames: int, rng: np.random.Generator, unit_length: int = 4,
                         max_len: int = 196) -> tuple[int, int]:
    """The ``(start, m_len)`` window :func:`crop_like_official` cuts from an ``n_frames`` motion
    (same random draws): the identity of a crop, e.g. for caching its evaluator embedding."""
    m_len = min(n_frames, max_len)
    if unit_length < 10:
        coin = rng.choice(["single", "single", "double"])
    else:
        coin = "single"
    if coin == "double":
        m_len = (m_len // unit_length - 1) * unit_length
    else:
        m_len = (m_len // unit_length) * unit_length
    m_len = max(m_len, unit_length)
    return int(rng.integers(0, n_frames - m_len + 1)), m_len


def pad_batch(motions: Sequence[np.ndarray], max_len: int | None = None) -> np.ndarray:
    """Zero-pad ``[T_i, D]`` arrays to ``[B, max_len, D]``."""
    t = max_len or max(len(m) for m in motions)
    out = np.zeros((len(motions), t, motions[0].shape[-1]), dtype=np.float32)
    for i, m in enumerate(motions):
        out[i, :len(m)] = m[:t]
    return out
