"""Phrase matching for lexical 3RS evidence, with negation, from ``configs/markers.toml``.

A clinician edits the phrases, not the code. Text and phrases go through the same
normalization (lower case, contractions expanded: "isn't" -> "is not", "I'm" ->
"i am", punctuation dropped), so "This isn't helping." matches the phrase
"this is not helping" and ASR spelling variants of contractions do not matter.

Negation, per entry of the file:

- ``phrases`` match as written, unless an odd number of negators ("not", "never",
  "nothing", ...) stands within ``negation_window`` tokens before them in the same
  clause: "it's not a waste of time" does not match "waste of time".
- ``negated`` words or phrases match only when negated that way: "helping" in
  "this isn't helping" or "nothing is helping", not in "this is helping".
- ``context_any``, when given, must also occur in the same sentence ("exercises"
  only counts next to "pointless", "same", "again", ...); the phrases then name a
  topic and are not subject to negation ("I don't need more homework").
- ``*`` in a phrase stands for any one word; ``^`` before a phrase means it matches only
  at the start of a clause ("^anyway": "Anyway, how was ..." changes the subject, "I'll
  do it anyway" does not).

Matching is per sentence; a hit quotes the sentence it came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from session_monitor.errors import ConfigError
from session_monitor.schema import Field, Float, Int, List, Map, Str, Table, read_document

__all__ = [
    "REPAIR_SUBTYPES",
    "RUPTURE_SUBTYPES",
    "LexicalEntry",
    "LexicalHit",
    "Lexicon",
    "Sentence",
    "load_lexicon",
    "normalize",
    "split_sentences",
]

#: 3RS subtypes (Eubanks, Muran & Safran 2015, Rupture Resolution Rating System manual).
RUPTURE_SUBTYPES: dict[str, tuple[str, ...]] = {
    "withdrawal": ("denial", "minimal_response", "abstract_communication", "avoidant_storytelling",
                   "deferential_appeasing", "content_affect_split", "self_criticism_hopelessness"),
    "confrontation": ("complaint_about_therapist", "rejecting_intervention", "complaint_about_activities",
                      "complaint_about_parameters", "complaint_about_progress", "defending_self",
                      "controlling_pressuring"),
}
REPAIR_SUBTYPES = ("clarifying", "changing_task", "giving_rationale", "meta_communication",
                   "acknowledging_own_part", "validating")

_CONTRACTIONS: tuple[tuple[str, str], ...] = (
    (r"\bwon't\b", "will not"), (r"\bcan't\b", "can not"), (r"\bcannot\b", "can not"),
    (r"\bshan't\b", "shall not"), (r"\bain't\b", "is not"), (r"n't\b", " not"),
    (r"\blet's\b", "let us"), (r"'re\b", " are"), (r"'m\b", " am"), (r"'ve\b", " have"),
    (r"'ll\b", " will"), (r"'d\b", " would"),
    (r"\b(it|that|what|there|here|he|she|who|where|how|everything|nothing|this|something|which)'s\b",
     r"\1 is"),
    (r"'s\b", ""), (r"\bgonna\b", "going to"), (r"\bwanna\b", "want to"), (r"\bgotta\b", "got to"),
    (r"\bdunno\b", "do not know"),
)
_CONTRACTION_RES = tuple((re.compile(p), r) for p, r in _CONTRACTIONS)
_CLAUSE_RE = re.compile(r"[,;:\u2014\u2013]|\s-\s|\bbut\b")
_TOKEN_RE = re.compile(r"[a-z0-9]+")
_SENTENCE_END_RE = re.compile(r"(?<=[.!?])\s+")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def normalize(text: str) -> tuple[list[str], list[int]]:
    """Tokens of ``text`` and, per token, the index of its clause.

    Lower case, curly quotes straightened, contractions expanded, punctuation
    dropped. Clauses are split at , ; : dashes and before "but" (negation scope).
    """
    s = text.lower().replace("\u2019", "'").replace("\u2018", "'")
    for pattern, repl in _CONTRACTION_RES:
        s = pattern.sub(repl, s)
    tokens: list[str] = []
    clauses: list[int] = []
    for clause_index, clause in enumerate(_split_clauses(s)):
        for tok in _TOKEN_RE.findall(clause):
            tokens.append(tok)
            clauses.append(clause_index)
    return tokens, clauses


def _split_clauses(s: str) -> list[str]:
    parts: list[str] = []
    last = 0
    for m in _CLAUSE_RE.finditer(s):
        parts.append(s[last:m.start()])
        last = m.start() if m.group(0) == "but" else m.end()
    parts.append(s[last:])
    return parts


@dataclass(frozen=True)
class Sentence:
    """One sentence of an utterance: its original text and, when known, its times."""

    text: str
    start: float | None = None
    end: float | None = None


def split_sentences(text: str, words: tuple[Any, ...] = ()) -> list[Sentence]:
    """Sentences of ``text``; with word timestamps (``start``/``end``/``word``) each gets times."""
    if words:
        out: list[Sentence] = []
        buf: list[Any] = []
        for w in words:
            buf.append(w)
            if w.word.strip().endswith((".", "?", "!")):
                out.append(Sentence(_join(buf), buf[0].start, buf[-1].end))
                buf = []
        if buf:
            out.append(Sentence(_join(buf), buf[0].start, buf[-1].end))
        if out:
            return out
    return [Sentence(p.strip()) for p in _SENTENCE_END_RE.split(text.strip()) if p.strip()]


def _join(words: list[Any]) -> str:
    return " ".join(w.word.strip() for w in words if w.word.strip())


@dataclass(frozen=True)
class _Pattern:
    tokens: tuple[str, ...]
    text: str
    clause_start: bool = False  # "^phrase": only where a clause begins

    def find(self, tokens: list[str], clauses: list[int]) -> list[int]:
        """Where the pattern starts in ``tokens`` (whose clause indices are ``clauses``)."""
        found = _find(tokens, self.tokens)
        if self.clause_start:
            found = [i for i in found if i == 0 or clauses[i] != clauses[i - 1]]
        return found


@dataclass(frozen=True)
class LexicalEntry:
    """One ``[speaker.marker]`` table of the markers file."""

    speaker: str  # patient | therapist
    marker: str
    kind: str
    strength: float
    explanation: str
    phrases: tuple[_Pattern, ...] = ()
    weak_phrases: tuple[_Pattern, ...] = ()
    negated: tuple[_Pattern, ...] = ()
    context_any: tuple[_Pattern, ...] = ()


@dataclass(frozen=True)
class LexicalHit:
    """A match of one entry in one sentence."""

    marker: str
    kind: str
    strength: float
    explanation: str  # the entry's description, e.g. "patient denies a difficulty"
    phrase: str
    sentence: Sentence


@dataclass
class Lexicon:
    """Entries per speaker plus the matching rules; see :func:`load_lexicon`."""

    entries: list[LexicalEntry]
    negators: frozenset[str]
    negation_window: int = 3
    weak_factor: float = 0.5
    lists: dict[str, tuple[_Pattern, ...]] = field(default_factory=dict)
    source: str = ""

    def entry(self, speaker: str, marker: str) -> LexicalEntry | None:
        return next((e for e in self.entries if e.speaker == speaker and e.marker == marker), None)

    def match(self, text: str, *, speaker: str, words: tuple[Any, ...] = ()) -> list[LexicalHit]:
        """Hits of ``speaker``'s entries in ``text``, at most one per entry and sentence."""
        hits: list[LexicalHit] = []
        for sentence in split_sentences(text, words):
            tokens, clauses = normalize(sentence.text)
            if not tokens:
                continue
            for entry in self.entries:
                if entry.speaker != speaker:
                    continue
                hit = self._match_entry(entry, tokens, clauses)
                if hit is not None:
                    phrase, weak = hit
                    strength = entry.strength * (self.weak_factor if weak else 1.0)
                    hits.append(LexicalHit(entry.marker, entry.kind, strength, entry.explanation, phrase,
                                           sentence))
        return hits

    def contains(self, list_name: str, text: str, *, at_start: bool = False) -> str | None:
        """The first phrase of ``[lists] list_name`` found in ``text`` (None when none)."""
        tokens, clauses = normalize(text)
        for pat in self.lists.get(list_name, ()):
            if at_start:
                if _match_at(tokens, 0, pat.tokens):
                    return pat.text
            elif pat.find(tokens, clauses):
                return pat.text
        return None

    def _negated_at(self, tokens: list[str], clauses: list[int], i: int) -> bool:
        lo = max(0, i - self.negation_window)
        n = sum(1 for j in range(lo, i) if clauses[j] == clauses[i] and tokens[j] in self.negators)
        return n % 2 == 1

    def _match_entry(self, e: LexicalEntry, tokens: list[str], clauses: list[int]) -> tuple[str, bool] | None:
        if e.context_any and not any(c.find(tokens, clauses) for c in e.context_any):
            return None
        for group, weak in ((e.phrases, False), (e.weak_phrases, True)):
            for pat in group:
                for i in pat.find(tokens, clauses):
                    # with context_any the phrases name a topic; the context carries the polarity
                    if e.context_any or not self._negated_at(tokens, clauses, i):
                        return pat.text, weak
        for pat in e.negated:
            for i in pat.find(tokens, clauses):
                if self._negated_at(tokens, clauses, i):
                    return f"(negated) {pat.text}", False
        return None


def _match_at(tokens: list[str], i: int, pat: tuple[str, ...]) -> bool:
    if i + len(pat) > len(tokens):
        return False
    return all(p == "*" or p == tokens[i + k] for k, p in enumerate(pat))


def _find(tokens: list[str], pat: tuple[str, ...]) -> list[int]:
    if not pat:
        return []
    last = len(tokens) - len(pat) + 1
    first = pat[0]
    starts = range(last) if first == "*" else (i for i in range(last) if tokens[i] == first)
    return [i for i in starts if _match_at(tokens, i, pat)]


# -- loading ---------------------------------------------------------------------------------------------

_THERAPIST_CONTRIBUTIONS = re.compile(r"^therapist_[a-z0-9_]+$")


def _patterns(path: Path, key: str, value: Any) -> tuple[_Pattern, ...]:
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{path}: {key} must be a list of phrases")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise ConfigError(f"{path}: {key}[{i}] must be a non-empty phrase in quotes")
        body = item.strip()
        anchored = body.startswith("^")
        toks, _ = normalize(body.removeprefix("^").replace("*", " zzwildcardzz "))
        toks = ["*" if t == "zzwildcardzz" else t for t in toks]
        if not toks or all(t == "*" for t in toks):
            raise ConfigError(f"{path}: {key}[{i}]={item!r} has no words; give a phrase such as 'not helping'")
        out.append(_Pattern(tuple(toks), body, clause_start=anchored))
    return tuple(out)


def _entry(path: Path, speaker: str, marker: str, table: dict[str, Any]) -> LexicalEntry:
    """One ``[speaker.marker]`` table, its structure already checked by :data:`MARKERS_SCHEMA`."""
    where = f"{speaker}.{marker}"
    kind = table["kind"]
    if speaker == "patient":
        allowed = RUPTURE_SUBTYPES.get(kind)
        if allowed is None:
            raise ConfigError(f"{path}: {where}.kind={kind!r} is not allowed; use withdrawal or confrontation")
        if marker not in allowed:
            raise ConfigError(f"{path}: [{where}] is not a 3RS {kind} subtype; use one of {', '.join(allowed)}")
    elif kind == "repair":
        if marker not in REPAIR_SUBTYPES:
            raise ConfigError(f"{path}: [{where}] is not a 3RS repair; use one of {', '.join(REPAIR_SUBTYPES)}")
    elif kind in RUPTURE_SUBTYPES:
        if not _THERAPIST_CONTRIBUTIONS.match(marker):
            raise ConfigError(f"{path}: [{where}]: name therapist contributions therapist_..., e.g. therapist_directive")
    else:
        raise ConfigError(f"{path}: {where}.kind={kind!r} is not allowed; use repair, withdrawal or confrontation")
    strength, explanation = table["strength"], table["explanation"]
    pats = {k: _patterns(path, f"{where}.{k}", table.get(k, [])) for k in
            ("phrases", "weak_phrases", "negated", "context_any")}
    if not (pats["phrases"] or pats["weak_phrases"] or pats["negated"]):
        raise ConfigError(f"{path}: [{where}] has no phrases, weak_phrases or negated words; add some")
    return LexicalEntry(speaker, marker, kind, float(strength), explanation.strip(), **pats)


def _markers_schema() -> Table:
    """The markers file's structure; what a phrase or a 3RS subtype must be is checked by :func:`_entry`."""
    phrases = Field(List(Str()), required=False, default=())
    entry = Table({"kind": Str(choices=("withdrawal", "confrontation", "repair")), "strength": Float(0, 1),
                   "explanation": Str(nonempty=True, hint="a short sentence"), "phrases": phrases,
                   "weak_phrases": phrases, "negated": phrases, "context_any": phrases}, name="a marker table")
    matching = Table({"negators": Field(List(Str(nonempty=True)), required=False, default=()),
                      "negation_window": Field(Int(1, 10), required=False, default=3),
                      "weak_factor": Field(Float(0, 1), required=False, default=0.5)}, name="a [matching] table")
    marker_name = Str(pattern=_NAME_RE.pattern.strip("^$"), hint="a snake_case name")
    return Table({
        "matching": Field(matching, required=False, default={"negators": (), "negation_window": 3,
                                                             "weak_factor": 0.5}),
        "lists": Field(Map(List(Str())), required=False, default={}),
        "patient": Field(Map(entry, key=marker_name, name="tables such as [patient.NAME]"), required=False,
                         default={}),
        "therapist": Field(Map(entry, key=marker_name, name="tables such as [therapist.NAME]"), required=False,
                           default={}),
    }, sections=True, name="a markers file")


#: The schema of a markers file (``configs/markers.toml``).
MARKERS_SCHEMA = _markers_schema()


def load_lexicon(path: str | Path) -> Lexicon:
    """Read and validate a markers file; every problem is a one-line :class:`ConfigError`."""
    path = Path(path)
    data = read_document(path, MARKERS_SCHEMA, what="markers file", fmt="toml", error=ConfigError)
    matching = data["matching"]
    negators, window, weak = matching["negators"], matching["negation_window"], matching["weak_factor"]
    lists = {}
    for name, value in data["lists"].items():
        lists[name] = _patterns(path, f"lists.{name}", value)
    entries: list[LexicalEntry] = []
    for speaker in ("patient", "therapist"):
        for marker, table in data[speaker].items():
            entries.append(_entry(path, speaker, marker, table))
    norm_negators = frozenset(t for n in negators for t in normalize(n)[0])
    return Lexicon(entries, norm_negators, window, float(weak), lists, str(path))
