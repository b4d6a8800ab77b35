"""Online two-voice clustering of speaker embeddings: which voice a chunk of speech is.

Used with ``attribution.embedding = "ge2e"`` (:mod:`embedding_attribution`); the MFCC
attribution's clustering is :mod:`clustering`.

Every chunk of speech (about a second, see :mod:`attribution`) is one 256-d unit vector
of the GE2E encoder (:mod:`encoder`); voices are compared by cosine similarity.

- **One voice until a second is heard.** The session's first voice is the *anchor*
  (cluster 0): the mean direction of its chunks (or, with an enrolment, the enrolled
  voice). A chunk whose similarity to it falls below ``new_voice_similarity``
  (``new_voice_similarity_enrolled`` against an enrolment: a clean reference) (or below
  the first voice's own chunks' mean similarity minus ``new_voice_spread`` standard
  deviations, when that is higher) is the second voice; until one does, every chunk is
  the anchor's, with confidence ``one_voice_confidence``. Measured on 1 s chunks (docs/attribution.md): one person's
  chunks stay at 0.70-0.92 of their own mean (JFK's lowest 0.76), another person's
  first chunk is at 0.42-0.69 of it (the telephone call's two women: 0.63).
- **Two voices.** After every chunk the stored chunks (the last ``history``) are
  re-assigned by spherical two-means started from the previous assignment (and, for the
  first chunks, also afresh), the enrolment, when there is one, counting as
  ``enrolled_weight`` chunks of the anchor. The names stay with the voices: a new split is
  named as the enrolment says, or as most of the stored chunks were named before it. A
  chunk's decision is the nearer voice, with confidence
  ``1 / (1 + exp(-confidence_scale * |s0 - s1|))`` from its similarities ``s0, s1`` to the
  two voices. Earlier decisions are never revised (they were published), but the
  voices are, so an early mistake does not stick.

Deterministic: the same chunks in the same order give the same decisions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from session_monitor.settings.sections import AttributionSettings
from session_monitor.speakers.encoder import DIM

__all__ = ["Decision", "TwoVoices"]

_ITERATIONS = 8
#: First-voice chunks needed before their spread may raise the new-voice threshold.
_SPREAD_CHUNKS = 4
#: Chunks during which the two voices are split afresh after each chunk (along the main axis
#: of the chunks' spread, then spherical two-means); later they continue from the last split.
_BOOTSTRAP_CHUNKS = 30


@dataclass(frozen=True, slots=True)
class Decision:
    """Which voice a chunk is (0 = anchor, 1 = the other), how sure, and why."""

    cluster: int
    confidence: float  # 0.5..1
    margin: float  # similarity to the anchor minus to the other voice (0 with one voice)
    voices: int  # voices heard so far (1 or 2)


class TwoVoices:
    """Online clustering of chunk embeddings into at most two voices.

    Parameters
    ----------
    settings : AttributionSettings
        ``new_voice_similarity``, ``confidence_scale``, ``one_voice_confidence``,
        ``enrolled_weight``.
    enrolled : ndarray, optional
        The enrolled therapist's embedding (unit vector, :mod:`enrollment`); None without.
    history : int
        Chunks kept for clustering (the oldest are forgotten; bounded memory and time).
    """

    def __init__(self, settings: AttributionSettings, *, enrolled: np.ndarray | None = None,
                 history: int = 600) -> None:
        self.s = settings
        self.enrolled = None if enrolled is None else _unit(np.asarray(enrolled, dtype=np.float64))
        self.history = history
        self._e = np.zeros((history, DIM))
        self._assign = np.zeros(history, dtype=int)
        self._size = 0
        self._next = 0
        self.two_voices = False
        self.centres: list[np.ndarray | None] = [self.enrolled, None]
        self._mean = np.zeros(DIM)  # the session's mean embedding, once two voices are heard
        self._first_voice = np.zeros(DIM)  # mean direction of the chunks before the second voice
        self._first_sims: list[float] = []  # their similarities to the first voice as it was then
        self.chunks = 0

    def add(self, embedding: np.ndarray) -> int:
        """Learn one chunk's embedding (in session order); its number (for :meth:`decision`)."""
        e = _unit(np.asarray(embedding, dtype=np.float64))
        slot = self._next
        self._e[slot] = e
        self._next = (slot + 1) % self.history
        self._size = min(self._size + 1, self.history)
        number = self.chunks
        self.chunks += 1
        if not self.two_voices:
            anchor = self.centres[0]
            if anchor is not None and float(e @ anchor) < self._new_voice_threshold():
                self._first_voice = anchor if self.enrolled is None else self.enrolled
                self.two_voices = True
                self._assign[slot] = 1
                self.centres[1] = e
            else:
                self._assign[slot] = 0
                if anchor is not None:
                    self._first_sims.append(float(e @ anchor))
        else:
            self._assign[slot] = self._nearest(_unit(e - self._mean))
        self._update()
        return number

    def decision(self, number: int) -> Decision:
        """The decision on chunk ``number`` under the voices as they are now."""
        if not 0 <= self.chunks - 1 - number < self._size:
            raise KeyError(f"chunk {number} is no longer kept")
        e = self._e[(self._next - (self.chunks - number)) % self.history]
        return self.decide(e)

    def cluster_of(self, number: int) -> int | None:
        """The voice chunk ``number`` is in under the current split (None: no longer kept)."""
        if not 0 <= self.chunks - 1 - number < self._size:
            return None
        return int(self._assign[(self._next - (self.chunks - number)) % self.history])

    def decide(self, embedding: np.ndarray) -> Decision:
        """The decision on one embedding under the voices as they are now."""
        if not self.two_voices:
            return Decision(0, self.s.one_voice_confidence, 0.0, 1)
        e = _unit(_unit(np.asarray(embedding, dtype=np.float64)) - self._mean)
        c0, c1 = self.centres
        margin = float(e @ c0 - e @ c1)
        conf = 1.0 / (1.0 + math.exp(-self.s.confidence_scale * abs(margin)))
        return Decision(0 if margin >= 0 else 1, conf, margin, 2)

    # -- internals -------------------------------------------------------------------------------------

    def _new_voice_threshold(self) -> float:
        """``new_voice_similarity``, raised to ``mean - new_voice_spread * sd`` of the first voice's
        chunk similarities once it has ``_SPREAD_CHUNKS`` of them (a very steady voice, such as
        two voices of one speech synthesizer at 0.91 of each other, still gets its second)."""
        base = self.s.new_voice_similarity if self.enrolled is None else self.s.new_voice_similarity_enrolled
        sims = self._first_sims
        if len(sims) < _SPREAD_CHUNKS:
            return base
        return max(base, float(np.mean(sims) - self.s.new_voice_spread * np.std(sims)))

    def _nearest(self, e: np.ndarray) -> int:
        c0, c1 = self.centres
        return 0 if float(e @ c0) >= float(e @ c1) else 1

    def _update(self) -> None:
        idx = np.arange(self._size)
        raw = self._e[idx]
        if not self.two_voices:
            if self.enrolled is None:
                self.centres[0] = _unit(raw.sum(axis=0))
            return
        # centred on the session's mean (the enrolment counting as one chunk): what both voices
        # share (the room, the channel) is left out
        if self.enrolled is not None:
            self._mean = (raw.sum(axis=0) + self.enrolled) / (len(raw) + 1)
        else:
            self._mean = raw.mean(axis=0)
        e = _rows_unit(raw - self._mean)
        prior = np.zeros(DIM)
        if self.enrolled is not None:
            prior = self.s.enrolled_weight * _unit(self.enrolled - self._mean)
        starts = [self._assign[idx]]
        if self.chunks <= _BOOTSTRAP_CHUNKS and len(e) >= 3:
            # early on, also split afresh along the main axis (an early mistake does not stick)
            centred = e - e.mean(axis=0)
            axis = np.linalg.svd(centred, full_matrices=False)[2][0]
            starts.append((centred @ axis > 0).astype(int))
        best = max((_two_means(e, start, prior) for start in starts), key=lambda r: r[2])
        assign, self.centres = best[0], best[1]
        if self.chunks <= _BOOTSTRAP_CHUNKS and self._swapped(assign, starts[0]):
            assign = 1 - assign
            self.centres = self.centres[::-1]
        self._assign[idx] = assign

    def _swapped(self, assign: np.ndarray, before: np.ndarray) -> bool:
        """Whether the new split ``assign`` names the voices the other way round.

        With an enrolment: when cluster 1 is nearer the enrolled voice. Without one: when most
        stored chunks would change name against ``before``, the assignment until this chunk (a
        tie: when cluster 1 is nearer the chunks heard before the second voice). The names
        follow the voices from one split to the next, so a fresh split that is better only
        renames what it moves. Judging every split by the first voice's chunks instead let a
        first chunk with both voices in it (the telephone call's first 0.9 s, 0.62 of each
        voice) rename the whole session once the split moved it: at chunk_s 0.9 and 1.1 the
        call's last turn went to the other voice from 22.6 / 23.3 s on (docs/attribution.md).
        """
        if self.enrolled is None:
            kept = 2 * int(np.sum(assign == before))
            if kept != len(assign):
                return kept < len(assign)
        anchor = self.enrolled if self.enrolled is not None else self._first_voice
        a = _unit(_unit(anchor) - self._mean)
        return float(a @ self.centres[1]) > float(a @ self.centres[0])


def _two_means(e: np.ndarray, assign: np.ndarray, prior: np.ndarray) -> tuple[np.ndarray, list, float]:
    """Spherical two-means from ``assign`` (``prior`` added to voice 0's sum); the assignment, the
    centres and the objective (summed lengths of the voices' sums: higher is tighter)."""
    for _ in range(_ITERATIONS):
        sums = [prior + e[assign == 0].sum(axis=0), e[assign == 1].sum(axis=0)]
        centres = [_unit(sums[0]), _unit(sums[1])]
        new = np.where(e @ centres[0] >= e @ centres[1], 0, 1)
        if np.array_equal(new, assign) or not new.any() or (new.all() and not prior.any()):
            break
        assign = new
    sums = [prior + e[assign == 0].sum(axis=0), e[assign == 1].sum(axis=0)]
    return assign, [_unit(sums[0]), _unit(sums[1])], float(np.linalg.norm(sums[0]) + np.linalg.norm(sums[1]))


def _rows_unit(m: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(m, axis=1, keepdims=True)
    return m / np.where(n > 0, n, 1.0)


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v
