"""Text cut to fit a line ends at a word, never inside one (explanations' quotations, error lines)."""

from __future__ import annotations

import pytest

from session_monitor.quotes import quoted
from session_monitor.shorten import shorten


@pytest.mark.parametrize(("text", "limit", "expected"), [
    ("this isn't helping", 18, "this isn't helping"),  # fits: unchanged
    ("this isn't helping me", 15, "this isn't\u2026"),  # the cut falls inside "helping": that word goes
    ("abc def ghi", 8, "abc def\u2026"),  # the cut falls at a word's end: that word stays
    ("one, two three", 6, "one\u2026"),  # no comma left before the ellipsis
    ("x" * 30, 10, "x" * 9 + "\u2026"),  # one word longer than the line: cut, the only way to fit
])
def test_shorten(text, limit, expected):
    assert shorten(text, limit) == expected
    assert len(shorten(text, limit)) <= limit


def test_a_quotation_never_ends_inside_a_word():
    said = "I don't think this is going to work for me, to be honest with you"
    for limit in range(12, len(said)):
        inner = quoted(said, limit)[1:-1]
        assert len(inner) <= limit
        kept = inner.removesuffix("\u2026").split()
        words = said.split()
        for k, word in enumerate(kept):  # whole words of what was said (a trailing comma may go)
            assert word == words[k] or (k == len(kept) - 1 and word == words[k].rstrip(",")), inner
