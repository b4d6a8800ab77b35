"""Is a chunk of speech a voice other than a known one? The *novelty* of a chunk.

The novelty of ~1 s of speech against a voice model is the mean per-frame gain in
log-likelihood of a model adapted to the chunk (relevance MAP, ``CHUNK_RELEVANCE``
frames) over the voice's own model: a cross-likelihood ratio, near 0 for the same
voice and large for another. An enrolment (:mod:`enrollment`) calibrates the
threshold on its own voice; :class:`speakers.TwoSpeakers` compares each chunk of an
enrolled session with it while only one voice has been heard.
"""

from __future__ import annotations

import numpy as np

from session_monitor.speakers.voice_features import GaussianModel, GaussianStats

__all__ = ["CHUNK_RELEVANCE", "DEFAULT_NOVELTY", "calibrate_novelty", "novelty"]

#: MAP relevance in frames of a chunk adapted from a voice model.
CHUNK_RELEVANCE = 32.0
#: Threshold when an enrolment is too short to calibrate one.
DEFAULT_NOVELTY = 9.0
#: Threshold = median + _NOVELTY_K * MAD of the enrolment's held-out chunks ...
_NOVELTY_K = 3.0
#: ... given at least this many chunks.
_MIN_SELF = 4


def novelty(frames: np.ndarray, model: GaussianModel) -> float:
    """Mean per-frame gain of a model adapted to ``frames`` over ``model`` (nats/frame)."""
    adapted = GaussianStats.of(frames).model(model, relevance=CHUNK_RELEVANCE)
    return float(np.mean(adapted.log_likelihood(frames) - model.log_likelihood(frames)))


def calibrate_novelty(chunks: list[np.ndarray]) -> float:
    """Novelty threshold of one voice from ~1 s chunks of it, each ``(frames, 19)``.

    Each chunk is scored against a model of the others (leave one out); the threshold
    is their median + ``_NOVELTY_K`` median absolute deviations.
    """
    if len(chunks) < _MIN_SELF:
        return DEFAULT_NOVELTY
    parts = [GaussianStats.of(c) for c in chunks]
    total = GaussianStats()
    for p in parts:
        total.add(p)
    values = []
    for c, p in zip(chunks, parts):
        rest = total.copy()
        rest.add(p, -1.0)
        values.append(novelty(c, rest.model()))
    v = np.asarray(values)
    med = float(np.median(v))
    mad = 1.4826 * float(np.median(np.abs(v - med)))
    return med + _NOVELTY_K * max(mad, 0.1 * abs(med), 0.25)
