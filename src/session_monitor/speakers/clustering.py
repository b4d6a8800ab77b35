"""Online two-speaker clustering: which of two voices a chunk of speech is.

Every chunk of speech (about a second, see :mod:`attribution`) is summarized by the
sufficient statistics of its MFCC frames (:class:`voice_features.GaussianStats`).
After every new chunk, the session's chunks so far (the last ``history`` of them)
are clustered into two voices, each a full-covariance Gaussian
(:mod:`voice_features`), by *trimmed* two-means:

1. start: the chunk means, whitened by the pooled covariance, are split on either
   side of their main axis of spread (bisecting k-means; deterministic); during the
   first ``_BOOTSTRAP_CHUNKS`` chunks without an enrolment a second start, the
   spectral split of the chunks' likelihood-ratio affinity (:mod:`spectral_split`),
   is run too, and kept
   only where two criteria agree that it is better (:meth:`TwoSpeakers._choose`);
2. iterate: each voice's model is estimated from its chunks, leaving out the
   ``_TRIM`` share of chunks that fit either model worst (overlapping speech,
   laughter, noise: without the trimming these outliers, not the voices, decide the
   split); without an enrolment, its covariance is shrunk towards the two voices'
   within-voice covariance while it has few frames (``_COVARIANCE_RELEVANCE``);
   each chunk goes to the voice under which its frames have the higher mean
   log-likelihood, which the statistics give exactly without the frames;
3. a second voice counts once each has ``_MIN_VOICE_FRAMES`` frames; voice names
   are kept from one clustering to the next by their overlap.

The new chunk is then decided under the two voices' models; the mean per-frame
log-likelihood ratio ``llr`` gives the confidence ``1 / (1 + exp(-_CONF_SCALE *
|llr|))``. Earlier decisions are never revised (they were published), but the
models are, so an early mistake does not stick.

Which voice is the *anchor* (cluster 0 of a :class:`Decision`): with an enrolled
voice, the one under which the enrolment's frames are likelier; without, the voice
of the session's first chunk. While only one voice has been heard, an enrolled
session compares each chunk with the enrolled voice (the *novelty* of the chunk, a
cross-likelihood ratio, against the threshold calibrated at enrolment); an
unenrolled one gives it to the anchor with confidence ``_ONE_VOICE_CONFIDENCE``.

Why not test whether a second voice is there at all (BIC): on the project's
recordings a single speaker's varied turns split as "well" as two speakers early on
(docs/attribution.md), and a therapy session has two speakers by design.

Deterministic: the same chunks in the same order give the same decisions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from session_monitor.speakers.novelty import CHUNK_RELEVANCE, DEFAULT_NOVELTY
from session_monitor.speakers.spectral_split import fiedler_split, glr_affinity, normalized_cut
from session_monitor.speakers.voice_features import N_COEFFS, GaussianModel, GaussianStats

__all__ = ["MIN_FRAMES", "Decision", "TwoSpeakers"]

#: Confidence = logistic(_CONF_SCALE * |mean per-frame log-likelihood ratio|).
_CONF_SCALE = 1.0
#: Confidence of a chunk while a session without enrolment has heard one voice.
_ONE_VOICE_CONFIDENCE = 0.75
#: MAP relevance in frames of a voice shrunk to the session.
_VOICE_RELEVANCE = 50.0
#: Without an enrolment, a voice's covariance (190 parameters in 19 dimensions) is shrunk
#: towards the within-voice covariance of both voices with this many frames of weight
#: (relevance MAP): early on a voice has 80-300 frames and its own covariance is noise.
_COVARIANCE_RELEVANCE = 1000.0
_ITERATIONS = 8
#: The spectral start is kept when its normalized cut is this much lower than the main axis's ...
_CUT_MARGIN = 0.01
#: ... and its coherence at most this much lower (a VAD segment of the telephone call holds up
#: to six turns, so the right split there breaks 1 link in 5-10; docs/attribution.md, fifth round).
_COHERENCE_SLACK = 0.2
#: With an enrolment, voice 0's model includes it, weighted as this many frames at most (60 s).
_ENROLLED_FRAMES = 6000.0
#: Share of chunks left out of the voice models as outliers.
_TRIM = 0.15
#: Chunks during which the clustering restarts from scratch each time; later it
#: continues from the last assignment (stable names, no jumps between partitions).
_BOOTSTRAP_CHUNKS = 30
#: Without enrolment the anchor is the voice of most of the session's first chunks.
_OPENING_CHUNKS = 3
#: ... re-judged after each of the session's first _NAMING_CHUNKS chunks, then kept.
_NAMING_CHUNKS = 15
#: Frames each voice needs before a second voice is accepted.
_MIN_VOICE_FRAMES = 80
#: Chunks with fewer voiced frames than this are not judged.
MIN_FRAMES = 20


@dataclass(frozen=True, slots=True)
class Decision:
    """Which voice a chunk is (0 = anchor, 1 = the other), how sure, and why."""

    cluster: int
    confidence: float  # 0.5..1
    llr: float  # mean per-frame log-likelihood ratio anchor - other (0 with one voice)
    voices: int  # voices heard so far (1 or 2)


class TwoSpeakers:
    """Online clustering of speech chunks into at most two voices.

    Parameters
    ----------
    enrolled : GaussianStats, optional
        Statistics of the enrolled therapist voice; None for unsupervised clustering.
    enrolled_threshold : float, optional
        The enrolled voice's novelty threshold (:func:`novelty.calibrate_novelty`).
    history : int
        Chunks kept for clustering (the oldest are forgotten; bounded memory and time).
    """

    def __init__(self, *, enrolled: GaussianStats | None = None, enrolled_threshold: float | None = None,
                 history: int = 600) -> None:
        self.enrolled = enrolled
        self.enrolled_threshold = enrolled_threshold if enrolled_threshold is not None else DEFAULT_NOVELTY
        self.history = history
        d = N_COEFFS
        self._n = np.zeros(history)
        self._s1 = np.zeros((history, d))
        self._s2 = np.zeros((history, d, d))
        self._assign = np.zeros(history, dtype=int)
        self._link = np.zeros(history, dtype=bool)  # the chunk directly follows the one stored before it
        self._last_stored = False
        self._size = 0  # chunks stored
        self._next = 0  # ring position of the next chunk
        self._opening: list[int] = []  # ring slots of the session's first chunks while kept
        self.two_voices = False
        self.models: list[GaussianModel | None] = [None, None]  # per cluster index (not anchor order)
        self.anchor = 0  # cluster index that is the anchor voice
        self.chunks = 0

    # -- public ------------------------------------------------------------------------------------------

    def add(self, frames: np.ndarray, *, continues: bool = False) -> int | None:
        """Learn one chunk (``(frames, 19)`` MFCC rows, in session order); its number, or None
        when it has too few frames to judge.

        ``continues``: the chunk directly follows the previous chunk in the same speech
        segment (used to judge how well a split keeps a segment's chunks together).
        """
        if len(frames) < MIN_FRAMES:
            self._last_stored = False
            return None
        link = continues and self._last_stored
        self._last_stored = True
        chunk = GaussianStats.of(frames)
        slot = self._store(chunk)
        self._link[slot] = link
        self._cluster(slot)
        return self.chunks - 1

    def decision(self, chunk: int) -> Decision:
        """What chunk number ``chunk`` is, judged with everything learnt so far.

        Raises ``KeyError`` when it is no longer in the history.
        """
        if not 0 <= self.chunks - 1 - chunk < self._size:
            raise KeyError(chunk)
        slot = np.array([chunk % self.history])
        if not self.two_voices:
            return self._one_voice(slot)
        a, b = self.models[self.anchor], self.models[1 - self.anchor]
        assert a is not None and b is not None
        llr = float(self._mean_loglik(a, slot)[0] - self._mean_loglik(b, slot)[0])
        return Decision(0 if llr >= 0 else 1, _logistic(_CONF_SCALE * abs(llr)), llr, 2)

    def decide(self, frames: np.ndarray) -> Decision | None:
        """:meth:`add` then :meth:`decision` of that chunk at once (no lookahead)."""
        chunk = self.add(frames)
        return None if chunk is None else self.decision(chunk)

    def frame_llr(self, frames: np.ndarray) -> np.ndarray | None:
        """Per-frame log-likelihood ratio anchor - other, shape ``(frames,)``; None with one voice."""
        if not self.two_voices or len(frames) == 0:
            return None
        a, b = self.models[self.anchor], self.models[1 - self.anchor]
        assert a is not None and b is not None
        return a.log_likelihood(frames) - b.log_likelihood(frames)

    # -- one voice so far -----------------------------------------------------------------------------------

    def _one_voice(self, slot: np.ndarray) -> Decision:
        if self.enrolled is None:
            return Decision(0, _ONE_VOICE_CONFIDENCE, 0.0, 1)
        # novelty against the enrolled voice: gain of a model adapted to the chunk
        model = self.enrolled.model()
        chunk = GaussianStats()
        chunk.n, chunk.s1, chunk.s2 = float(self._n[slot][0]), self._s1[slot][0], self._s2[slot][0]
        adapted = chunk.model(model, relevance=CHUNK_RELEVANCE)
        nov = float(self._mean_loglik(adapted, slot)[0] - self._mean_loglik(model, slot)[0])
        thr = self.enrolled_threshold
        margin = 4.0 * _CONF_SCALE * (nov - thr) / max(thr, 1.0)
        return Decision(1 if nov > thr else 0, _logistic(abs(margin)), 0.0, 1)

    # -- clustering ---------------------------------------------------------------------------------------------

    def _store(self, chunk: GaussianStats) -> int:
        slot = self._next
        self._n[slot], self._s1[slot], self._s2[slot] = chunk.n, chunk.s1, chunk.s2
        self._next = (slot + 1) % self.history
        self._size = min(self._size + 1, self.history)
        if self.chunks < _OPENING_CHUNKS:
            self._opening.append(slot)
        elif slot in self._opening:
            self._opening.remove(slot)  # forgotten
        self.chunks += 1
        return slot

    def _mean_loglik(self, model: GaussianModel, idx: np.ndarray) -> np.ndarray:
        """Mean per-frame log-likelihood of each stored chunk ``idx`` under ``model``, from statistics."""
        return model.mean_log_likelihood(self._n[idx], self._s1[idx], self._s2[idx])

    def _stats(self, mask: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        return float(self._n[mask].sum()), self._s1[mask].sum(axis=0), self._s2[mask].sum(axis=0)

    def _models(self, assign: np.ndarray, use: np.ndarray, idx: np.ndarray,
                pooled: GaussianModel) -> list[GaussianModel]:
        parts = []
        for k in (0, 1):
            st = GaussianStats()
            st.n, st.s1, st.s2 = self._stats(idx[(assign == k) & use])
            if k == 0 and self.enrolled is not None:  # voice 0 is anchored to the enrolled voice
                st.add(self.enrolled, min(1.0, _ENROLLED_FRAMES / max(self.enrolled.n, 1.0)))
            parts.append(st)
        if self.enrolled is not None:
            # voice 0 carries >= 60 s of enrolment; shrinking voice 1 towards a covariance
            # dominated by it cost calm_reflective 0.04 (docs/attribution.md, "Third round")
            return [st.model(pooled, relevance=_VOICE_RELEVANCE) if st.n > 0 else pooled for st in parts]
        within = _within_covariance(parts, pooled)
        return [_voice_model(st, pooled, within) if st.n > 0 else pooled for st in parts]

    def _cluster(self, new_slot: int) -> None:
        idx = np.arange(self._size)
        pooled_st = GaussianStats()
        pooled_st.n, pooled_st.s1, pooled_st.s2 = self._stats(idx)
        pooled = pooled_st.model()
        previous = self._assign[: self._size].copy()
        warm = None
        if self.two_voices and self.chunks > _BOOTSTRAP_CHUNKS:
            m0, m1 = self.models
            assert m0 is not None and m1 is not None
            one = np.array([new_slot])
            previous[new_slot] = int(self._mean_loglik(m1, one)[0] > self._mean_loglik(m0, one)[0])
            warm = previous.copy()
        assign, use = self._two_means(idx, pooled, warm)
        sizes = [self._n[idx][(assign == k) & use].sum() for k in (0, 1)]
        if min(sizes) < _MIN_VOICE_FRAMES:
            if not self.two_voices:
                self._assign[: self._size] = 0
                self.models = [pooled, None]
                return
            if assign.min() == assign.max():
                return  # keep the last two-voice models
        if self.two_voices and self.enrolled is None:
            # keep the names: voice k is the one sharing most speech with the old voice k
            known = np.ones(self._size, dtype=bool)
            known[new_slot] = False
            n = self._n[idx]
            if n[known & (assign == previous)].sum() < 0.5 * n[known].sum():
                assign = 1 - assign
        established = not self.two_voices
        self.two_voices = True
        self._assign[: self._size] = assign
        self.models = self._models(assign, use, idx, pooled)
        if established or self.enrolled is not None or self.chunks <= _NAMING_CHUNKS:
            self._set_anchor(use)

    def _two_means(self, idx: np.ndarray, pooled: GaussianModel,
                   warm: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Trimmed two-means from ``warm`` or a principal-axis split; (assignment, chunks used for the models)."""
        trim = len(idx) >= 5
        fit0 = self._mean_loglik(pooled, idx)
        use = fit0 >= np.quantile(fit0, _TRIM) if trim else np.ones(len(idx), dtype=bool)
        if warm is not None:
            assign = warm
        elif self.enrolled is None and use.sum() >= 4 and self.chunks <= _BOOTSTRAP_CHUNKS:
            return self._choose(idx, pooled, use, trim)
        else:
            assign = np.zeros(len(idx), dtype=int)
            assign[use] = self._split(idx[use], pooled)
            if self.enrolled is not None:  # the side nearer the enrolled voice is voice 0
                sides = []
                for k in (0, 1):
                    st = GaussianStats()
                    st.n, st.s1, st.s2 = self._stats(idx[(assign == k) & use])
                    sides.append(_stats_loglik(self.enrolled, st.model(pooled, relevance=_VOICE_RELEVANCE))
                                 if st.n > 0 else -np.inf)
                if sides[1] > sides[0]:
                    assign = np.where(use, 1 - assign, 0)
        return self._iterate(idx, pooled, assign, use, trim)

    def _iterate(self, idx: np.ndarray, pooled: GaussianModel, assign: np.ndarray, use: np.ndarray,
                 trim: bool) -> tuple[np.ndarray, np.ndarray]:
        models = self._models(assign, use, idx, pooled)
        for _ in range(_ITERATIONS):
            ll = np.stack([self._mean_loglik(m, idx) for m in models], axis=1)
            new = ll.argmax(axis=1)
            best = ll.max(axis=1)
            use = best >= np.quantile(best, _TRIM) if trim else np.ones(len(idx), dtype=bool)
            if np.array_equal(new, assign):
                break
            assign = new
            models = self._models(assign, use, idx, pooled)
        return assign, use

    def _choose(self, idx: np.ndarray, pooled: GaussianModel, use: np.ndarray,
                trim: bool) -> tuple[np.ndarray, np.ndarray]:
        """Two starts, main axis and spectral, each run to convergence; the spectral one is
        kept only when its normalized cut (on the same affinity) is ``_CUT_MARGIN`` lower *and*
        it keeps consecutive chunks of a segment together nearly as often (coherence at most
        ``_COHERENCE_SLACK`` lower).

        Either criterion alone moved the early errors from one recording to another (the
        cut alone: the telephone call +0.06, calm_reflective -0.05; docs/attribution.md).
        Asking for coherence at least as high (fourth round) vetoed the right split of the
        call at ``chunk_s`` 0.9, whose first VAD segment holds six turns.
        """
        kept = idx[use]
        aff = glr_affinity(self._n[kept], self._s1[kept], self._s2[kept], pooled.cov)
        results = []
        for start in (self._split(idx[use], pooled), fiedler_split(aff)):
            assign = np.zeros(len(idx), dtype=int)
            assign[use] = start
            results.append(self._iterate(idx, pooled, assign, use, trim))
        (axis, _), (spectral, _) = results
        better = (normalized_cut(aff, spectral[use]) < (1.0 - _CUT_MARGIN) * normalized_cut(aff, axis[use])
                  and self._coherence(spectral) >= self._coherence(axis) - _COHERENCE_SLACK)
        return results[int(better)]

    def _coherence(self, assign: np.ndarray) -> float:
        """Share of stored chunks that directly follow their predecessor in a segment and
        have its voice (0 when there are none)."""
        idx = np.arange(self._size)
        prev = (idx - 1) % self.history
        linked = self._link[: self._size] & (prev < self._size)
        return float(np.mean(assign[linked] == assign[prev[linked]])) if linked.any() else 0.0

    def _split(self, idx: np.ndarray, pooled: GaussianModel) -> np.ndarray:
        """Chunks ``idx`` on either side of the main axis of their whitened means (0/1 each).

        The axis is the leading eigenvector of the chunk means' scatter, whitened by
        the pooled frame covariance (bisecting k-means, deterministic).
        """
        n = self._n[idx]
        means = self._s1[idx] / n[:, None]
        chol = np.linalg.cholesky(pooled.cov)
        z = np.linalg.solve(chol, (means - pooled.mean).T).T
        zc = z - (n[:, None] * z).sum(axis=0) / n.sum()
        _, vecs = np.linalg.eigh((n[:, None] * zc).T @ zc)
        return (zc @ vecs[:, -1] > 0).astype(int)

    def _set_anchor(self, use: np.ndarray) -> None:
        if not self.two_voices:
            self.anchor = 0
            return
        if self.enrolled is not None:
            self.anchor = 0  # voice 0 carries the enrolment
        elif self._opening:
            # the voice the session's first chunks sound most like (clear chunks weigh more
            # than mixed ones: a first chunk with both voices in it must not decide alone)
            m0, m1 = self.models
            assert m0 is not None and m1 is not None
            opening = np.asarray(self._opening)
            if use[opening].any():
                opening = opening[use[opening]]  # outliers (overlap, noise) do not vote
            llr = self._mean_loglik(m1, opening) - self._mean_loglik(m0, opening)
            vote = float(np.sum(self._n[opening] * np.clip(llr, -2.0, 2.0)))
            self.anchor = int(vote > 0)


def _within_covariance(parts: list[GaussianStats], pooled: GaussianModel) -> np.ndarray:
    """Frame-weighted mean of the voices' own covariances (each about its own mean), ``(19, 19)``.

    Unlike the session's pooled covariance it leaves out the spread *between* the two
    voices, the direction that tells them apart.
    """
    total = sum(st.n for st in parts)
    if total <= 0:
        return pooled.cov
    return sum(st.n * st.mean_cov()[1] for st in parts if st.n > 0) / total


def _voice_model(st: GaussianStats, pooled: GaussianModel, within: np.ndarray) -> GaussianModel:
    """A voice's Gaussian without an enrolment: its mean shrunk towards the session's with
    ``_VOICE_RELEVANCE`` frames of weight, its covariance towards ``within`` with
    ``_COVARIANCE_RELEVANCE`` frames (w = n / (n + r): 0.09-0.23 for 100-300 frames,
    0.9 after 9000, i.e. 1.5 min of one voice)."""
    mu, cov = st.mean_cov()
    a = st.n / (st.n + _VOICE_RELEVANCE)
    c = st.n / (st.n + _COVARIANCE_RELEVANCE)
    return GaussianModel(a * mu + (1 - a) * pooled.mean, c * cov + (1 - c) * within)


def _stats_loglik(st: GaussianStats, model: GaussianModel) -> float:
    return float(model.mean_log_likelihood(np.array([st.n]), st.s1[None], st.s2[None])[0])


def _logistic(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, x))))
