"""The recording's own noise floor, tracked as it streams, so no level is a fixed dBFS.

Microphones and gains differ by 30 dB: a floor at -50 dBFS that suits a well-levelled
lapel microphone (room noise at -65 dBFS) silences a laptop microphone 24 dB quieter,
where speech itself sits near -50 dBFS. The floor here is a low percentile of the chunk
levels of the last ``window_s`` seconds (minimum statistics: between words and turns
every channel falls back to its noise; Martin 2001, "Noise power spectral density
estimation based on optimal smoothing and minimum statistics"), allowed to fall at once
and to rise by at most ``rise_db_per_s`` (so a long stretch of speech does not lift it).
Until the first window has filled it is the percentile of everything heard so far, not
held down by the rise limit: a fade-in or a click of near silence in the first chunks
(``jfk.flac`` opens with one at -73 dBFS over a -41 dBFS room) would otherwise pin the
floor 30 dB low for half a minute.

Scaling the recording by any gain scales every chunk level by the same dB, so the floor
moves with it and ``floor + margin`` keeps the same chunks.

The window is kept as a histogram of 0.25 dB bins (-100..0 dBFS), so an update costs a
few microseconds whatever the window length.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from session_monitor.audio.frames import SAMPLE_RATE
from session_monitor.settings.sections import SpeechActivitySettings

__all__ = ["NoiseFloor", "chunk_levels_db"]

_EPS = 1e-10
#: Histogram of the window: bins of _BIN_DB from _LO_DB to 0 dBFS.
_LO_DB = -100.0
_BIN_DB = 0.25
_BINS = int(-_LO_DB / _BIN_DB)


def chunk_levels_db(chunks: np.ndarray) -> np.ndarray:
    """Level of each chunk in dBFS (mean square, shape ``(n, size)`` -> ``(n,)``; -100 for digital silence)."""
    return 10 * np.log10(np.mean(chunks.astype(np.float64) ** 2, axis=1) + _EPS)


class NoiseFloor:
    """Running noise-floor estimate of one channel, in dBFS.

    Parameters
    ----------
    chunk_s : float
        Duration of one level value, in seconds (the VAD's 32 ms chunk).
    window_s : float
        History the percentile is taken over, in seconds.
    percentile : float
        Percentile (0..100) of the window's levels taken as the floor.
    rise_db_per_s : float
        Fastest rise of the estimate, in dB per second of audio; it falls at once.
    min_history_s : float
        Seconds of audio before an estimate exists (:attr:`db` is None until then).
    top_percentile : float
        Percentile (50..100) of the window's levels taken as its speech level (:attr:`top_db`),
        which falls by at most ``rise_db_per_s`` and rises at once.
    snr_share : float
        A floor above the noise (:meth:`above`) is at most this share (0..1) of the way from
        the noise floor to the speech level.
    """

    def __init__(self, *, chunk_s: float, window_s: float = 10.0, percentile: float = 5.0,
                 rise_db_per_s: float = 1.0, min_history_s: float = 0.25, top_percentile: float = 95.0,
                 snr_share: float = 1.0) -> None:
        self.chunk_s = chunk_s
        self.percentile = percentile
        self.rise_db_per_s = rise_db_per_s
        self._window = max(1, int(round(window_s / chunk_s)))
        self._bins: deque[int] = deque()  # bin of each level in the window, oldest first
        self._counts = np.zeros(_BINS, dtype=np.int64)
        self._min_chunks = max(1, int(round(min_history_s / chunk_s)))
        self._seen = 0
        self._rest = np.zeros(0, dtype=np.float32)  # samples short of a whole chunk (add_samples)
        self.top_percentile = top_percentile
        self.snr_share = snr_share
        self.db: float | None = None
        #: The loud end of the window (``top_percentile``): the speech level, in dBFS.
        self.top_db: float | None = None

    @classmethod
    def of_speech(cls, settings: SpeechActivitySettings, *, chunk: int = 512) -> NoiseFloor:
        """The floor the speech activity tracks on a channel: over its ``chunk``-sample (32 ms)
        chunks, with its window, percentile and rise limit."""
        return cls(chunk_s=chunk / SAMPLE_RATE, window_s=settings.noise_window_s,
                   percentile=settings.noise_percentile, rise_db_per_s=settings.noise_rise_db_per_s,
                   top_percentile=settings.speech_percentile, snr_share=settings.margin_snr_share)

    def above(self, margin_db: float) -> float | None:
        """A level floor ``margin_db`` above the noise floor, but never more than ``snr_share``
        of the way from the noise floor to the speech level (:attr:`top_db`): in a noisy room
        (speech 10-20 dB over the noise) a fixed margin would take the speech too. In dBFS;
        None before there is an estimate. Relative to the recording either way."""
        if self.db is None or self.top_db is None:
            return None
        return self.db + min(margin_db, self.snr_share * max(0.0, self.top_db - self.db))

    def add_samples(self, samples: np.ndarray) -> float | None:
        """Add 16 kHz audio (shape ``(n,)``), cut in whole chunks counted from the first sample
        ever given (a partial chunk waits for the next call); return the floor after them."""
        chunk = int(round(self.chunk_s * SAMPLE_RATE))
        buf = np.concatenate([self._rest, samples]) if len(self._rest) else samples
        n = len(buf) // chunk
        self._rest = np.array(buf[n * chunk :], dtype=np.float32)
        return self.update(chunk_levels_db(buf[: n * chunk].reshape(n, chunk))) if n else self.db

    def update(self, level_db: np.ndarray) -> float | None:
        """Add chunk levels (dBFS, shape ``(n,)``) and return the floor after them.

        Digital silence (a level at the -100 dBFS epsilon or below) is not counted: a
        dead or muted stretch says nothing about the room.
        """
        # A block brings a few levels: plain Python for them, and one cumsum and one
        # searchsorted for both percentiles (a third of the time of the vectorised form here).
        live = [x for x in level_db.tolist() if x > -99.0]
        if not live:
            return self.db
        counts, window = self._counts, self._bins
        for x in live[-self._window :]:
            b = min(max(int((x - _LO_DB) / _BIN_DB), 0), _BINS - 1)
            counts[b] += 1
            window.append(b)
        while len(window) > self._window:
            counts[window.popleft()] -= 1
        self._seen += len(live)
        if self._seen < self._min_chunks:
            return self.db
        n = len(window)
        ranks = (max(self.percentile / 100.0 * n, 1e-9), max(self.top_percentile / 100.0 * n, 1e-9))
        k, k_top = np.searchsorted(np.cumsum(counts), ranks).tolist()
        target = _LO_DB + (k + 0.5) * _BIN_DB
        top = _LO_DB + (k_top + 0.5) * _BIN_DB
        if self.top_db is None or top >= self.top_db or self._seen < self._window:
            self.top_db = top
        else:  # the speech level falls as slowly as the floor rises: a long silence keeps it
            self.top_db = max(top, self.top_db - self.rise_db_per_s * self.chunk_s * len(live))
        if self.db is None or target <= self.db or self._seen < self._window:
            self.db = target  # until the window has filled, the percentile of all heard so far
        else:
            self.db = min(target, self.db + self.rise_db_per_s * self.chunk_s * len(live))
        return self.db
