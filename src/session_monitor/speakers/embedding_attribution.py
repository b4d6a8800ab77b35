"""Mono attribution on the neural speaker embedding (``attribution.embedding = "ge2e"``).

The same stage as :class:`attribution.MonoAttribution` (chunks, lookahead, onsets held
back, segment splits, ``unknown`` below ``min_confidence``, one job a speaker for the
transcriber), with three parts replaced:

- a chunk is described by the GE2E embedding (:mod:`encoder`) of its samples and the
  ``context_s`` of its speech segment before it, instead of MFCC statistics;
- the chunks are clustered by :class:`voices.TwoVoices` (cosine, one voice until a
  second is heard) instead of Gaussian models, a spectral first split and a novelty test;
- a change of speaker inside a segment is cut at the quietest 100 ms within half a chunk
  of the chunk that changed (turns change at pauses) instead of on a per-frame
  likelihood ratio.

docs/attribution.md ("Speaker embedding") has the measurements.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from session_monitor.audio.frames import SAMPLE_RATE, Frame
from session_monitor.settings.sections import AttributionSettings
from session_monitor.speakers.attribution import MonoAttribution
from session_monitor.speakers.encoder import VoiceEncoder
from session_monitor.speakers.recent_audio import HOP, RecentAudio
from session_monitor.speakers.voices import TwoVoices
from session_monitor.speech.noise_floor import NoiseFloor

__all__ = ["EmbeddingAttribution"]

#: A chunk with fewer 10 ms steps of voice than this (within 30 dB of its loudest, above the
#: floor) is not judged.
_MIN_VOICED_STEPS = 20
_AUDIO_KEPT_S = 30.0


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
        self._pending.append((a, b, number))
        self._chunk_end = b
        self.chunks += 1

    def _change_point(self, run: Any, a: int, b: int, new_cluster: int) -> int:
        """The middle of the quietest 100 ms within half a chunk of ``a`` (not in the run's first
        ``min_chunk_s``, not after ``b``)."""
        lo = max(run.start + self._min_chunk, a - self._chunk // 2, self.audio.kept_from())
        hi = min(b, a + self._chunk // 2)
        if hi - lo < 10 * HOP:
            return a
        smooth = np.convolve(self.audio.level_db(lo, hi), np.ones(10) / 10, mode="valid")
        return lo + int(np.argmin(smooth)) * HOP + 5 * HOP
