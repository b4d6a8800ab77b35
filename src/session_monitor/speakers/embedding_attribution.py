"""Mono attribution on the neural speaker embedding (``attribution.embedding = "ge2e"``).

The same stage as :class:`attribution.MonoAttribution` (chunks, lookahead, onsets held
back, segment splits, ``unknown`` below ``min_confidence``, one job a speaker for the
transcriber), with three parts replaced:

- a chunk is described by the GE2E embedding (:mod:`encoder`) of its samples and the
  ``context_s`` of its speech segment before it, instead of MFCC statistics;
- the chunks are clustered by :class:`voices.TwoVoices` (cosine, one voice until a
  second is heard) instead of Gaussian models, a spectral first split and a novelty test;
- a change of speaker inside a segment is cut, within half a chunk of the chunk that
  changed, where the per-frame likelihood ratio of two MFCC Gaussians changes sides, one
  Gaussian a voice, estimated from the speech frames of the chunks the embeddings give it
  (:meth:`EmbeddingAttribution.frame_llr`); until each voice has ``_CUT_MIN_FRAMES`` of
  them, at the quietest 100 ms there instead (turns change at pauses).

docs/attribution.md ("Speaker embedding") has the measurements.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from session_monitor.audio.frames import SAMPLE_RATE, Frame
from session_monitor.settings.sections import AttributionSettings
from session_monitor.speakers.attribution import MonoAttribution
from session_monitor.speakers.encoder import VoiceEncoder
from session_monitor.speakers.recent_audio import HOP, RecentAudio
from session_monitor.speakers.voice_features import GaussianModel, GaussianStats, speech_frames
from session_monitor.speakers.voices import TwoVoices
from session_monitor.speech.noise_floor import NoiseFloor

__all__ = ["EmbeddingAttribution"]

#: A chunk with fewer 10 ms steps of voice than this (within 30 dB of its loudest, above the
#: floor) is not judged.
_MIN_VOICED_STEPS = 20
_AUDIO_KEPT_S = 30.0
#: Speech frames (10 ms) each voice needs before a change is cut on their MFCC Gaussians
#: (the call at chunk_s 0.9-1.2: 0.90-0.92 with 150-300, 0.88 with 400+, docs/attribution.md).
_CUT_MIN_FRAMES = 200
#: A voice's Gaussian is shrunk towards both voices' one with this many frames of weight (as
#: the MFCC clustering's relevance: a voice heard for 2 s keeps 17 % of its own covariance).
_CUT_RELEVANCE = 1000.0


class EmbeddingAttribution(MonoAttribution):
    """Relabels one mono channel's VAD events with the speaker, judged on speaker embeddings.

    Parameters
    ----------
    settings : AttributionSettings
    noise : NoiseFloor
        The channel's tracked noise floor (:class:`attribution.MonoAttribution`); a 10 ms step
        less than ``voice_margin_db`` above it is not counted as voice.
    voices : TwoVoices
        The clustering (with or without an enrolled therapist).
    encoder : VoiceEncoder
        The speaker embedding.
    """

    def __init__(self, settings: AttributionSettings, *, noise: NoiseFloor, voices: TwoVoices,
                 encoder: VoiceEncoder) -> None:
        super().__init__(settings, noise=noise, speakers=voices)  # type: ignore[arg-type]
        self.audio = RecentAudio(keep_s=_AUDIO_KEPT_S)
        self.encoder = encoder
        self._context = round(settings.context_s * SAMPLE_RATE)
        #: (chunk number, MFCC statistics of its speech frames), as many as the voices keep
        self._frames: deque[tuple[int, GaussianStats]] = deque(maxlen=voices.history)
        encoder.embed(np.zeros(SAMPLE_RATE // 2, dtype=np.float32))  # warm-up outside the session

    def process(self, frame: Frame | None, items: list[Any]) -> list[Any]:
        if frame is not None:
            self.audio.add(frame.samples)
        return super().process(frame, items)

    def _add_chunk(self, a: int, b: int) -> None:
        db = self.audio.level_db(a, b)
        voiced = (db >= self.floor_db) & (db >= (db.max() if len(db) else 0.0) - 30.0)
        number = None
        if int(voiced.sum()) >= _MIN_VOICED_STEPS:
            assert self._seg_start is not None
            lo = max(self._seg_start, a - self._context, self.audio.kept_from())
            number = self.speakers.add(self.encoder.embed(self.audio.get(lo, b)))
            coeffs, frame_db = self.features.get(a, b)
            frames = speech_frames(coeffs, frame_db, floor_db=self.floor_db)
            if len(frames):
                self._frames.append((number, GaussianStats.of(frames)))
        self._pending.append((a, b, number))
        self._chunk_end = b
        self.chunks += 1

    def _change_point(self, run: Any, a: int, b: int, new_cluster: int) -> int:
        """Where the voice changed, within half a chunk of ``a`` (not in the run's first
        ``min_chunk_s``, not after ``b``): on the voices' MFCC Gaussians, or the middle of the
        quietest 100 ms while a voice has too few frames for one."""
        lo = max(run.start + self._min_chunk, a - self._chunk // 2, self.audio.kept_from())
        hi = min(b, a + self._chunk // 2)
        if hi - lo < 10 * HOP:
            return a
        cut = self._likeliest_cut(lo, hi, new_cluster, self.frame_llr)
        if cut is not None:
            return cut
        smooth = np.convolve(self.audio.level_db(lo, hi), np.ones(10) / 10, mode="valid")
        return lo + int(np.argmin(smooth)) * HOP + 5 * HOP

    def frame_llr(self, coeffs: np.ndarray) -> np.ndarray | None:
        """Per-frame log-likelihood ratio voice 0 - voice 1 of MFCC frames ``(frames, 19)``, shape
        ``(frames,)``, under one full-covariance Gaussian a voice, each from the speech frames of
        the chunks the embedding clustering gives it now; None until each has
        ``_CUT_MIN_FRAMES``.

        The embeddings say which voice a chunk is; the frames say where inside a chunk it
        changes (a 1 s embedding cannot, and a change in overlapping speech has no pause).
        """
        voices = [GaussianStats(), GaussianStats()]
        for number, stats in self._frames:
            cluster = self.speakers.cluster_of(number)
            if cluster is not None:
                voices[cluster].add(stats)
        if min(v.n for v in voices) < _CUT_MIN_FRAMES:
            return None
        both = voices[0].copy()
        both.add(voices[1])
        prior: GaussianModel = both.model()
        models = [v.model(prior, relevance=_CUT_RELEVANCE) for v in voices]
        return models[0].log_likelihood(coeffs) - models[1].log_likelihood(coeffs)
