"""Fundamental frequency by YIN, vectorised over frames, in numpy alone.

The YIN estimator (de Cheveigné & Kawahara 2002, "YIN, a fundamental frequency
estimator for speech and music") in the form ``librosa.yin`` (0.11) computes it
with ``center=False``, so the two agree (``tests/test_pitch.py`` checks it on tones
and real speech):

1. the difference function from the frame's autocorrelation ``r`` (by FFT):
   ``d(τ) = 2 (r(0) − r(τ)) − Σ_{m<τ} x_m²``;
2. the cumulative mean normalised difference ``d′(τ) = d(τ) / (Σ_{1..τ} d / τ)``,
   over periods ``[floor(sr/fmax), ceil(sr/fmin)]``;
3. the smallest period at a trough of ``d′`` below the threshold, or the global
   minimum when no trough is that deep;
4. parabolic interpolation of that trough (no shift where the parabola's optimum
   lies more than one lag away).

Doing it here avoids librosa's per-call checks and, above all, importing librosa,
numba and scipy in the audio path: about 220 MB of memory and 2.5 s of start-up
(benchmarks/RESULTS.md). The same autocorrelation gives the voicing measure the
prosody stage needs: ``r(T) / sqrt(E_head E_tail)`` at the integer period ``T``
over the first half of the frame.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["periodicity", "yin_frames"]

_EPS = 1e-10
_TINY = float(np.finfo(np.float32).tiny)


@lru_cache(maxsize=16)
def _fast_length(n: int) -> int:
    """The smallest 2^a 3^b 5^c >= n (sizes pocketfft transforms fastest)."""
    best = 1 << int(np.ceil(np.log2(n)))
    f5 = 1
    while f5 < best:
        f35 = f5
        while f35 < best:
            f = f35
            while f < n:
                f *= 2
            best = min(best, f)
            f35 *= 3
        f5 *= 5
    return best


def yin_frames(frames: np.ndarray, *, sr: int, fmin: float, fmax: float, threshold: float) -> np.ndarray:
    """F0 of each frame by YIN.

    Parameters
    ----------
    frames : np.ndarray, shape ``(n, frame_length)``, float32
        Analysis frames.
    sr : int
        Sample rate in Hz.
    fmin, fmax : float
        Search range in Hz.
    threshold : float
        Trough threshold on ``d′`` (YIN's absolute threshold).

    Returns
    -------
    np.ndarray, shape ``(n,)``
        Estimated F0 in Hz (never 0: tell unvoiced frames apart with :func:`periodicity`).
    """
    n, length = frames.shape
    min_period = int(np.floor(sr / fmax))
    max_period = min(int(np.ceil(sr / fmin)), length - 1)
    if n == 0:
        return np.zeros(0)
    nfft = _fast_length(length + max_period)  # long enough that lags <= max_period do not wrap
    spec = np.fft.rfft(frames, nfft, axis=1)
    acf = np.fft.irfft(spec.real**2 + spec.imag**2, nfft, axis=1)[:, : max_period + 1]
    head_power = np.cumsum(frames[:, :max_period] ** 2, axis=1)
    diff = 2.0 * (acf[:, :1] - acf[:, 1:]) - head_power  # d(τ), τ = 1..max_period
    mean = np.cumsum(diff, axis=1) / np.arange(1, max_period + 1)
    cmnd = diff[:, min_period - 1 :] / (mean[:, min_period - 1 :] + _TINY)  # d′, τ = min..max

    # troughs: below the left neighbour, not above the right one (the ends by one side)
    trough = np.zeros(cmnd.shape, dtype=bool)
    trough[:, 1:-1] = (cmnd[:, 1:-1] < cmnd[:, :-2]) & (cmnd[:, 1:-1] <= cmnd[:, 2:])
    trough[:, 0] = cmnd[:, 0] < cmnd[:, 1]
    trough[:, -1] = cmnd[:, -1] < cmnd[:, -2]
    deep = trough & (cmnd < threshold)
    idx = np.where(deep.any(axis=1), deep.argmax(axis=1), cmnd.argmin(axis=1))

    # parabolic interpolation around the trough (none at the range's ends)
    rows = np.arange(n)
    inner = (idx > 0) & (idx < cmnd.shape[1] - 1)
    lo, hi = np.maximum(idx - 1, 0), np.minimum(idx + 1, cmnd.shape[1] - 1)
    left, mid, right = cmnd[rows, lo], cmnd[rows, idx], cmnd[rows, hi]
    a = right + left - 2.0 * mid
    b = (right - left) / 2.0
    ok = inner & (np.abs(b) < np.abs(a))
    shift = np.where(ok, -b / np.where(ok, a, 1.0), 0.0)
    f0 = sr / (min_period + idx + shift)

    return f0


def periodicity(signal: np.ndarray, f0: np.ndarray, *, sr: int, hop: int, frame_length: int) -> np.ndarray:
    """Normalised autocorrelation of each frame at the period ``sr / f0``.

    Frame ``i`` is ``signal[i * hop : i * hop + frame_length]`` (the frames YIN got).
    Over the first half of the frame against the same length one period later, at
    the integer lag nearest the period: 1 for a perfectly periodic frame, about 0
    for noise. The energies come from one running sum over the signal instead of one
    per frame (the frames overlap), and nothing is copied frame by frame.

    Parameters
    ----------
    signal : np.ndarray, shape ``(>= (n - 1) * hop + frame_length,)``
    f0 : np.ndarray, shape ``(n,)``, Hz (> 0)
    sr, hop, frame_length : int

    Returns
    -------
    np.ndarray, shape ``(n,)``, in [-1, 1]
    """
    n = len(f0)
    if n == 0:
        return np.zeros(0)
    half = frame_length // 2
    period = np.clip(np.round(sr / f0).astype(np.intp), 1, frame_length - half)
    x = signal[: (n - 1) * hop + frame_length].astype(np.float64)
    power = np.empty(len(x) + 1)
    power[0] = 0.0
    np.cumsum(x * x, out=power[1:])
    starts = np.arange(n) * hop
    lagged = starts + period
    head = power[starts + half] - power[starts]
    tail = power[lagged + half] - power[lagged]
    windows = np.lib.stride_tricks.sliding_window_view(x, half)
    num = np.einsum("ij,ij->i", windows[starts], windows[lagged])
    return num / np.sqrt(head * tail + _EPS)
