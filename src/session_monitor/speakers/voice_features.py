"""Voice features for speaker attribution: streaming MFCCs and per-speaker Gaussians.

A speaker is modelled as one full-covariance Gaussian over 10 ms MFCC frames
(coefficients 1..19 of 40 log-mel bands, 25 ms Hamming window; c0, the level, is
left out so loudness does not decide who speaks). A stretch of speech is scored by
its mean per-frame log-likelihood under each speaker's Gaussian: the classic
"Gaussian speaker model" of text-independent speaker recognition (Reynolds & Rose
1995, with one component; Gish & Schmidt 1994 for the likelihood ratio).

On the project's test audio this beat segment-level MFCC mean/std (and pitch)
statistics clearly (docs/attribution.md): 1 s of speech is enough to tell two
voices apart once both have a model.

Everything here is numpy on float64; no state is shared between instances.
"""

from __future__ import annotations

import numpy as np

from session_monitor.audio.frames import SAMPLE_RATE

__all__ = ["HOP", "N_COEFFS", "GaussianStats", "MfccStream", "mel_filterbank", "mfcc", "speech_frames"]

#: Frame hop and window in samples (10 ms, 25 ms at 16 kHz).
HOP = 160
WIN = 400
N_FFT = 512
N_MELS = 40
FMAX = 4000.0
#: MFCC coefficients kept: c1..c19.
N_COEFFS = 19
_EPS = 1e-10

_MEL: np.ndarray | None = None
_WINDOW = np.hamming(WIN)
#: Frames per matrix product: OpenBLAS runs products of 64 or more of these rows on several
#: threads, which on two cores only takes a core from Whisper (measured: twice the CPU time
#: for the same wall time).
_ROWS = 48
_DCT: np.ndarray | None = None


def warm_up() -> None:
    """Build the filterbank and DCT tables now, not in the audio path."""
    _tables()


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (Auditory Toolbox): linear to 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3)
    return np.where(hz >= 1000.0, 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27), linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27) * (mel - 15.0)), mel * (200.0 / 3))


def mel_filterbank(*, sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """Triangular mel filters, area-normalised (Slaney), shape ``(n_mels, n_fft // 2 + 1)``.

    The filterbank ``librosa.filters.mel`` builds by default (``htk=False``,
    ``norm="slaney"``); ``tests/test_attribution.py`` checks they match.
    """
    freqs = np.linspace(0.0, sr / 2, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    width = np.diff(edges)
    rising = (freqs[None, :] - edges[:-2, None]) / width[:-1, None]
    falling = (edges[2:, None] - freqs[None, :]) / width[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]


def _tables() -> tuple[np.ndarray, np.ndarray]:
    """Mel filterbank ``(n_mels, n_fft//2+1)`` and DCT-II rows ``(n_coeffs, n_mels)``, built once."""
    global _MEL, _DCT
    if _MEL is None or _DCT is None:
        _MEL = mel_filterbank(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=60.0, fmax=FMAX)
        k = np.arange(N_MELS)
        rows = np.arange(1, N_COEFFS + 1)
        _DCT = np.sqrt(2.0 / N_MELS) * np.cos(np.pi / N_MELS * (k[None, :] + 0.5) * rows[:, None])
    return _MEL, _DCT


def mfcc(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MFCCs and levels of every whole 25 ms frame at a 10 ms hop.

    Parameters
    ----------
    samples : np.ndarray, shape ``(n,)``, float, 16 kHz

    Returns
    -------
    coeffs : np.ndarray, shape ``(frames, 19)``
        c1..c19 of the log-mel spectrum.
    level_db : np.ndarray, shape ``(frames,)``
        RMS level of each frame in dBFS.
    """
    n = 1 + (len(samples) - WIN) // HOP if len(samples) >= WIN else 0
    if n <= 0:
        return np.zeros((0, N_COEFFS)), np.zeros(0)
    mel, dct = _tables()
    frames = np.lib.stride_tricks.sliding_window_view(np.asarray(samples, dtype=np.float64), WIN)[::HOP][:n]
    frames = frames - frames.mean(axis=1, keepdims=True)
    level_db = 10.0 * np.log10(np.mean(frames * frames, axis=1) + _EPS)
    power = np.abs(np.fft.rfft(frames * _WINDOW, N_FFT)) ** 2
    coeffs = np.empty((n, N_COEFFS))
    for i in range(0, n, _ROWS):
        coeffs[i : i + _ROWS] = np.log(power[i : i + _ROWS] @ mel.T + 1e-8) @ dct.T
    return coeffs, level_db


def speech_frames(coeffs: np.ndarray, level_db: np.ndarray, *, floor_db: float, range_db: float = 30.0) -> np.ndarray:
    """The frames of a stretch loud enough to carry the voice.

    Keeps frames at or above ``floor_db`` and within ``range_db`` of the stretch's
    95th-percentile level (pauses and breath inside a segment say little about who
    speaks). Returns ``coeffs`` rows, shape ``(kept, 19)``.
    """
    if len(level_db) == 0:
        return coeffs[:0]
    top = float(np.percentile(level_db, 95))
    keep = (level_db >= floor_db) & (level_db >= top - range_db)
    return coeffs[keep]


class MfccStream:
    """MFCCs of a continuous signal fed in blocks, for the last ``keep_s`` seconds.

    Frame ``i`` covers samples ``[i * 160, i * 160 + 400)`` of the stream. The audio is
    kept and a frame's MFCCs are computed the first time :meth:`get` asks for it, so
    silence that no speech segment covers costs nothing (each frame is computed alone,
    so the values are those of the whole signal's :func:`mfcc`).

    Parameters
    ----------
    keep_s : float
        History kept, seconds (bounded: older frames are dropped).
    """

    def __init__(self, *, keep_s: float = 30.0) -> None:
        self.capacity = int(keep_s * SAMPLE_RATE / HOP)
        self._coeffs = np.zeros((self.capacity, N_COEFFS))
        self._db = np.full(self.capacity, -120.0)
        self._have = np.zeros(self.capacity, dtype=bool)  # frame slot computed
        self._audio = np.zeros(self.capacity * HOP + WIN)  # ring of samples, by sample index
        self._first = 0  # index of the oldest kept frame
        self.frames = 0  # whole frames available so far
        self.samples = 0  # samples received so far

    def add(self, samples: np.ndarray) -> None:
        x = np.asarray(samples, dtype=np.float64)[-len(self._audio) :]
        size = len(self._audio)
        start = (self.samples + len(samples) - len(x)) % size
        first = min(len(x), size - start)
        self._audio[start : start + first] = x[:first]
        self._audio[: len(x) - first] = x[first:]
        self.samples += len(samples)
        n = 1 + (self.samples - WIN) // HOP if self.samples >= WIN else 0
        new = np.arange(max(self.frames, n - self.capacity), n) % self.capacity
        self._have[new] = False  # these slots now hold newer frames, not computed yet
        self.frames = n
        self._first = max(self._first, self.frames - self.capacity)

    def get(self, start_sample: int, end_sample: int) -> tuple[np.ndarray, np.ndarray]:
        """Frames whose window centre lies in ``[start_sample, end_sample)`` and are still kept."""
        centre = WIN // 2
        i0 = max(self._first, int(np.ceil((start_sample - centre) / HOP)), 0)
        i1 = min(self.frames, int(np.ceil((end_sample - centre) / HOP)))
        if i1 <= i0:
            return np.zeros((0, N_COEFFS)), np.zeros(0)
        idx = np.arange(i0, i1) % self.capacity
        missing = np.flatnonzero(~self._have[idx])
        if len(missing):
            j0, j1 = i0 + int(missing[0]), i0 + int(missing[-1]) + 1
            pos = (j0 * HOP + np.arange((j1 - j0 - 1) * HOP + WIN)) % len(self._audio)
            coeffs, db = mfcc(self._audio[pos])
            slots = np.arange(j0, j1) % self.capacity
            self._coeffs[slots], self._db[slots], self._have[slots] = coeffs, db, True
        return self._coeffs[idx], self._db[idx]

    def available_until(self) -> int:
        """Sample up to which frame centres are available."""
        return self.frames * HOP + WIN // 2 - HOP


class GaussianStats:
    """Sufficient statistics (count, sum, sum of outer products) of feature frames.

    ``model()`` gives a Gaussian whose mean and covariance are MAP-shrunk towards a
    prior (the pooled speech of the session, or nothing), so that a speaker heard
    for only a second still has a usable full covariance.
    """

    __slots__ = ("n", "s1", "s2")

    def __init__(self, dim: int = N_COEFFS) -> None:
        self.n = 0.0
        self.s1 = np.zeros(dim)
        self.s2 = np.zeros((dim, dim))

    @classmethod
    def of(cls, x: np.ndarray, weight: float = 1.0) -> GaussianStats:
        st = cls(x.shape[1])
        st.n = weight * len(x)
        st.s1 = weight * x.sum(axis=0)
        st.s2 = weight * (x.T @ x)
        return st

    def copy(self) -> GaussianStats:
        st = GaussianStats(len(self.s1))
        st.n, st.s1, st.s2 = self.n, self.s1.copy(), self.s2.copy()
        return st

    def add(self, other: GaussianStats, weight: float = 1.0) -> None:
        self.n += weight * other.n
        self.s1 = self.s1 + weight * other.s1
        self.s2 = self.s2 + weight * other.s2

    def mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        mu = self.s1 / max(self.n, _EPS)
        cov = self.s2 / max(self.n, _EPS) - np.outer(mu, mu)
        return mu, cov

    def model(self, prior: GaussianModel | None = None, *, relevance: float = 50.0) -> GaussianModel:
        """Gaussian of these frames, shrunk towards ``prior`` with ``relevance`` frames of weight."""
        if self.n <= 0:
            if prior is None:
                raise ValueError("no frames and no prior")
            return prior
        mu, cov = self.mean_cov()
        if prior is not None:
            a = self.n / (self.n + relevance)
            diff = mu - prior.mean
            mu_new = a * mu + (1 - a) * prior.mean
            cov = a * cov + (1 - a) * prior.cov + a * (1 - a) * np.outer(diff, diff)
            mu = mu_new
        return GaussianModel(mu, cov)


class GaussianModel:
    """A full-covariance Gaussian, factorized once for fast scoring."""

    __slots__ = ("_logdet", "_whiten", "cov", "mean")

    def __init__(self, mean: np.ndarray, cov: np.ndarray) -> None:
        d = len(mean)
        cov = 0.5 * (cov + cov.T) + 1e-3 * np.eye(d)
        self.mean = mean
        self.cov = cov
        chol = np.linalg.cholesky(cov)
        self._whiten = np.linalg.inv(chol)  # (x - mean) @ whiten.T has identity covariance
        self._logdet = 2.0 * float(np.sum(np.log(np.diag(chol))))

    def log_likelihood(self, x: np.ndarray) -> np.ndarray:
        """Per-frame log density, shape ``(frames,)``, of ``x`` with shape ``(frames, dim)``."""
        z = (x - self.mean) @ self._whiten.T
        return -0.5 * (np.sum(z * z, axis=1) + self._logdet + len(self.mean) * np.log(2 * np.pi))

    def mean_log_likelihood(self, n: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> np.ndarray:
        """Mean per-frame log density of sets of frames given only by their statistics: counts
        ``(k,)``, sums ``(k, dim)``, sums of outer products ``(k, dim, dim)`` -> ``(k,)``; exact."""
        mu = s1 / n[:, None]
        cov = s2 / n[:, None, None] - mu[:, :, None] * mu[:, None, :]
        prec = self._whiten.T @ self._whiten
        diff = mu - self.mean
        trace = np.einsum("jk,ijk->i", prec, cov)
        maha = np.einsum("ij,jk,ik->i", diff, prec, diff)
        return -0.5 * (trace + maha + self._logdet + len(self.mean) * np.log(2 * np.pi))
