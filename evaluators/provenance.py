"""Provenance of a number: which parts produced it, and does that match the paper's setting.

Every run record (schema 2, ``evaluators/records.py``) carries a ``provenance`` block: a dict
``{key: entry}``. An *entry* is machine-readable (``id``) with a short human label (``label``)
and any details (``sha256``, ``steps``, ``path``...)::

    {"evaluator":    {"id": "official", "label": "official T2M evaluator", "sha256": "..."},
     "word_vectors": {"id": "glove", "label": "GloVe 6B-300d", "sha256": "..."},
     "text_encoder": {"id": "clip-vit-l14", "label": "CLIP ViT-L/14", "config_sha256": "..."},
     "weights":      {"id": "trained-here", "label": "trained here", "workdir_sha256": "..."},
     "recipe.fusion": {"id": "fusion=on", "label": "fusion on (paper: off)", "paper": false},
     "ours.htm.alpha_0": {"id": "htm.alpha_0=0.0", "label": "htm.alpha_0 = 0.0", "ours": true}}

Key families:

- the standard parts (:data:`STANDARD_KEYS`): ``evaluator``, ``word_vectors``, ``text_encoder``,
  ``weights``, ``backbone_init``;
- ``recipe.<name>``: a recipe switch. ``paper: false`` means it departs from the paper, and such
  a record is never comparable (:func:`recipe_entry`);
- ``ours.<config key>``: a value that no paper or official code fixes, so we chose it. It does
  not make a record incomparable (nobody could do better), but every leaderboard cell built from
  it carries a footnote (:func:`ours_entry`, declared in a method config's ``non_paper:`` list).

Who fills it: a method class may define ``provenance(self) -> dict[str, dict]``; a protocol may
put entries in ``ProtocolResult.provenance``; :func:`collect` merges them (protocol over
method) with defaults for ``weights`` and the ``ours.*`` entries from the method config.

Each method config declares the paper's setting once (``paper_setting:`` in
``configs/method/<method>.yaml``), e.g. ``{text_encoder: clip-vit-l14, evaluator: official}``;
a value may be a list of accepted ids. :func:`differences` lists, in words, what keeps a record
from being comparable; an empty list means comparable.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

STANDARD_KEYS = ("evaluator", "word_vectors", "text_encoder", "weights", "backbone_init")
RECIPE_PREFIX = "recipe."
OURS_PREFIX = "ours."
NO_PROVENANCE = "no provenance (recorded before schema 2)"
_HUMAN_KEY = {"evaluator": "evaluator", "word_vectors": "word vectors", "text_encoder": "text encoder",
              "weights": "weights", "backbone_init": "backbone init"}


class ProvenanceError(ValueError):
    """A malformed provenance entry or paper setting; the message names the key."""


# -- entries ---------------------------------------------------------------------------------------
def entry(id: str, label: str | None = None, **details: Any) -> dict[str, Any]:
    """One provenance entry: machine-readable ``id``, short human ``label``, extra details.

    >>> entry("glove", "GloVe 6B-300d", sha256="ab12")
    {'id': 'glove', 'label': 'GloVe 6B-300d', 'sha256': 'ab12'}
    """
    if not isinstance(id, str) or not id:
        raise ProvenanceError(f"provenance entry id must be a non-empty string, got {id!r}")
    return {"id": id, "label": str(label if label is not None else id), **details}


def recipe_entry(name: str, value: Any, *, paper: bool, paper_value: Any = None,
                 label: str | None = None) -> tuple[str, dict[str, Any]]:
    """``("recipe.<name>", entry)`` for a recipe switch; ``paper=False`` makes a record non-comparable.

    >>> recipe_entry("fusion", "on", paper=False, paper_value="off")[1]["label"]
    'fusion on (paper: off)'
    """
    if label is None:
        label = f"{name} {value}" + (f" (paper: {paper_value})" if paper_value is not None and not paper else "")
    details: dict[str, Any] = {"paper": bool(paper), "value": value}
    if paper_value is not None:
        details["paper_value"] = paper_value
    return RECIPE_PREFIX + name, entry(f"{name}={value}", label, **details)


def ours_entry(key: str, value: Any, why: str = "", protocols: Iterable[str] | None = None) -> tuple[str, dict[str, Any]]:
    """``("ours.<key>", entry)`` for a value no paper or official code fixes (we chose it).

    ``protocols``: the protocols whose numbers depend on it (name prefixes, e.g. ``semi``); None = all.
    """
    details: dict[str, Any] = {"ours": True, "value": value}
    if why:
        details["why"] = why
    if protocols is not None:
        details["protocols"] = [str(p) for p in protocols]
    return OURS_PREFIX + key, entry(f"{key}={value}", f"{key} = {value}", **details)


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def sha256_tree(path: str | os.PathLike, patterns: Iterable[str] = ("*",)) -> str:
    """Hex sha256 over a folder: every matching file's relative path and content sha256, sorted.

    Used for checkpoint folders (MoMask's ``checkpoints/t2m/...``) and CLIP folders (pass
    ``patterns=("*.json", "*.txt")`` to hash the configuration without the weights).
    """
    root = Path(path)
    if root.is_file():
        return sha256_file(root)
    files = sorted({p for pat in patterns for p in root.rglob(pat) if p.is_file()})
    h = hashlib.sha256()
    for p in files:
        h.update(str(p.relative_to(root)).encode() + b"\0" + sha256_file(p).encode() + b"\n")
    return h.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def weights_entry(*, checkpoint: str | os.PathLike | None = None, workdir: str | os.PathLike | None = None,
                  trained: bool = True) -> dict[str, Any]:
    """Default ``weights`` entry: ``official-converted`` (+ sha256) when a checkpoint was loaded,
    ``trained-here`` (+ the workdir's hash: its name already hashes the settings), or ``untrained``."""
    if checkpoint:
        p = Path(checkpoint)
        sha = sha256_tree(p) if p.exists() else None
        return entry("official-converted", f"official weights ({p.name})", path=str(p), sha256=sha)
    if trained:
        return entry("trained-here", "trained here", workdir=str(workdir) if workdir else None,
                     workdir_sha256=sha256_text(str(workdir)) if workdir else None)
    return entry("untrained", "untrained")


def validate(prov: Any, source: str = "<provenance>") -> None:
    """Raise ProvenanceError unless ``prov`` is ``{str: {"id": str, "label": str, ...}}``."""
    if not isinstance(prov, Mapping):
        raise ProvenanceError(f"{source}: provenance must be an object, got {type(prov).__name__}")
    for k, e in prov.items():
        if not isinstance(k, str) or not isinstance(e, Mapping):
            raise ProvenanceError(f"{source}: provenance entry {k!r} is not an object")
        if not isinstance(e.get("id"), str) or not e["id"] or not isinstance(e.get("label"), str):
            raise ProvenanceError(f"{source}: provenance entry {k!r} lacks a string 'id' and 'label'")


# -- collection ------------------------------------------------------------------------------------
def _get(cfg: Mapping, dotted: str) -> Any:
    cur: Any = cfg
    for part in dotted.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            raise ProvenanceError(f"non_paper key {dotted!r} is not in the method config")
        cur = cur[part]
    return cur


def ours_entries(method_cfg: Mapping) -> dict[str, dict]:
    """``ours.*`` entries for every item of the method config's ``non_paper:`` list.

    An item is a dotted config key (``htm.alpha_0``), ``{key: why}``, ``{key: K, why: ...,
    protocols: [...]}`` (only those protocols' numbers depend on it), or, for a choice fixed in
    code rather than in the config, ``{name: ..., value: ..., why: ..., protocols: [...]}``.
    """
    out: dict[str, dict] = {}
    for item in method_cfg.get("non_paper") or []:
        if isinstance(item, Mapping) and ("name" in item or "key" in item):
            protos = item.get("protocols")
            if "name" in item:
                if "value" not in item:
                    raise ProvenanceError(f"non_paper item {dict(item)!r} names a choice without its 'value'")
                k, e = ours_entry(str(item["name"]), item["value"], str(item.get("why") or ""), protos)
            else:
                key = str(item["key"])
                k, e = ours_entry(key, _get(method_cfg, key), str(item.get("why") or ""), protos)
            out[k] = e
            continue
        items = item.items() if isinstance(item, Mapping) else [(item, "")]
        for key, why in items:
            k, e = ours_entry(str(key), _get(method_cfg, str(key)), str(why or ""))
            out[k] = e
    return out


def precision_entry(method: Any) -> dict[str, dict]:
    """``recipe.precision`` when a method samples below fp32 (``precision: bf16``): the papers'
    numbers are fp32, so such a record is never comparable, however small the drift
    (``leaderboards/speed.md``, bf16 quality drift). Nothing for fp32 or a method without the setting."""
    fn = getattr(method, "precision", None)
    if not callable(fn):
        return {}
    p = str(fn())
    if p == "fp32":
        return {}
    k, e = recipe_entry("precision", p, paper=False, paper_value="fp32", label=f"{p} sampling (paper: fp32)")
    return {k: e}


def collect(method: Any = None, *, method_cfg: Mapping | None = None, protocol: Mapping | None = None,
            checkpoint: str | None = None, workdir: str | os.PathLike | None = None,
            trained: bool = True) -> dict[str, dict]:
    """The provenance block of one record: defaults < method config ``ours.*`` < method < protocol."""
    out: dict[str, dict] = {"weights": weights_entry(checkpoint=checkpoint, workdir=workdir, trained=trained)}
    out.update(ours_entries(method_cfg or {}))
    fn = getattr(method, "provenance", None)
    if callable(fn):
        out.update(fn() or {})
    out.update(precision_entry(method))
    out.update(protocol or {})
    validate(out)
    return {k: dict(v) for k, v in out.items()}


def merge(*blocks: Mapping | None) -> dict[str, dict]:
    """Later blocks win key by key (the runner: method/default block, then the protocol's)."""
    out: dict[str, dict] = {}
    for b in blocks:
        out.update({k: dict(v) for k, v in (b or {}).items()})
    validate(out)
    return out


# -- comparison ------------------------------------------------------------------------------------
def _accepted(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return [str(value)]


def differences(provenance: Mapping | None, paper_setting: Mapping | None, *, data: str = "real",
                scale: str = "paper") -> list[str]:
    """Human-readable reasons why a record is not comparable with the paper; ``[]`` = comparable.

    Comparable = real data AND paper scale AND every entry named in ``paper_setting`` has an
    accepted id AND no ``recipe.*`` entry with ``paper: false``. ``provenance=None`` (a schema-1
    record) gives :data:`NO_PROVENANCE`; a method without a declared ``paper_setting`` is not
    comparable either (nothing says what the paper used).
    """
    reasons: list[str] = []
    if data != "real":
        reasons.append(f"{data} data")
    if scale != "paper":
        reasons.append(f"{scale} scale")
    if provenance is None:
        return reasons + [NO_PROVENANCE]
    if paper_setting is None:
        reasons.append("no paper_setting declared for this method")
        paper_setting = {}
    for key, want in paper_setting.items():
        got = provenance.get(key)
        name = _HUMAN_KEY.get(key, key.replace("_", " "))
        if got is None:
            reasons.append(f"{name} not recorded (paper: {' or '.join(_accepted(want))})")
        elif str(got.get("id")) not in _accepted(want):
            label = str(got.get("label") or got.get("id"))
            reasons.append(label if name.lower() in label.lower() else f"{name} {label}")
    for key, e in provenance.items():
        if key.startswith(RECIPE_PREFIX) and not e.get("paper", False):
            reasons.append(f"recipe {e.get('label') or e.get('id')}")
    return reasons


def ours_labels(provenance: Mapping | None, protocol: str | None = None) -> list[str]:
    """Labels of the ``ours.*`` entries (values we chose) that ``protocol``'s numbers depend on,
    for leaderboard footnotes (an entry without ``protocols`` applies to every protocol)."""
    out = []
    for k, e in (provenance or {}).items():
        if not k.startswith(OURS_PREFIX):
            continue
        protos = e.get("protocols")
        if protocol is not None and protos is not None and not any(protocol.startswith(p) for p in protos):
            continue
        out.append(str(e.get("label") or e.get("id")))
    return out
