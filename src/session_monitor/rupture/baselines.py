"""Per-speaker running baselines: each cue is judged against that speaker's own usual.

A bounded window of recent values with a robust centre (the median), so a few odd
turns do not move it and a long change slowly becomes the new usual. Bounded: the
window keeps the last ``n`` values; older ones are dropped.
"""

from __future__ import annotations

import math
import statistics
from collections import deque

__all__ = ["RunningMedian", "VoiceBaseline"]


class RunningMedian:
    """Median of the last ``n`` values; ``ready`` once ``min_n`` values are in.

    Parameters
    ----------
    n : window length (values)
    min_n : values needed before :attr:`value` is reported
    """

    def __init__(self, n: int, *, min_n: int = 1) -> None:
        self._values: deque[float] = deque(maxlen=max(1, n))
        self.min_n = max(1, min_n)

    def add(self, value: float | None) -> None:
        if value is not None and not math.isnan(value):  # skip None and NaN
            self._values.append(float(value))

    @property
    def ready(self) -> bool:
        return len(self._values) >= self.min_n

    @property
    def value(self) -> float | None:
        """The median, or None while fewer than ``min_n`` values are in."""
        if not self.ready:
            return None
        return statistics.median(self._values)

    def __len__(self) -> int:
        return len(self._values)


class VoiceBaseline:
    """A speaker's usual level (dB) and pitch (Hz), each a winsorized running median.

    A value beyond ``clamp_db`` / ``clamp_st`` of the current usual enters clamped,
    so an episode of quiet or loud speech moves the baseline only slowly, while a
    lasting change still becomes the new usual. How far the level usually strays from
    the usual (before the clamp) is kept too, over ordinary values only (:attr:`spread_db`):
    a level beyond :meth:`thresholds` (quieter or louder than usual) stays out of it, so an
    episode of quiet or loud replies does not widen what counts as usual.

    ``drop_db`` / ``rise_db`` are the fixed dB that count as quieter / louder, and
    ``spread_factor`` how many spreads count as well (0: the fixed dB alone).
    """

    def __init__(self, n: int, *, min_n: int, clamp_db: float, clamp_st: float, drop_db: float = math.inf,
                 rise_db: float = math.inf, spread_factor: float = 0.0) -> None:
        self.level_db = RunningMedian(n, min_n=min_n)
        self.f0_hz = RunningMedian(n, min_n=min_n)
        self._deviation_db = RunningMedian(n, min_n=min_n)
        self.clamp_db = clamp_db
        self.clamp_st = clamp_st
        self.drop_db, self.rise_db, self.spread_factor = drop_db, rise_db, spread_factor

    @property
    def ready(self) -> bool:
        return self.level_db.ready

    def add(self, level_db: float | None, f0_hz: float | None) -> None:
        usual_db, usual_f0 = self.level_db.value, self.f0_hz.value
        if level_db is not None and usual_db is not None:
            drop_db, rise_db = self.thresholds()
            if -drop_db < level_db - usual_db < rise_db:  # ordinary: it joins the spread
                self._deviation_db.add(abs(level_db - usual_db))
            level_db = min(max(level_db, usual_db - self.clamp_db), usual_db + self.clamp_db)
        if f0_hz is not None and usual_f0 is not None:
            ratio = 2.0 ** (self.clamp_st / 12.0)
            f0_hz = min(max(f0_hz, usual_f0 / ratio), usual_f0 * ratio)
        self.level_db.add(level_db)
        self.f0_hz.add(f0_hz)

    @property
    def spread_db(self) -> float:
        """The speaker's usual spread of level (dB): the median distance of ordinary values from
        the usual, scaled to a standard deviation (x 1.4826); 0 before ``min_n`` are in."""
        mad = self._deviation_db.value
        return 1.4826 * mad if mad is not None else 0.0

    def thresholds(self) -> tuple[float, float]:
        """(dB quieter, dB louder) than usual that count: the fixed ones, and beyond
        ``spread_factor`` times this speaker's spread."""
        usual = self.spread_factor * self.spread_db
        return max(self.drop_db, usual), max(self.rise_db, usual)

    def compare(self, level_db: float, f0_hz: float | None) -> tuple[float, float] | None:
        """(dB above usual, semitones above usual; 0 when pitch unknown), None before ready."""
        usual_db, usual_f0 = self.level_db.value, self.f0_hz.value
        if usual_db is None:
            return None
        st = 12.0 * math.log2(f0_hz / usual_f0) if f0_hz and usual_f0 else 0.0
        return level_db - usual_db, st
