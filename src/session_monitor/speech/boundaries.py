"""Speech boundaries refined on 10 ms energy.

Silero scores 32 ms chunks, so a segment it finds starts and ends on a 32 ms grid.
:class:`EnergyHops` keeps the 10 ms energies (dBFS) of a channel's last few seconds
and moves a boundary to where the energy rose or fell, bridging stop closures (a dip of
up to 80 ms inside a word), so pause and gap lengths are good to about 10 ms.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from session_monitor.audio.frames import SAMPLE_RATE

__all__ = ["HOP", "EnergyHops"]

#: Energy hop, in samples (10 ms).
HOP = 160
#: Longest dip in energy (stop closure) bridged when refining a boundary, in hops.
MAX_DIP = 8
_EPS = 1e-10


class EnergyHops:
    """The 10 ms energies of the last ``history_s`` seconds of one channel.

    Parameters
    ----------
    history_s : float
        How much is kept (a bounded deque: older hops are dropped as new ones come);
        a boundary is refined at most ``refine_ms`` around a VAD decision made a chunk
        or two after it, so a few seconds are plenty.
    """

    def __init__(self, *, history_s: float = 5.0) -> None:
        self._db: deque[float] = deque(maxlen=int(history_s * SAMPLE_RATE / HOP))
        self._start = 0  # sample index of _db[0]
        self._rest = np.zeros(0, dtype=np.float32)

    def add(self, samples: np.ndarray, start: int) -> None:
        """Append the 10 ms energies of ``samples`` (shape ``(n,)``, which start at sample ``start``)."""
        if len(self._rest):
            samples = np.concatenate([self._rest, samples])
        elif not self._db:
            self._start = start
        n = len(samples) // HOP
        self._rest = samples[n * HOP :].copy()
        energies = 10 * np.log10(np.mean(samples[: n * HOP].reshape(n, HOP).astype(np.float64) ** 2, axis=1) + _EPS)
        overflow = len(self._db) + n - self._db.maxlen
        if overflow > 0:
            self._start += overflow * HOP
        self._db.extend(energies.tolist())

    def db(self, index: int) -> float | None:
        """Energy of hop ``index`` (counted from the stream's start) in dBFS; None if not kept."""
        k = index - self._start // HOP
        return self._db[k] if 0 <= k < len(self._db) else None

    def refine_start(self, start: int, *, threshold_db: float, span_hops: int) -> int:
        """Move an onset at sample ``start`` back to where the energy rose above ``threshold_db``
        (within ``span_hops``, across dips up to :data:`MAX_DIP` hops), or forward to the first
        hop above it when nothing before is."""
        k0 = start // HOP
        if span_hops == 0 or self.db(k0) is None:
            return start
        first = None  # earliest energetic hop connected to the onset by short dips
        dip = 0
        for k in range(k0, k0 - span_hops - 1, -1):
            level = self.db(k)
            if level is None:
                break
            if level >= threshold_db:
                first, dip = k, 0
            else:
                dip += 1
                if first is not None and dip > MAX_DIP:
                    break
        if first is not None:
            return first * HOP
        for k in range(k0 + 1, k0 + span_hops + 1):  # nothing energetic before: walk forward
            level = self.db(k)
            if level is None or level >= threshold_db:
                return k * HOP
        return start

    def refine_end(self, end: int, *, threshold_db: float, span_hops: int) -> int:
        """Move an offset at sample ``end`` forward to where the energy fell below ``threshold_db``
        (within ``span_hops``, across dips up to :data:`MAX_DIP` hops), or back to the last hop
        above it when the offset is silent already."""
        k0 = end // HOP
        if span_hops == 0 or self.db(k0) is None:
            return end
        last = None  # latest energetic hop at or after the offset, connected by short dips
        dip = 0
        for k in range(k0, k0 + span_hops + 1):
            level = self.db(k)
            if level is None:
                break
            if level >= threshold_db:
                last, dip = k, 0
            else:
                dip += 1
                if dip > MAX_DIP:
                    break
        if last is not None:
            return (last + 1) * HOP
        for k in range(k0 - 1, k0 - span_hops - 1, -1):  # silent already: back to the last energy
            level = self.db(k)
            if level is None:
                break
            if level >= threshold_db:
                return (k + 1) * HOP
        return end
