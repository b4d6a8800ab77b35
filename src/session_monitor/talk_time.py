"""Who talked how long: per-speaker talk seconds over a sliding window of speech segments.

Turn-taking (:mod:`session_monitor.speech.turns`, the ``talk_share`` events) and the
patient evidence (a collapse of the patient's share against its own usual) both count
talk time here, so the two cannot disagree on what a speaker's share was.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator

__all__ = ["TalkTime"]


class TalkTime:
    """Closed speech segments ``(speaker, start_s, end_s)``, oldest first, kept until evicted."""

    def __init__(self) -> None:
        self._segments: deque[tuple[str, float, float]] = deque()

    def add(self, speaker: str, start_s: float, end_s: float) -> None:
        self._segments.append((speaker, start_s, end_s))

    def evict_before(self, lo_s: float) -> Iterator[tuple[str, float, float]]:
        """Drop (and yield) the segments at the front that ended before ``lo_s``."""
        while self._segments and self._segments[0][2] < lo_s:
            yield self._segments.popleft()

    def in_window(self, lo_s: float, t_s: float, *, speakers: Iterable[str] = ()) -> dict[str, float]:
        """Talk seconds per speaker of the kept segments, clipped to ``[lo_s, t_s]``.

        ``speakers`` listed start at 0 and are the only ones counted; with none listed,
        every speaker with a kept segment is.
        """
        totals = {s: 0.0 for s in speakers}
        only = bool(totals)
        for speaker, start, end in self._segments:
            if only and speaker not in totals:
                continue
            totals[speaker] = totals.get(speaker, 0.0) + max(0.0, min(end, t_s) - max(start, lo_s))
        return totals

    def lengths(self, speaker: str, lo_s: float) -> list[float]:
        """Whole lengths (seconds) of ``speaker``'s kept segments that end at or after ``lo_s``."""
        return [end - start for s, start, end in self._segments if s == speaker and end >= lo_s]
