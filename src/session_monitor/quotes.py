"""The patient's and therapist's words inside explanations, and dropping them where they may not be kept.

An explanation quotes what was said ("patient: ‘this isn't helping’") between the
typographic marks ‘ and ’, and only through :func:`quoted`, which turns those marks
inside the words into plain apostrophes. So every quoted word in a stored event can be
found again: a session whose words may not be kept (``privacy.store_transcript =
false``, or a consent that does not grant the transcript) stores each event through
:func:`without_words`, which empties transcripts and replaces every quotation in an
explanation by ‘…’. The explanation still says what was recognised, with its probability.
"""

from __future__ import annotations

import re
from dataclasses import replace

from session_monitor.events import Event, Marker, Signal, Transcript
from session_monitor.shorten import shorten

__all__ = ["OPEN", "CLOSE", "quotations", "quoted", "without_quotes", "without_words"]

OPEN, CLOSE = "\u2018", "\u2019"
_QUOTATION = re.compile(f"{OPEN}([^{CLOSE}]*){CLOSE}")
_DROPPED = f"{OPEN}\u2026{CLOSE}"


def quoted(text: str, limit: int = 70) -> str:
    """``text`` as a quotation for an explanation: between ‘ and ’, shortened to ``limit``
    characters at the end of a word (then ending with an ellipsis)."""
    text = " ".join(text.split()).replace(OPEN, "'").replace(CLOSE, "'")
    return f"{OPEN}{shorten(text, limit)}{CLOSE}"


def quotations(explanation: str) -> list[str]:
    """The words ``explanation`` quotes (each quotation's text, without its marks), in order."""
    return _QUOTATION.findall(explanation)


def without_quotes(explanation: str) -> str:
    """``explanation`` with every quotation replaced by ‘…’."""
    return _QUOTATION.sub(_DROPPED, explanation)


def without_words(event: Event) -> Event:
    """``event`` as a session that keeps no words stores it: a transcript without its text
    and words (its timing kept), explanations without their quotations; others unchanged."""
    if isinstance(event, Transcript):
        return replace(event, text="", words=())
    if isinstance(event, Marker):
        return replace(event, explanation=without_quotes(event.explanation))
    if isinstance(event, Signal) and event.evidence:
        evidence = tuple({**item, "explanation": without_quotes(item["explanation"])}
                         if isinstance(item.get("explanation"), str) else item for item in event.evidence)
        return replace(event, evidence=evidence)
    return event
