"""Text features of one utterance, shared by the training script and the run-time classifiers.

An utterance becomes a bag of named features (word 1-2 grams, its first and last
word, a length bin, a bin of how many of its words the other speaker just said, the
n-grams of the other speaker's preceding utterance marked ``p:``, and the words, first
and last word of the same speaker's own previous utterance marked ``o:``), each with a
raw count. The own previous utterance carries the conversation's state: talk types come
in runs (after sustain talk 42 % of client replies are sustain talk again, after neutral
talk 8 %), and grouped CV gave therapist macro-F1 0.737 with it against 0.734 without.
Character n-grams were tried and dropped (at an earlier step of the features, so lower
figures: 0.72 vs 0.73 therapist macro-F1, 0.495 vs 0.491 client, at three times the
features). The
classifiers (:mod:`session_monitor.rupture.utterances`) weight the counts by
TF-IDF, L2-normalise and apply a linear model in numpy. Training
(``scripts/train_utterance_classifiers.py``) uses these same functions, so the
features seen at run time are the features learned from.

Only the standard library here: no numpy, no scikit-learn.
"""

from __future__ import annotations

import re
from collections import Counter

__all__ = ["FEATURE_VERSION", "features", "overlap_bin", "tokens"]

#: Bumped whenever :func:`features` changes; the model file records the version it was trained with.
FEATURE_VERSION = 3

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[?!]")
_STOP = frozenset(
    "a an the and or but so to of in on at for with is am are was were be been it it's i i'm you you're "
    "me my your we he she they this that there um uh like just yeah okay ok well oh do did does have has "
    "had what how".split()
)


def tokens(text: str) -> list[str]:
    """Lower-case word tokens plus ``?``/``!`` as tokens (Whisper writes them; they mark questions)."""
    return _TOKEN.findall(text.lower().replace("\u2019", "'"))


def _word_ngrams(toks: list[str], prefix: str, out: Counter) -> None:
    for i, w in enumerate(toks):
        out[prefix + "w:" + w] += 1
        if i + 1 < len(toks):
            out[prefix + "w:" + w + " " + toks[i + 1]] += 1
    if toks:
        out[prefix + "first:" + toks[0]] += 1
        out[prefix + "last:" + toks[-1]] += 1


def overlap_bin(toks: list[str], previous: list[str]) -> int:
    """How many of this utterance's content words the other speaker just said, binned 0..3."""
    mine = {w for w in toks if w not in _STOP and len(w) > 2}
    theirs = {w for w in previous if w not in _STOP and len(w) > 2}
    if not mine or not theirs:
        return 0
    share = len(mine & theirs) / len(mine)
    return 0 if share == 0 else 1 if share < 0.25 else 2 if share < 0.5 else 3


def features(text: str, previous: str = "", own_previous: str = "", *, context: bool = True) -> Counter:
    """The named feature counts of ``text``, said after the other speaker said ``previous``.

    Parameters
    ----------
    text : what this speaker said (one final transcript)
    previous : the other speaker's preceding utterance ("" at the start of a session)
    own_previous : this speaker's own previous utterance ("" for their first)
    context : also the n-grams of ``previous``

    Returns
    -------
    Counter mapping feature name to count (words, word pairs, length, overlap, context).
    """
    toks = tokens(text)
    out: Counter = Counter()
    _word_ngrams(toks, "", out)
    n = len(toks)
    out["len:" + ("1" if n <= 1 else "3" if n <= 3 else "8" if n <= 8 else "20" if n <= 20 else "long")] += 1
    prev = tokens(previous)
    if prev:
        if context:
            _word_ngrams(prev, "p:", out)
        out[f"ov:{overlap_bin(toks, prev)}"] += 1
    else:
        out["p:none"] += 1
    own = tokens(own_previous)
    for w in own:
        out["o:" + w] += 1
    if own:
        out["ofirst:" + own[0]] += 1
        out["olast:" + own[-1]] += 1
    else:
        out["o:none"] += 1
    return out
