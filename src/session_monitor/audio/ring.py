"""A bounded ring of recent samples of one channel, addressed by session sample index."""

from __future__ import annotations

import numpy as np

__all__ = ["AudioRing"]


class AudioRing:
    """The last ``capacity`` samples; older ones are overwritten (bounded memory)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._buf = np.zeros(capacity, dtype=np.float32)
        self.end = 0  # session sample index one past the newest sample

    def append(self, samples: np.ndarray) -> None:
        n = len(samples)
        if n >= self.capacity:
            self._buf[:] = samples[-self.capacity :]
        else:
            i = self.end % self.capacity
            first = min(n, self.capacity - i)
            self._buf[i : i + first] = samples[:first]
            self._buf[: n - first] = samples[first:]
        self.end += n

    def get(self, start: int, end: int) -> np.ndarray:
        """Samples ``[start, end)``, clipped to what is still held."""
        start = max(start, self.end - self.capacity, 0)
        end = min(end, self.end)
        if end <= start:
            return np.zeros(0, dtype=np.float32)
        idx = np.arange(start, end) % self.capacity
        return self._buf[idx]
