"""Prosody per speaker, streaming at a 10 ms hop: intensity, pitch, speech rate.

Every hop ``k`` analyses the audio that ends at sample ``(k + 1) * hop``:

- intensity in dBFS (reference: full scale, fixed; never ``ref=np.max`` on a chunk)
  over the last ``frame_ms``;
- F0 by YIN over the last ``3 * sr / fmin`` samples rounded up to a power of two,
  kept only on voiced hops: the speaker is talking (VAD), the hop is within 25 dB of
  the speaker's speech level, and the normalised autocorrelation at the YIN period
  is >= 0.5. F0 is not computed at all on blocks where nobody is talking (it would
  be thrown away). ``prosody.pitch`` chooses the YIN: ``"yin"``, the package's numpy
  implementation of ``librosa.yin`` (same values, see :mod:`session_monitor.prosody.pitch`;
  no librosa import), or ``"librosa"``, ``librosa.yin`` itself.

Each speaker has running baselines over its own speech (exponential, time constant
``baseline_tau_s`` seconds of speech): intensity mean/variance for a z-score, and
mean log-F0 for pitch in semitones. Only hops above the channel's own tracked noise
floor (less 5 dB) count toward them, never above a fixed dBFS, so the same voice
recorded 30 dB quieter gets the same z-scores and semitones. Events come at
``features_hz``.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from session_monitor.audio.frames import SAMPLE_RATE, Frame
from session_monitor.events import Prosody
from session_monitor.prosody.peaks import prominent_peaks
from session_monitor.prosody.pitch import periodicity, yin_frames
from session_monitor.settings.loader import ProsodySettings
from session_monitor.speech.noise_floor import NoiseFloor

__all__ = ["ProsodyTracker", "SegmentProsody", "warm_up"]

_EPS = 1e-10
_VOICED_CORR = 0.5
_NAN = float("nan")


def _median(values: list[float]) -> float:
    """``np.median`` of a short list (the same value, without numpy's overhead)."""
    s = sorted(values)
    m = len(s) // 2
    return s[m] if len(s) % 2 else (s[m - 1] + s[m]) / 2


def warm_up(pitch: str = "yin") -> None:
    """Import and run the pitch tracker once, before any audio flows.

    With ``pitch = "librosa"`` this is where librosa's numba kernels compile (seconds).
    """
    y = np.sin(2 * np.pi * 150 * np.arange(4096) / SAMPLE_RATE).astype(np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(y, 1024)[::160]
    if pitch == "librosa":
        import librosa

        librosa.yin(y, fmin=65, fmax=400, sr=SAMPLE_RATE, frame_length=1024, hop_length=160, center=False)
    else:
        yin_frames(frames, sr=SAMPLE_RATE, fmin=65, fmax=400, threshold=0.2)
    periodicity(y, np.full(len(frames), 150.0), sr=SAMPLE_RATE, hop=160, frame_length=1024)


class SegmentProsody:
    """Summary of a stretch of one speaker's hops: level, pitch, syllable rate."""

    __slots__ = ("intensity_db", "f0_hz", "syllable_rate_hz")

    def __init__(self, intensity_db: float | None, f0_hz: float | None, syllable_rate_hz: float | None):
        self.intensity_db = intensity_db
        self.f0_hz = f0_hz
        self.syllable_rate_hz = syllable_rate_hz


class ProsodyTracker:
    """Streaming prosody of one speaker channel.

    ``process(frame, speaking=...)`` takes the VAD's current state for the frame and
    returns the :class:`~session_monitor.events.Prosody` events it completed. F0 is
    analysed only when ``analyse_f0`` (default: ``speaking``) is true; a caller that
    shares one analysis between trackers passes the channel's state there.
    """

    def __init__(self, settings: ProsodySettings, *, speaker: str) -> None:
        self.settings = settings
        self.speaker = speaker
        self.hop = round(settings.hop_ms * SAMPLE_RATE / 1000)
        self.win = round(settings.frame_ms * SAMPLE_RATE / 1000)
        self.yin_len = 1 << int(np.ceil(np.log2(3 * SAMPLE_RATE / settings.fmin_hz)))
        self.context = max(self.win, self.yin_len)
        self._buf = np.zeros(self.context - self.hop, dtype=np.float32)  # history before hop 0
        self._next_hop = 0
        self._hops_per_event = max(1, round(SAMPLE_RATE / self.hop / settings.features_hz))
        self._acc_db: list[float] = []
        self._acc_f0: list[float] = []
        self._acc_speaking = False
        # history for segment summaries: (hop index, dB, f0 or nan)
        keep = int(120 * SAMPLE_RATE / self.hop)
        self._hist_db: deque[float] = deque(maxlen=keep)
        self._hist_f0: deque[float] = deque(maxlen=keep)
        self._hist_first = 0
        # baselines (over this speaker's speech)
        self._speech_s = 0.0
        self._db_mean: float | None = None
        self._db_var = 9.0
        self._logf0_mean: float | None = None
        self.level_db = -120.0  # last event's level, for the terminal view
        # the channel's noise floor over its 10 ms hops: what "no sound" is on this microphone
        self.noise = NoiseFloor(chunk_s=self.hop / SAMPLE_RATE)

    # -- baseline state, for other stages --------------------------------------------------------

    @property
    def baseline_ready(self) -> bool:
        return self._speech_s >= self.settings.baseline_min_s

    # -- streaming ---------------------------------------------------------------------------------

    def process(self, frame: Frame, *, speaking: bool, analyse_f0: bool | None = None) -> list[Prosody]:
        buf = np.concatenate([self._buf, frame.samples])
        n_hops = (len(buf) - (self.context - self.hop)) // self.hop
        if n_hops <= 0:
            self._buf = buf
            return []
        db, f0 = self._analyse(buf, n_hops, speaking if analyse_f0 is None else analyse_f0)
        self._buf = buf[n_hops * self.hop :].copy()
        db_list = db.tolist()
        self.noise.update(db)
        if speaking:
            f0_list = f0.tolist()
            logf0 = np.log2(np.where(f0 > 0, f0, 1.0)).tolist()
        # an event every _hops_per_event hops, reporting the baselines after its last hop:
        # the block's hops are taken event by event
        events: list[Prosody] = []
        k = 0
        while k < n_hops:
            take = min(n_hops - k, self._hops_per_event - len(self._acc_db))
            piece = db_list[k : k + take]
            if speaking:
                voiced = self._update_baselines(piece, f0_list[k : k + take], logf0[k : k + take])
                self._acc_f0.extend(v for v in voiced if v == v)
            else:
                voiced = [_NAN] * take
            self._hist_db.extend(piece)
            self._hist_f0.extend(voiced)
            self._acc_db.extend(piece)
            self._acc_speaking |= speaking
            self._next_hop += take
            k += take
            if len(self._acc_db) == self._hops_per_event:
                events.append(self._emit())
        self._hist_first = self._next_hop - len(self._hist_db)
        return events

    def _analyse(self, buf: np.ndarray, n_hops: int, with_f0: bool) -> tuple[np.ndarray, np.ndarray]:
        """Per hop: intensity (dBFS) and raw F0 (Hz, 0 where not periodic or not analysed)."""
        ends = self.context - self.hop + self.hop * np.arange(1, n_hops + 1)
        power = np.concatenate([[0.0], np.cumsum(buf.astype(np.float64) ** 2)])
        db = 10 * np.log10((power[ends] - power[ends - self.win]) / self.win + _EPS)
        if not with_f0:
            return db, np.zeros(n_hops)
        seg = buf[ends[0] - self.yin_len : ends[-1]]
        frames = np.lib.stride_tricks.sliding_window_view(seg, self.yin_len)[:: self.hop][:n_hops]
        s = self.settings
        if s.pitch == "librosa":
            import librosa

            f0 = librosa.yin(seg, fmin=s.fmin_hz, fmax=s.fmax_hz, sr=SAMPLE_RATE, frame_length=self.yin_len,
                             hop_length=self.hop, center=False, trough_threshold=s.yin_threshold)[:n_hops]
        else:
            f0 = yin_frames(frames, sr=SAMPLE_RATE, fmin=s.fmin_hz, fmax=s.fmax_hz, threshold=s.yin_threshold)
        corr = periodicity(seg, f0, sr=SAMPLE_RATE, hop=self.hop, frame_length=self.yin_len)
        return db, np.where(corr >= _VOICED_CORR, f0, 0.0)

    def _update_baselines(self, db: list[float], f0: list[float], logf0: list[float]) -> list[float]:
        """Update the baselines with hops where the speaker talks, in order; return each
        hop's F0 if voiced, else NaN.

        A hop is voiced when YIN found a period (``f0 > 0``) and the hop is within 25 dB
        of the speech level so far (before this hop).
        """
        hop_s = self.hop / SAMPLE_RATE
        slow = hop_s / self.settings.baseline_tau_s
        mean, var, lmean, speech_s = self._db_mean, self._db_var, self._logf0_mean, self._speech_s
        # a hop with sound: above the noise floor less 5 dB (not digital silence or a dropout)
        sound_db = -np.inf if self.noise.db is None else self.noise.db - 5.0
        out: list[float] = []
        for k, level in enumerate(db):
            voiced = f0[k] > 0 and (mean is None or level > mean - 25.0)
            loud = level > sound_db
            speech_s += hop_s if loud else 0.0
            alpha = max(slow, 1.0 / max(1.0, speech_s / hop_s))  # the same for level and pitch
            if loud:
                if mean is None:
                    mean = level
                else:
                    delta = level - mean
                    mean += alpha * delta
                    var = (1 - alpha) * (var + alpha * delta * delta)
            if not voiced:
                out.append(_NAN)
                continue
            lmean = logf0[k] if lmean is None else lmean + alpha * (logf0[k] - lmean)
            out.append(f0[k])
        self._db_mean, self._db_var, self._logf0_mean, self._speech_s = mean, var, lmean, speech_s
        return out

    def _emit(self) -> Prosody:
        t = self._next_hop * self.hop / SAMPLE_RATE
        mean_power = float(np.mean(10.0 ** (np.asarray(self._acc_db) / 10)))
        db = 10 * np.log10(mean_power + _EPS)
        z = None
        if self._acc_speaking and self.baseline_ready and self._db_mean is not None:
            z = (db - self._db_mean) / max(np.sqrt(self._db_var), 1.0)
        f0_hz = _median(self._acc_f0) if self._acc_f0 else None
        semis = None
        if f0_hz is not None and self._logf0_mean is not None:
            semis = 12.0 * (np.log2(f0_hz) - self._logf0_mean)
        event = Prosody(
            t=t, speaker=self.speaker, intensity_db=db, intensity_z=z, f0_semitones=semis,
            f0_hz=f0_hz, speaking=self._acc_speaking,
        )
        self.level_db = db
        self._acc_db, self._acc_f0, self._acc_speaking = [], [], False
        return event

    # -- summaries -----------------------------------------------------------------------------------

    def summarize(self, start_s: float, end_s: float) -> SegmentProsody:
        """Level (dBFS, power mean), median voiced F0 and syllable rate over ``[start_s, end_s]``.

        Syllable nuclei are intensity peaks at least ``syllable_prominence_db`` above the
        dips on either side, 80 ms or more apart, within 25 dB of the stretch's loudest
        hop (after de Jong & Wempe 2009, "Praat script to detect syllable nuclei").
        """
        first = int(start_s * SAMPLE_RATE / self.hop) - self._hist_first
        last = int(end_s * SAMPLE_RATE / self.hop) - self._hist_first
        first, last = max(first, 0), min(last, len(self._hist_db))
        if last - first < 3:
            return SegmentProsody(None, None, None)
        db = np.array([self._hist_db[i] for i in range(first, last)])
        f0 = np.array([self._hist_f0[i] for i in range(first, last)])
        level = float(10 * np.log10(np.mean(10 ** (db / 10)) + _EPS))
        voiced = f0[~np.isnan(f0)]
        f0_hz = float(np.median(voiced)) if len(voiced) else None
        return SegmentProsody(level, f0_hz, self._syllable_rate(db))

    def _syllable_rate(self, db: np.ndarray) -> float:
        smooth = np.convolve(db, np.ones(3) / 3, mode="same")
        min_gap = max(1, round(0.08 * SAMPLE_RATE / self.hop))
        peaks = prominent_peaks(
            smooth, prominence=self.settings.syllable_prominence_db, distance=min_gap,
            height=float(smooth.max()) - 25.0,
        )
        return len(peaks) / (len(db) * self.hop / SAMPLE_RATE)
