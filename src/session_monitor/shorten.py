"""Shortening one line of text for a person to read: at the end of a word, never inside one.

Explanations quote what was said and error lines quote what a library said; both are
cut to fit a line. A word cut in half ("this usually me…") reads as a mistake, so
every cut goes through :func:`shorten`.
"""

from __future__ import annotations

__all__ = ["shorten"]

ELLIPSIS = "\u2026"


def shorten(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters: whole if it fits, else its words that fit
    with ``limit - 1`` characters, then an ellipsis (a single word longer than that is cut)."""
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    if not text[limit - 1].isspace():  # the cut falls inside a word: drop that word
        space = head.rfind(" ")
        head = head[:space] if space > 0 else head
    return head.rstrip(" ,;:") + ELLIPSIS
