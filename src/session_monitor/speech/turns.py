"""Turn-taking across speakers: response gaps, overlaps, talk-time share.

Fed the ``speech_onset`` and ``speech`` events of every channel in session-time
order. A *gap* is the silence between the end of one speaker's speech and the start
of another's, with nobody talking in between: the response latency of the second
(conversation analysis: ~200 ms is typical; 600–1000 ms and beyond marks a
dispreferred or troubled response; Stivers et al. 2009, Roberts et al. 2006). An
*overlap* is one speaker starting while the other is still talking.

A segment's end is only known ``min_pause_ms`` after it happened, so an onset is
classified once every other speaker's state at that moment is known.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from session_monitor.events import Event, Gap, Overlap, Speech, SpeechOnset, TalkShare
from session_monitor.talk_time import TalkTime

__all__ = ["TurnTracker"]


@dataclass
class _Open:
    start: float


class TurnTracker:
    """Gaps and overlaps between speakers, and each speaker's talk share.

    Parameters
    ----------
    talk_window_s : float
        Sliding window for talk-time share, seconds.
    share_every_s : float
        How often a ``talk_share`` event is emitted, seconds of session time.
    """

    def __init__(self, *, talk_window_s: float = 120.0, share_every_s: float = 1.0) -> None:
        self.talk_window_s = talk_window_s
        self.share_every_s = share_every_s
        self._open: dict[str, _Open] = {}  # speaker -> open segment
        self._last: tuple[str, float] | None = None  # (speaker, end) of the latest finished speech
        self._pending: list[tuple[SpeechOnset, set[str]]] = []  # onsets waiting for others' ends
        self._overlaps: list[tuple[str, str, float]] = []  # (speaker, over_speaker, start)
        self._talk = TalkTime()
        self._next_share = share_every_s
        self._lost: deque[tuple[float, float]] = deque(maxlen=64)  # capture lost: no gaps across these

    def audio_lost(self, start: float, end: float) -> None:
        """Audio was lost over ``[start, end]``: a silence spanning it is not a response gap."""
        self._lost.append((start, end))

    def on_event(self, event: Event) -> list[Event]:
        if isinstance(event, SpeechOnset):
            return self._onset(event)
        if isinstance(event, Speech):
            return self._speech(event)
        return []

    def _onset(self, onset: SpeechOnset) -> list[Event]:
        others = {s for s in self._open if s != onset.speaker}
        self._open[onset.speaker] = _Open(onset.start)
        if others:
            self._pending.append((onset, others))
            return []
        return self._classify(onset, overlapped_by=None)

    def _classify(self, onset: SpeechOnset, overlapped_by: str | None) -> list[Event]:
        if overlapped_by is not None:
            self._overlaps.append((onset.speaker, overlapped_by, onset.start))
            return []
        if self._last is None or self._last[0] == onset.speaker:
            return []
        prev, end = self._last
        if end > onset.start or any(a < onset.start and b > end for a, b in self._lost):
            return []
        return [Gap(t=onset.t, from_speaker=prev, to_speaker=onset.speaker, start=end, end=onset.start,
                    duration_s=onset.start - end)]

    def _speech(self, seg: Speech) -> list[Event]:
        out: list[Event] = []
        self._open.pop(seg.speaker, None)
        self._talk.add(seg.speaker, seg.start, seg.end)
        if self._last is None or seg.end >= self._last[1]:
            self._last = (seg.speaker, seg.end)
        # onsets that waited for this speaker's end
        waiting: list[tuple[SpeechOnset, set[str]]] = []
        for onset, others in self._pending:
            if seg.speaker in others and onset.speaker != seg.speaker:
                if seg.end > onset.start:  # was still talking when the other came in
                    out.extend(self._classify(onset, overlapped_by=seg.speaker))
                    continue
                others.discard(seg.speaker)
            if others:
                waiting.append((onset, others))
            else:
                out.extend(self._classify(onset, overlapped_by=None))
        self._pending = waiting
        # overlaps end when either party stops
        still: list[tuple[str, str, float]] = []
        for speaker, over, start in self._overlaps:
            if seg.speaker in (speaker, over):
                end = max(seg.end, start)
                out.append(Overlap(t=seg.t, speaker=speaker, over_speaker=over, start=start, end=end,
                                   duration_s=end - start, yielded=seg.speaker == over))
            else:
                still.append((speaker, over, start))
        self._overlaps = still
        return out

    def tick(self, t: float) -> list[Event]:
        """Emit ``talk_share`` every ``share_every_s`` of session time."""
        if t < self._next_share:
            return []
        self._next_share = t + self.share_every_s
        lo = t - self.talk_window_s
        for _ in self._talk.evict_before(lo):
            pass
        totals = self._talk.in_window(lo, t)
        for speaker, seg in self._open.items():
            totals[speaker] = totals.get(speaker, 0.0) + max(0.0, t - max(seg.start, lo))
        total = sum(totals.values())
        if total <= 0:
            return []
        shares = {s: v / total for s, v in sorted(totals.items())}
        return [TalkShare(t=t, window_s=self.talk_window_s, shares=shares)]
