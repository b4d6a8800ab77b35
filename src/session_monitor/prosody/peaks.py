"""Prominent peaks of a short series (syllable nuclei in an intensity contour).

:func:`prominent_peaks` follows the definitions of ``scipy.signal.find_peaks`` with
``height``, ``distance`` and ``prominence`` (checked against it in
``tests/test_peaks.py``) without importing scipy.signal, which costs about 55 MB
and is otherwise unused at run time. Meant for series of up to a few thousand
values (one speech segment at a 10 ms hop): plain loops, called once per segment.
"""

from __future__ import annotations

import numpy as np

__all__ = ["prominent_peaks"]


def _local_maxima(x: np.ndarray) -> list[int]:
    """Indices of local maxima; a flat top counts once, at its middle (rounded down)."""
    peaks: list[int] = []
    i, n = 1, len(x)
    while i < n - 1:
        if x[i - 1] < x[i]:
            ahead = i + 1
            while ahead < n - 1 and x[ahead] == x[i]:
                ahead += 1
            if x[ahead] < x[i]:
                peaks.append((i + ahead - 1) // 2)
                i = ahead
        i += 1
    return peaks


def _thin_by_distance(x: np.ndarray, peaks: list[int], distance: int) -> list[int]:
    """Keep the highest peaks first (the earlier of equal ones); drop any peak closer than
    ``distance`` to a kept one."""
    if distance <= 1 or len(peaks) < 2:
        return peaks
    keep = [True] * len(peaks)
    for i in np.argsort(-x[peaks], kind="stable"):
        if not keep[i]:
            continue
        j = i - 1
        while j >= 0 and peaks[i] - peaks[j] < distance:
            keep[j] = False
            j -= 1
        j = i + 1
        while j < len(peaks) and peaks[j] - peaks[i] < distance:
            keep[j] = False
            j += 1
    return [p for p, k in zip(peaks, keep) if k]


def _prominence(x: np.ndarray, peak: int) -> float:
    """Height above the higher of the two lowest points before a higher sample (or the edge)."""
    top = x[peak]
    left_min = top
    i = peak - 1
    while i >= 0 and x[i] <= top:
        left_min = min(left_min, x[i])
        i -= 1
    right_min = top
    i = peak + 1
    while i < len(x) and x[i] <= top:
        right_min = min(right_min, x[i])
        i += 1
    return float(top - max(left_min, right_min))


def prominent_peaks(x: np.ndarray, *, height: float, distance: int, prominence: float) -> np.ndarray:
    """Indices of peaks at least ``height`` high, ``distance`` apart and ``prominence`` prominent.

    Parameters
    ----------
    x : np.ndarray, shape ``(n,)``
    height : float
        Lowest value a peak may have.
    distance : int
        Smallest index distance between peaks (the higher peak wins).
    prominence : float
        Smallest prominence of a peak.

    Returns
    -------
    np.ndarray of int, ascending
    """
    x = np.asarray(x, dtype=np.float64)
    peaks = [p for p in _local_maxima(x) if x[p] >= height]
    peaks = _thin_by_distance(x, peaks, distance)
    return np.array([p for p in peaks if _prominence(x, p) >= prominence], dtype=int)
