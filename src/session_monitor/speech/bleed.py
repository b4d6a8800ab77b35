"""Which of two channels carries its own speaker: bleed and dual mono, decided from both.

Two microphones in one room each hear the other speaker too, attenuated (6-20 dB for
lapel microphones a metre or two apart) and a few milliseconds late. A per-channel VAD
calls that bleed speech, so the other speaker seems to talk along and "overlap" all
the time. Here every 32 ms chunk (the VAD's own chunks, so the decisions line up with
its probabilities) is judged from the two channels together:

* how much of channel ``c`` the other channel ``o`` explains: the squared normalised
  cross-correlation ``rho2`` of ``c``'s chunk with ``o`` delayed by 0 to
  ``max_lag_ms`` (bleed always arrives *later* on the far microphone, so only ``o``'s
  past is needed and the decision is causal, no look-ahead), and
* the level difference ``level_o - level_c`` in dB.

A chunk of ``c`` is *bleed* when ``o`` is louder by at least ``min_level_diff_db`` and
explains at least ``min_coherence`` of it. Where both people speak at once the two
channels hold different voices, ``rho2`` stays low, and both chunks are their own: a
real overlap is kept. For ``c = o + own`` with the bleed ``g`` (linear gain) of ``o``,
``rho2 = g^2 E_o / (E_own + g^2 E_o)``: with the other voice 12 dB down and both
speakers equally loud at their own microphones, ``rho2`` is 0.06.

Dual mono (one signal saved on both channels, e.g. a mono recording stored as stereo)
shows as ``rho2`` near 1 at lag 0 with the levels equal, on nearly every chunk, from the
first seconds; :class:`DualMonoDetector` tells it from bleed, whose levels differ.

Both classes take whole blocks of shape ``(2, n)`` at 16 kHz and keep what they need
across blocks, so a stream in blocks gives the decisions of the whole file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from session_monitor.audio.frames import SAMPLE_RATE
from session_monitor.settings.sections import BleedSettings, SpeechActivitySettings
from session_monitor.speech.noise_floor import NoiseFloor

__all__ = ["ChunkOwnership", "BleedDetector", "DualMonoDetector", "DualMonoVerdict", "chunk_coherence", "CHUNK"]

logger = logging.getLogger(__name__)

#: Chunk length in samples (32 ms), the Silero VAD's, so decisions align with its chunks.
CHUNK = 512
_EPS = 1e-10


@dataclass(frozen=True, slots=True)
class ChunkOwnership:
    """Decisions for the whole chunks one block completed.

    Attributes
    ----------
    start_sample : int
        First sample of the first chunk (session clock).
    own : np.ndarray, shape ``(2, n)``, bool
        True where the channel carries its own speaker (or nothing but its own noise),
        False where what it holds is the other channel's bleed.
    level_db : np.ndarray, shape ``(2, n)``
        Chunk level in dBFS (mean square).
    rho2 : np.ndarray, shape ``(2, n)``
        Share (0..1) of each channel's chunk explained by the other channel's recent past;
        computed only where the other channel is ``min_level_diff_db`` louder (the only
        chunks that can be bleed), 0 elsewhere.
    """

    start_sample: int
    own: np.ndarray
    level_db: np.ndarray
    rho2: np.ndarray

    @property
    def n(self) -> int:
        return self.own.shape[1]


def chunk_coherence(chunks: np.ndarray, other: np.ndarray, max_lag: int) -> np.ndarray:
    """Squared normalised cross-correlation of each chunk with the other channel, best lag.

    Parameters
    ----------
    chunks : np.ndarray, shape ``(n, CHUNK)``
        Chunks of the channel judged.
    other : np.ndarray, shape ``(n, CHUNK + max_lag)``
        The other channel over the same chunks, each row starting ``max_lag`` samples
        earlier (its past), so that ``other[:, max_lag - k : max_lag - k + CHUNK]`` is it
        delayed by ``k`` samples.
    max_lag : int
        Largest delay tried, in samples (>= 0).

    Returns
    -------
    np.ndarray, shape ``(n,)``
        ``max_k r_k^2 / (E_c E_o(k))`` in 0..1; 0 where either part is digital silence.
    """
    n = len(chunks)
    if n == 0:
        return np.zeros(0)
    # r[j] for j <= max_lag pairs x[t] (t < CHUNK) with y[t + j] (t + j < CHUNK + max_lag):
    # a circular correlation of this length has no wrap-around there
    size = 1 << int(np.ceil(np.log2(CHUNK + max_lag)))
    x = chunks.astype(np.float64, copy=False)
    y = other.astype(np.float64, copy=False)
    # r[j] = sum_t x[t] y[t + j]; delay k of y means j = max_lag - k
    spec = np.conj(np.fft.rfft(x, size, axis=1)) * np.fft.rfft(y, size, axis=1)
    r = np.fft.irfft(spec, size, axis=1)[:, : max_lag + 1]
    ex = np.sum(x * x, axis=1)
    cum = np.concatenate([np.zeros((n, 1)), np.cumsum(y * y, axis=1)], axis=1)
    j = np.arange(max_lag + 1)
    ey = cum[:, j + CHUNK] - cum[:, j]  # energy of y[j : j + CHUNK], per lag
    denom = ex[:, None] * ey
    with np.errstate(divide="ignore", invalid="ignore"):
        rho2 = np.where(denom > _EPS * _EPS, r * r / np.maximum(denom, _EPS * _EPS), 0.0)
    return np.clip(rho2.max(axis=1), 0.0, 1.0)


class BleedDetector:
    """Per 32 ms chunk of a two-channel stream: which channel holds its own speaker.

    Parameters
    ----------
    settings : BleedSettings
    speech : SpeechActivitySettings, optional
        The speech activity's settings: a chunk under the lower energy floor it tracks on that
        channel (the lesser of ``noise_margin_db`` and ``continue_margin_db`` above the noise
        floor) is left its own without computing anything, since it can never be speech there.
        None judges every chunk.

    Notes
    -----
    Chunks are counted from sample 0 of the stream, as :class:`~session_monitor.speech.
    activity.SpeechActivity` counts them, so for the same blocks both complete the same
    chunks. With ``settings.enabled`` false every chunk is its own channel's.
    """

    def __init__(self, settings: BleedSettings, *, speech: SpeechActivitySettings | None = None) -> None:
        self.settings = settings
        # a chunk under its channel's speech energy floor (noise floor + margin, tracked as the
        # speech activity tracks it) can never be speech: it needs no decision, and costs none
        if speech is not None and speech.floor_mode != "tracked":
            speech = None  # a fixed floor: every chunk is judged
        # the lower of the two floors: a chunk a segment goes on through needs a decision too
        self.audible_margin_db = None if speech is None else min(speech.noise_margin_db,
                                                                  speech.continue_margin_db)
        self._noise = [] if speech is None else [NoiseFloor.of_speech(speech, chunk=CHUNK) for _ in range(2)]
        self.max_lag = int(round(settings.max_lag_ms * SAMPLE_RATE / 1000))
        self._pending = np.zeros((2, 0), dtype=np.float32)
        self._pending_start = 0
        self._history = np.zeros((2, self.max_lag), dtype=np.float32)  # the samples before _pending
        self.chunks = 0
        self.bleed_chunks = np.zeros(2, dtype=np.int64)

    def process(self, block: np.ndarray) -> ChunkOwnership:
        """Decide the chunks completed by ``block`` (shape ``(2, n)``, float32)."""
        if block.ndim != 2 or block.shape[0] != 2:
            raise ValueError(f"BleedDetector needs a (2, n) block, got shape {block.shape}")
        buf = np.concatenate([self._pending, block], axis=1) if self._pending.shape[1] else block
        start = self._pending_start
        n = buf.shape[1] // CHUNK
        used = n * CHUNK
        past = np.concatenate([self._history, buf[:, :used]], axis=1)
        self._pending = buf[:, used:].copy()
        self._pending_start = start + used
        if self.max_lag:
            self._history = past[:, past.shape[1] - self.max_lag :].copy()
        if n == 0:
            empty = np.zeros((2, 0))
            return ChunkOwnership(start, empty.astype(bool), empty, empty)
        chunks = buf[:, :used].reshape(2, n, CHUNK)
        level = 10 * np.log10(np.mean(chunks.astype(np.float64) ** 2, axis=2) + _EPS)
        rho2 = np.zeros((2, n))
        own = np.ones((2, n), dtype=bool)
        if self.settings.enabled:
            diff = level[::-1] - level  # other minus this
            quieter = diff >= self.settings.min_level_diff_db  # only these chunks can be bleed
            if self.audible_margin_db is not None:
                for c in range(len(self._noise)):
                    self._noise[c].update(level[c])
                    floor = self._noise[c].above(self.audible_margin_db)  # the speech activity's
                    if floor is not None:
                        quieter[c] &= level[c] >= floor
            for c in (0, 1):
                k = np.flatnonzero(quieter[c])
                if len(k):
                    # each chunk's row of the other channel, max_lag samples of its past first
                    idx = k[:, None] * CHUNK + np.arange(CHUNK + self.max_lag)[None, :]
                    rho2[c, k] = chunk_coherence(chunks[c, k], past[1 - c][idx], self.max_lag)
            # what the other channel does not explain, against the other channel's level
            residual = level + 10 * np.log10(np.maximum(1.0 - rho2, _EPS)) - level[::-1]
            bleed = quieter & (rho2 >= self.settings.min_coherence)
            own = ~bleed | (residual >= -self.settings.own_residual_db)
        self.chunks += n
        self.bleed_chunks += (~own).sum(axis=1)
        return ChunkOwnership(start, own, level, rho2)


@dataclass(frozen=True, slots=True)
class DualMonoVerdict:
    """Whether the two channels carry one signal, from ``window_s`` of audio.

    ``share`` is the fraction (0..1) of chunks with sound on both channels that matched
    (``rho2`` at lag 0 >= ``dual_mono_coherence`` with levels within
    ``dual_mono_max_diff_db``); ``decided_at_s`` is the session time of the verdict.
    """

    dual_mono: bool
    share: float
    chunks: int
    decided_at_s: float

    @property
    def hint(self) -> str:
        if self.dual_mono:
            return ("both channels carry the same signal (a mono recording saved as stereo): "
                    "treated as one microphone, speakers told apart by voice")
        return ""


class DualMonoDetector:
    """Watches the first ``dual_mono_window_s`` of sound on both channels for one signal twice.

    Feed it the blocks from the start; :attr:`verdict` stays None until enough chunks
    with sound on both channels were seen (or :meth:`finish` is called on a shorter
    stream), then holds the :class:`DualMonoVerdict`. After the verdict it keeps
    counting, so :meth:`share_so_far` tells whether the channels stayed one signal
    throughout.
    """

    def __init__(self, settings: BleedSettings) -> None:
        self.settings = settings
        self._need = max(1, int(settings.dual_mono_window_s * SAMPLE_RATE / CHUNK))
        self._pending = np.zeros((2, 0), dtype=np.float32)
        self._position = 0
        self.matched = 0
        self.active = 0
        self.verdict: DualMonoVerdict | None = None

    def process(self, block: np.ndarray) -> DualMonoVerdict | None:
        """Count the chunks of ``block`` (shape ``(2, n)``); the verdict once it is reached."""
        buf = np.concatenate([self._pending, block], axis=1) if self._pending.shape[1] else block
        n = buf.shape[1] // CHUNK
        self._pending = buf[:, n * CHUNK :].copy()
        self._position += n * CHUNK
        if n:
            chunks = buf[:, : n * CHUNK].reshape(2, n, CHUNK).astype(np.float64)
            e = np.sum(chunks * chunks, axis=2)
            active = (e[0] > _EPS * CHUNK) & (e[1] > _EPS * CHUNK)
            r = np.sum(chunks[0] * chunks[1], axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                rho2 = np.where(active, r * r / np.maximum(e[0] * e[1], _EPS), 0.0)
                diff = np.abs(10 * np.log10((e[0] + _EPS) / (e[1] + _EPS)))
            match = active & (rho2 >= self.settings.dual_mono_coherence) & (diff <= self.settings.dual_mono_max_diff_db)
            self.active += int(active.sum())
            self.matched += int(match.sum())
        if self.verdict is None and self.active >= self._need:
            return self._decide()
        return None

    def finish(self) -> DualMonoVerdict:
        """The verdict, decided on what was seen if the stream ended before the window."""
        return self.verdict if self.verdict is not None else self._decide()

    def share_so_far(self) -> float:
        """Fraction of chunks with sound on both channels that matched, over the whole stream."""
        return self.matched / self.active if self.active else 0.0

    def _decide(self) -> DualMonoVerdict:
        share = self.share_so_far()
        dual = self.active > 0 and share >= self.settings.dual_mono_min_share
        self.verdict = DualMonoVerdict(dual, share, self.active, self._position / SAMPLE_RATE)
        logger.info("dual mono: %s (%.0f %% of %d chunks matched)", dual, 100 * share, self.active)
        return self.verdict
