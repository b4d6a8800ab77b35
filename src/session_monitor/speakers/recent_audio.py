"""The last seconds of a mono signal, with a 10 ms level track, for the attribution's chunks."""

from __future__ import annotations

import numpy as np

__all__ = ["HOP", "RecentAudio"]

HOP = 160  # 10 ms at 16 kHz: the level track's step


class RecentAudio:
    """A ring of the last ``keep_s`` seconds of samples (session sample numbers).

    Parameters
    ----------
    keep_s : float
        Seconds kept, s (chunks are always asked for within a few seconds of the present).
    sample_rate : int
        Hz.
    """

    def __init__(self, *, keep_s: float = 30.0, sample_rate: int = 16_000) -> None:
        self._buf = np.zeros(int(keep_s * sample_rate) // HOP * HOP, dtype=np.float32)
        self._end = 0  # session sample number one past the newest sample

    def add(self, samples: np.ndarray) -> None:
        x = np.asarray(samples, dtype=np.float32)[-len(self._buf):]
        n, size = len(x), len(self._buf)
        i = self._end % size
        first = min(n, size - i)
        self._buf[i : i + first] = x[:first]
        self._buf[: n - first] = x[first:]
        self._end += len(samples)

    def kept_from(self) -> int:
        """The oldest sample still kept."""
        return max(0, self._end - len(self._buf))

    def available_until(self) -> int:
        """One past the newest sample."""
        return self._end

    def get(self, start: int, end: int) -> np.ndarray:
        """Samples ``[start, end)`` (session numbers; must be within the kept seconds)."""
        size = len(self._buf)
        if start < self._end - size or end > self._end or end < start:
            raise ValueError(f"samples {start}..{end} are not kept (have {self._end - size}..{self._end})")
        idx = np.arange(start, end) % size
        return self._buf[idx]

    def level_db(self, start: int, end: int) -> np.ndarray:
        """dBFS of each whole 10 ms step of ``[start, end)``."""
        x = self.get(start, start + (end - start) // HOP * HOP).astype(np.float64)
        return 10 * np.log10(np.mean(x.reshape(-1, HOP) ** 2, axis=1) + 1e-12)
