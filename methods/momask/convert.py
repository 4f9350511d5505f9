"""Load MoMask weights: our ``<method>.pt`` or the official release layout.

Official layout (EricGuo5513/momask-codes, ``checkpoints/<t2m|kit>/<run>/model/*.tar``):

- tokenizer run: RVQVAE state dict under ``vq_model`` (or ``net``);
- masked-transformer run: under ``t2m_transformer`` (or ``trans``);
- residual-transformer run: under ``res_transformer``;
- dataset statistics, when shipped: ``<run>/meta/mean.npy`` and ``std.npy``.

Which file of each run is loaded follows the authors' scripts (:data:`OFFICIAL_FILES`):
``gen_t2m.py`` loads the tokenizer from ``net_best_fid.tar`` (line 40), the residual transformer
from ``net_best_fid.tar`` (line 87) and the masked transformer from ``latest.tar`` (line 151);
``eval_t2m_trans_res.py`` does the same (lines 33, 80; the masked transformer is the file whose
name contains ``--which_epoch``, default ``latest``: line 139 and ``options/eval_option.py:6``).
The config key ``official_files: {role: file name}`` overrides the choice per role; the files
chosen are recorded in ``method.official_files_loaded`` and in the method's ``provenance()``.

Training from an official tokenizer is refused (:func:`refuse_official_tokenizer_training`): the
official quantizer's "initialised" flag is a plain attribute, not a buffer
(``models/vq/quantizer.py:44,60-65,136-137``), so the authors' code *re-initialises every
codebook from the first training batch* after loading, discarding the released codebooks.

Our modules keep the official key names, so the mapping only (a) drops the frozen
``clip_model.*`` entries, (b) adds the EMA statistics our quantizer keeps as buffers
(``code_sum = codebook``, ``code_count = 1``, ``initted = True``: the state the official
``init_codebook`` leaves, so further training continues as the official code would).
Loading is strict: every other key and shape must match.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from evaluators.core.safe_load import load_checkpoint_file

log = logging.getLogger(__name__)

ROLE_KEYS = {"tokenizer": ("vq_model", "net"), "mask_transformer": ("t2m_transformer", "trans"),
             "residual_transformer": ("res_transformer",)}
OFFICIAL_FILES = {"tokenizer": "net_best_fid.tar", "mask_transformer": "latest.tar",
                  "residual_transformer": "net_best_fid.tar"}


def convert_tokenizer(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official RVQVAE state dict -> ours (adds EMA buffers per quantizer layer)."""
    out = dict(sd)
    for k, v in sd.items():
        if k.startswith("quantizer.layers.") and k.endswith(".codebook"):
            base = k[: -len("codebook")]
            out.setdefault(base + "code_sum", v.clone())
            out.setdefault(base + "code_count", torch.ones(v.shape[0], dtype=v.dtype))
            out.setdefault(base + "initted", torch.ones((), dtype=torch.bool))
    return out


def convert_transformer(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official MaskTransformer / ResidualTransformer state dict -> ours (drops frozen CLIP)."""
    return {k: v for k, v in sd.items() if not k.startswith("clip_model.")}


CONVERTERS = {"tokenizer": convert_tokenizer, "mask_transformer": convert_transformer,
              "residual_transformer": convert_transformer}


def _role(ckpt: dict) -> tuple[str, str] | None:
    for role, keys in ROLE_KEYS.items():
        for key in keys:
            if key in ckpt:
                return role, key
    return None


def find_official(root: Path, files: dict[str, str] | None = None) -> dict[str, tuple[Path, str]]:
    """Map role -> (file, key) for the official ``*.tar`` files under ``root``.

    ``files`` (role -> file name, default :data:`OFFICIAL_FILES`) picks the file per role as the
    authors' scripts do; a role whose runs hold ``*.tar`` files but not the chosen one raises
    ``FileNotFoundError`` naming what is there and the ``official_files.<role>`` override.
    """
    want = {**OFFICIAL_FILES, **(files or {})}
    present: dict[str, list[Path]] = {}
    found: dict[str, tuple[Path, str]] = {}
    for f in sorted(root.rglob("*.tar")):
        ckpt = load_checkpoint_file(f)
        if not isinstance(ckpt, dict):
            continue
        r = _role(ckpt)
        if r is None:
            continue
        present.setdefault(r[0], []).append(f)
        if f.name == want[r[0]] and r[0] not in found:
            found[r[0]] = (f, r[1])
    for role, fs in present.items():
        if role not in found:
            raise FileNotFoundError(
                f"{root}: the official scripts load the {role} from {want[role]!r}, which is not there; "
                f"found {[str(p.relative_to(root)) for p in fs]}. Set official_files.{role}=<file name> to "
                "choose another file")
    return found


def refuse_official_tokenizer_training(method) -> None:
    """Raise if ``method``'s tokenizer came from an official checkpoint (see the module docstring)."""
    src = (getattr(method, "official_files_loaded", None) or {}).get("tokenizer")
    if src:
        raise RuntimeError(
            f"refusing to train from the official tokenizer {src}: the authors' code re-initialises every "
            "codebook from the first training batch after loading (momask-codes models/vq/quantizer.py: "
            "'init' is not saved), so 'resuming' it would throw the released codebooks away. Evaluate the "
            "official weights as they are, or train from scratch (drop the checkpoint).")


def load_official(method, root: Path) -> list[str]:
    """Load every official component found under ``root`` into ``method``; returns the roles loaded.

    Sets ``method.official_files_loaded = {role: path}`` (read by ``provenance()`` and the
    training guard).
    """
    found = find_official(root, (getattr(method, "c", None) or {}).get("official_files"))
    if "tokenizer" not in found or "mask_transformer" not in found:
        raise FileNotFoundError(f"{root}: no official MoMask tokenizer/transformer checkpoints found "
                                f"(expected */model/{OFFICIAL_FILES['tokenizer']} with key vq_model and "
                                f"*/model/{OFFICIAL_FILES['mask_transformer']} with key t2m_transformer); "
                                f"found {sorted(found)}")
    comps = method.components()
    method.official_files_loaded = {}
    for role, (f, key) in found.items():
        if role not in comps:
            log.warning("%s: %s present but this method has no %s", f, key, role)
            continue
        sd = CONVERTERS[role](load_checkpoint_file(f)[key])
        mine = comps[role].state_dict()
        bad = [k for k, v in sd.items() if k in mine and tuple(v.shape) != tuple(mine[k].shape)]
        if bad:  # one line naming the fix (a 512-d CLIP projection against a 384-d MiniLM config, ...)
            k = bad[0]
            hint = ("the released weights condition on 512-d CLIP ViT-B/32 text features: set CLIP_VIT_B32_DIR "
                    "(or method_cfg.text_encoder.kind=clip clip_path=DIR)" if "cond_emb" in k or "text" in k
                    else "use scale=paper (the released sizes)")
            raise ValueError(f"{f} [{key}]: {role}.{k} is {tuple(sd[k].shape)} in the checkpoint but "
                             f"{tuple(mine[k].shape)} here; {hint}")
        try:
            comps[role].load_state_dict(sd, strict=True)
        except RuntimeError as e:
            raise ValueError(f"{f} [{key}] does not match the configured {role} (check scale=paper and "
                             f"text_encoder kind=clip dim=512 for the released weights): {e}") from e
        method.official_files_loaded[role] = str(f)
        log.info("loaded %s from %s [%s]", role, f, key)
    for d in [found["tokenizer"][0].parents[1] / "meta", *root.rglob("meta")]:
        if (d / "mean.npy").exists() and (d / "std.npy").exists():
            method.mean = torch.from_numpy(np.load(d / "mean.npy")).float()
            method.std = torch.from_numpy(np.load(d / "std.npy")).float()
            break
    else:
        if not (getattr(method, "c", None) or {}).get("stats_dir"):
            raise FileNotFoundError(f"{root}: no meta/mean.npy,std.npy beside the official weights; set "
                                    "method_cfg.stats_dir=<folder with the dataset's Mean.npy/Std.npy>")
    return sorted(found)


def load_into(method, path: Path) -> None:
    """Load ``path``: our checkpoint file, a folder holding one, or an official release folder."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    candidates = [path] if path.is_file() else [path / f"{method.registry_name}.pt", path / "method.pt"]
    for ours in candidates:
        if not ours.is_file():
            continue
        ckpt = load_checkpoint_file(ours)
        if isinstance(ckpt, dict) and str(ckpt.get("format", "")).startswith("motionrepro-"):
            d_in = int(ckpt.get("cfg", {}).get("d_in", method.vq.d_in))
            if d_in != method.vq.d_in:  # trained on another feature width than the config default
                method.c["d_in"] = d_in
                method._build(d_in)
            method.load_state_dict(ckpt["state"])
            method.official_files_loaded = {}
            method.to(method.device)
            return
        if path.is_file():
            raise ValueError(f"{path}: not a motionrepro checkpoint (no 'format' key); pass the official folder")
    load_official(method, path if path.is_dir() else path.parent)
    stats = method.c.get("stats_dir")
    if stats:
        load_stats(method, Path(stats))
    method.to(method.device)


def load_stats(method, folder: Path) -> None:
    """Feature mean/std from ``folder`` (``Mean.npy``/``Std.npy`` or ``mean.npy``/``std.npy``)."""
    for m, s in (("Mean.npy", "Std.npy"), ("mean.npy", "std.npy")):
        if (folder / m).exists() and (folder / s).exists():
            method.mean = torch.from_numpy(np.load(folder / m)).float()
            method.std = torch.from_numpy(np.load(folder / s)).float()
            return
    raise FileNotFoundError(f"stats_dir {folder}: no Mean.npy/Std.npy (or mean.npy/std.npy)")
