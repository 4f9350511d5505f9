"""The T2M text-motion evaluator (Guo et al. 2022): config, official checkpoint I/O, embeddings.

``T2MEvaluator`` bundles the three official networks (:mod:`evaluators.networks.t2m_modules`),
the evaluator's own feature mean/std, and a word vectorizer. It embeds

- captions -> ``[B, 512]`` (:meth:`T2MEvaluator.embed_text`), via ``word/POS`` tokens;
- RAW motion features ``[B, T, D]`` (what ``MotionGenerator.generate`` returns) ->
  ``[B, 512]`` (:meth:`T2MEvaluator.embed_motion`). The raw features are normalised with
  the EVALUATOR's mean/std (never the generator's: the MLD FAQ pitfall, MLD ``renorm4t2m``),
  zeroed beyond each length (the official loader zero-pads after normalising), the 4 foot-contact
  channels are dropped, and the GRU runs over ``length // unit_length`` movement tokens.

Configs (``humanml3d``: 263-d, 22 joints; ``kit``: 251-d, 21 joints) follow the official
``EvaluatorModelWrapper`` constants and ``humanml_opt.txt`` / ``kit_opt.txt`` (dim_word 300,
15 POS, text hidden 512, motion hidden 1024, co-embedding 512, movement 512/512, unit 4).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from evaluators.core.io import atomic_torch_save
from evaluators.core.safe_load import load_checkpoint_file
from evaluators.networks.t2m_modules import MotionEncoderBiGRUCo, MovementConvEncoder, TextEncoderBiGRUCo
from evaluators.networks.word_vectors import MAX_TEXT_LEN, POS_ENUMERATOR, default_vectorizer, tokenize_caption
from evaluators.provenance import entry, sha256_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EvaluatorConfig:
    """Sizes of the evaluator (defaults = the released HumanML3D / KIT evaluators)."""

    dataset: str = "humanml3d"
    dim_pose: int = 263
    joints_num: int = 22
    dim_word: int = 300
    dim_pos_ohot: int = len(POS_ENUMERATOR)
    dim_text_hidden: int = 512
    dim_motion_hidden: int = 1024
    dim_coemb_hidden: int = 512
    dim_movement_enc_hidden: int = 512
    dim_movement_latent: int = 512
    unit_length: int = 4
    max_text_len: int = MAX_TEXT_LEN
    max_motion_length: int = 196


CONFIGS = {
    "humanml3d": EvaluatorConfig("humanml3d", 263, 22),
    "kit": EvaluatorConfig("kit", 251, 21),
}
_ALIASES = {"t2m": "humanml3d", "humanml": "humanml3d", "kit_ml": "kit", "kitml": "kit", "kit-ml": "kit"}


def evaluator_config(name_or_dim: str | int, **overrides) -> EvaluatorConfig:
    """Config by dataset name (``humanml3d``/``t2m``, ``kit``) or feature dim (263 / 251)."""
    if isinstance(name_or_dim, int):
        base = next((c for c in CONFIGS.values() if c.dim_pose == name_or_dim), None)
        if base is None:  # e.g. a synthetic set with another feature size
            base = replace(CONFIGS["humanml3d"], dataset=f"dim{name_or_dim}", dim_pose=name_or_dim)
    else:
        key = _ALIASES.get(name_or_dim.lower(), name_or_dim.lower())
        if key not in CONFIGS:
            raise ValueError(f"unknown evaluator config {name_or_dim!r}; known: {sorted(CONFIGS)}")
        base = CONFIGS[key]
    return replace(base, **overrides) if overrides else base


def read_opt_file(path: str | Path) -> dict[str, str]:
    """Parse an official ``*_opt.txt`` (``key: value`` lines between the banner lines)."""
    out = {}
    for line in Path(path).read_text().splitlines():
        if ":" in line and not line.startswith("-"):
            k, v = line.split(":", 1)
            out[k.strip()] = v.strip()
    return out


def evaluator_std(std: np.ndarray, joints_num: int, feat_bias: float = 5.0) -> np.ndarray:
    """Evaluator std from a dataset std: root (0:4) and foot-contact channels divided by feat_bias^2.

    Measured on the released files: MDM's ``t2m_std.npy`` / HumanML3D ``Std.npy`` is ~25 on
    the 4 root channels and the 4 foot contacts and ~1 elsewhere (the T2M loaders divide those
    parts by ``feat_bias = 5``; the released meta std carries that factor twice).
    """
    s = np.array(std, dtype=np.float64, copy=True)
    s[0:4] /= feat_bias ** 2
    s[4 + (joints_num - 1) * 9 + joints_num * 3:] /= feat_bias ** 2
    return s


def renorm_for_evaluator(x_gen_norm, gen_mean, gen_std, ev_mean, ev_std):
    """MLD ``renorm4t2m``: generator-normalised features -> RAW (generator stats) -> evaluator-normalised.

    ``x * gen_std + gen_mean`` recovers the raw features, ``(raw - ev_mean) / ev_std`` is what the
    evaluator expects. Works on numpy arrays or tensors ``[..., D]``.
    """
    raw = x_gen_norm * gen_std + gen_mean
    return (raw - ev_mean) / ev_std


ROOT_ENV = "T2M_EVALUATOR_ROOT"
GLOVE_FILES = ("our_vab_data.npy", "our_vab_words.pkl", "our_vab_idx.pkl")
_OFFICIAL_DIR = {"humanml3d": "t2m", "kit": "kit"}  # checkpoints/<dir>/ and MDM's <dir>_mean.npy
# dataset-opt folders whose meta/ holds the evaluator mean/std: T2M/MLD use Comp_v6_KLD01
# (text-to-motion final_evaluations.py, MLD mld/data/get_data.py:28), MoMask Comp_v6_KLD005
# (momask-codes eval_t2m_trans_res.py:126-127); both hold the same released statistics.
_META_DIRS = ("Comp_v6_KLD01", "Comp_v6_KLD005")


def locate_official_files(root: str | Path, dataset: str = "humanml3d") -> dict[str, str | None]:
    """Find the released evaluator files under one folder ``root`` (``$T2M_EVALUATOR_ROOT``).

    Accepted layouts (first hit wins), for ``d = t2m`` (HumanML3D) or ``kit``:

    - checkpoint: ``[checkpoints/]<d>/text_mot_match/model/finest.tar`` (text-to-motion / MoMask
      READMEs; MLD's ``deps/t2m/<d>/...`` is the same with ``root = deps/t2m``);
    - mean/std: ``[checkpoints/]<d>/Comp_v6_KLD01|Comp_v6_KLD005/meta/{mean,std}.npy``, or MDM's
      ``[dataset/]<d>_mean.npy`` / ``<d>_std.npy``;
    - GloVe: ``glove/our_vab_*`` (also ``../glove``, as MLD's ``deps/glove`` beside ``deps/t2m``).

    Returns ``{"checkpoint", "glove_dir", "mean", "std"}`` with ``None`` where nothing was found.
    """
    root = Path(root)
    cfg = evaluator_config(dataset)
    d = _OFFICIAL_DIR.get(cfg.dataset, cfg.dataset)
    bases = [root, root / "checkpoints"]

    def first(cands):
        return next((str(c) for c in cands if c.is_file() or (c.is_dir() and c.name == "glove"
                                                              and (c / GLOVE_FILES[0]).is_file())), None)

    out = {"checkpoint": first([b / d / "text_mot_match" / "model" / "finest.tar" for b in bases])}
    for key in ("mean", "std"):
        out[key] = first([b / d / m / "meta" / f"{key}.npy" for b in bases for m in _META_DIRS]
                         + [b / f"{d}_{key}.npy" for b in (root, root / "dataset")])
    out["glove_dir"] = first([root / "glove", root.parent / "glove"])
    return out


def resolve_official_files(ecfg: dict, dataset: str = "humanml3d", env: dict | None = None) -> dict:
    """Fill ``checkpoint / glove_dir / mean / std`` of an ``evaluator`` config from ``$T2M_EVALUATOR_ROOT``.

    Explicit config values win; the root fills only what is unset. Returns a new dict (``root``
    added when the variable was used). Without the variable the config is returned unchanged.
    """
    env = os.environ if env is None else env
    out = dict(ecfg)
    root = out.get("root") or env.get(ROOT_ENV)
    if not root:
        return out
    if not Path(root).is_dir():
        raise FileNotFoundError(f"{ROOT_ENV}={root}: not a folder (expected the official "
                                "checkpoints/t2m/text_mot_match/... and glove/ layout)")
    found = locate_official_files(root, dataset)
    for k, v in found.items():
        if not out.get(k):
            out[k] = v
    if not out.get("checkpoint"):
        raise FileNotFoundError(f"{ROOT_ENV}={root}: no {_OFFICIAL_DIR.get(evaluator_config(dataset).dataset, dataset)}"
                                "/text_mot_match/model/finest.tar under it (nor under checkpoints/)")
    out["root"] = str(root)
    return out


class T2MEvaluator(nn.Module):
    """Frozen text/motion co-embedding networks + evaluator normalisation + word vectors."""

    def __init__(self, cfg: EvaluatorConfig | str = "humanml3d", mean=None, std=None, vectorizer=None):
        super().__init__()
        self.cfg = evaluator_config(cfg) if isinstance(cfg, str) else cfg
        c = self.cfg
        self.text_encoder = TextEncoderBiGRUCo(c.dim_word, c.dim_pos_ohot, c.dim_text_hidden, c.dim_coemb_hidden)
        self.movement_encoder = MovementConvEncoder(c.dim_pose - 4, c.dim_movement_enc_hidden, c.dim_movement_latent)
        self.motion_encoder = MotionEncoderBiGRUCo(c.dim_movement_latent, c.dim_motion_hidden, c.dim_coemb_hidden)
        self.register_buffer("mean", torch.zeros(c.dim_pose) if mean is None else torch.as_tensor(mean).float())
        self.register_buffer("std", torch.ones(c.dim_pose) if std is None else torch.as_tensor(std).float())
        self._vectorizer = vectorizer
        self.meta: dict = {}

    # -- official checkpoint layout ------------------------------------------------------------
    def official_state_dict(self, epoch: int = 0) -> dict:
        """``finest.tar`` layout: ``text_encoder``, ``movement_encoder``, ``motion_encoder``, ``epoch``."""
        return {"text_encoder": self.text_encoder.state_dict(), "movement_encoder": self.movement_encoder.state_dict(),
                "motion_encoder": self.motion_encoder.state_dict(), "epoch": epoch}

    def load_official_state(self, ckpt: dict) -> None:
        """Load a ``finest.tar`` dict strictly (raises on any missing / unexpected key or shape)."""
        missing = [k for k in ("text_encoder", "movement_encoder", "motion_encoder") if k not in ckpt]
        if missing:
            raise KeyError(f"evaluator checkpoint lacks {missing}; has {sorted(ckpt)}")
        self.text_encoder.load_state_dict(ckpt["text_encoder"], strict=True)
        self.movement_encoder.load_state_dict(ckpt["movement_encoder"], strict=True)
        self.motion_encoder.load_state_dict(ckpt["motion_encoder"], strict=True)

    @classmethod
    def from_official(cls, checkpoint: str | Path, cfg: EvaluatorConfig | str = "humanml3d",
                      glove_dir: str | Path | None = None, mean_path: str | Path | None = None,
                      std_path: str | Path | None = None) -> T2MEvaluator:
        """The released evaluator: ``finest.tar`` + GloVe ``our_vab_*`` dir + evaluator mean/std ``.npy``.

        Strict: the official evaluation always uses all three (``motion_loaders/
        dataset_motion_loader.py:15-18``), so a missing one is a ``FileNotFoundError`` naming it,
        never a silent MiniLM / unnormalised fallback.
        """
        path = Path(checkpoint)
        missing = []
        if not path.is_file():
            missing.append(f"{path} (evaluator checkpoint text_mot_match/model/finest.tar)")
        if not glove_dir:
            missing.append("evaluator.glove_dir (folder with our_vab_data.npy / our_vab_words.pkl / our_vab_idx.pkl)")
        else:
            for name in GLOVE_FILES:
                if not (Path(glove_dir) / name).is_file():
                    missing.append(str(Path(glove_dir) / name))
        for key, val in (("mean", mean_path), ("std", std_path)):
            if not val:
                missing.append(f"evaluator.{key} (Comp_v6_KLD01/meta/{key}.npy or MDM's t2m_{key}.npy)")
            elif not Path(val).is_file():
                missing.append(f"{val} (evaluator {key})")
        if missing:
            raise FileNotFoundError("official T2M evaluator incomplete, missing: " + "; ".join(missing)
                                    + f" (or set {ROOT_ENV} to a folder with the official layout)")
        mean, std = np.load(mean_path), np.load(std_path)
        ev = cls(cfg, mean=mean, std=std, vectorizer=default_vectorizer(str(glove_dir)))
        if mean.shape != (ev.cfg.dim_pose,) or std.shape != (ev.cfg.dim_pose,):
            raise ValueError(f"{mean_path} / {std_path}: shapes {mean.shape} / {std.shape}, the "
                             f"{ev.cfg.dataset} evaluator needs ({ev.cfg.dim_pose},)")
        ev.load_official_state(load_checkpoint_file(path, what="evaluator checkpoint"))
        ev.meta = {"source": "official", "checkpoint": str(path), "word_vectors": "glove",
                   "glove_dir": str(glove_dir), "mean": str(mean_path), "std": str(std_path)}
        return ev.eval()

    def provenance(self) -> dict[str, dict]:
        """``evaluator`` and ``word_vectors`` entries for a run record (``evaluators/provenance.py``)."""
        m = self.meta
        if m.get("source") == "official":
            ev = entry("official", "official T2M evaluator", file=m["checkpoint"], sha256=sha256_file(m["checkpoint"]),
                       mean_sha256=sha256_file(m["mean"]), std_sha256=sha256_file(m["std"]))
        else:
            ev = entry("retrained", "T2M evaluator retrained here (official recipe)",
                       steps=(m.get("hparams") or {}).get("steps"), cache_key=m.get("cache_key"))
        if m.get("word_vectors") == "glove" and m.get("glove_dir"):
            wv = entry("glove", "GloVe our_vab (official)", sha256=sha256_file(Path(m["glove_dir"]) / GLOVE_FILES[0]))
        elif m.get("word_vectors") == "glove":
            wv = entry("glove", "GloVe our_vab (official)")
        else:
            wv = entry("minilm-projected", "MiniLM WordPiece vectors projected to 300-d (not GloVe)")
        return {"evaluator": ev, "word_vectors": wv}

    def save(self, path: str | Path) -> None:
        """Atomic save: official layout + our mean/std/config/meta."""
        state = self.official_state_dict()
        state.update(mean=self.mean.cpu(), std=self.std.cpu(), config=asdict(self.cfg), meta=self.meta)
        atomic_torch_save(state, path)

    @classmethod
    def load(cls, path: str | Path) -> T2MEvaluator:
        state = load_checkpoint_file(path, what="evaluator checkpoint")
        ev = cls(EvaluatorConfig(**state["config"]), mean=state["mean"], std=state["std"])
        ev.load_official_state(state)
        ev.meta = dict(state.get("meta", {}))
        return ev.eval()

    # -- embeddings ----------------------------------------------------------------------------
    @property
    def vectorizer(self):
        if self._vectorizer is None:
            self._vectorizer = default_vectorizer(None)
        return self._vectorizer

    @property
    def device(self) -> torch.device:
        return self.mean.device

    def text_inputs(self, captions: Sequence[str | Sequence[str]]):
        """Captions (strings, or ``word/POS`` token lists) -> ``word_embs, pos_ohot, cap_lens`` tensors."""
        rows = [self.vectorizer.encode_tokens(tokenize_caption(c) if isinstance(c, str) else list(c),
                                              self.cfg.max_text_len) for c in captions]
        w = torch.from_numpy(np.stack([r[0] for r in rows])).to(self.device)
        p = torch.from_numpy(np.stack([r[1] for r in rows])).to(self.device)
        lens = torch.tensor([r[2] for r in rows], dtype=torch.int64)
        return w, p, lens

    def normalize(self, raw: torch.Tensor, lengths: Sequence[int] | torch.Tensor) -> torch.Tensor:
        """RAW features ``[B, T, D]`` -> evaluator-normalised, zero beyond each length."""
        raw = torch.as_tensor(raw, dtype=torch.float32, device=self.device)
        if raw.ndim != 3 or raw.shape[-1] != self.cfg.dim_pose:
            raise ValueError(f"motions must be [B, T, {self.cfg.dim_pose}], got {tuple(raw.shape)}")
        x = (raw - self.mean) / self.std
        lens = torch.as_tensor(lengths, device=self.device).view(-1, 1, 1)
        return x * (torch.arange(x.shape[1], device=self.device).view(1, -1, 1) < lens)

    def motion_embedding_normalized(self, motions: torch.Tensor, lengths) -> torch.Tensor:
        """Evaluator-normalised ``[B, T, D]`` -> ``[B, 512]`` (official ``get_motion_embeddings``).

        As ``networks/evaluator_wrapper.py:89-91`` (EricGuo5513/text-to-motion@72df96e): the
        movement encoder convolves ALL ``T`` padded frames (no truncation to a multiple of 4;
        two stride-2 convs give ``T // 4`` tokens), and the GRU reads ``length // unit_length``
        tokens. A length below ``unit_length`` gives 0 tokens, which the official
        ``pack_padded_sequence`` rejects; we raise the same refusal with the lengths named.
        """
        m_lens = torch.as_tensor(lengths).to("cpu", torch.int64) // self.cfg.unit_length
        if m_lens.numel() and int(m_lens.min()) < 1:
            bad = [int(x) for x in torch.as_tensor(lengths).reshape(-1) if int(x) < self.cfg.unit_length]
            raise ValueError(f"motion lengths {bad} are below the evaluator's unit_length "
                             f"{self.cfg.unit_length}: the T2M motion encoder needs at least one movement token "
                             "(the official code fails in pack_padded_sequence)")
        movements = self.movement_encoder(motions[..., :-4])
        if int(m_lens.max()) > movements.shape[1]:
            raise ValueError(f"motion lengths up to {int(m_lens.max()) * self.cfg.unit_length} exceed the "
                             f"{motions.shape[1]} padded frames")
        return self.motion_encoder(movements, m_lens)

    @torch.no_grad()
    def embed_motion(self, raw: torch.Tensor, lengths) -> torch.Tensor:
        """RAW motion features ``[B, T, D]`` + lengths -> motion embeddings ``[B, 512]`` (eval mode)."""
        was = self.training
        self.eval()
        out = self.motion_embedding_normalized(self.normalize(raw, lengths), lengths)
        self.train(was)
        return out

    @torch.no_grad()
    def embed_text(self, captions) -> torch.Tensor:
        """Captions -> text embeddings ``[B, 512]`` (eval mode)."""
        was = self.training
        self.eval()
        out = self.text_encoder(*self.text_inputs(captions))
        self.train(was)
        return out
