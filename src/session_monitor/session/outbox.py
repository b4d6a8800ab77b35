"""The pipeline's ordered output: what its stages make, published in session-time order.

Every event, every analyzer tick (a block's end) and, on a ``--speed max`` replay, every
utterance's transcript slot is pushed with its session time; :meth:`Outbox.flush` publishes
them in that order on the bus, each to the analyzers as well (the rupture model), whose
derived events follow it at once. A slot whose transcript is not in yet stops the flush
there: what comes after it waits (see the pipeline's docstring).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from session_monitor.events import Event, Speech
from session_monitor.session.bus import EventBus
from session_monitor.session.stages import Analyzer, RunStats
from session_monitor.session.transcript_feed import TranscriptSlot

__all__ = ["TICK", "AnalyzerTick", "Outbox", "OutboxItem", "SlotResolver"]


@dataclass(frozen=True, slots=True)
class AnalyzerTick:
    """Outbox entry: the analyzers tick at this entry's time (a block end)."""


TICK = AnalyzerTick()
#: What the ordered output holds: an event, a tick of the analyzers, or a replay's transcript slot.
OutboxItem = Event | AnalyzerTick | TranscriptSlot
#: ``(slot, t, final) -> (ready, event or None)``: a slot's transcript once it may be published.
SlotResolver = Callable[[TranscriptSlot, float, bool], tuple[bool, Event | None]]


class Outbox:
    """Items pushed in any order, published by session time (ties: in the order pushed)."""

    def __init__(self, bus: EventBus, analyzers: Sequence[Analyzer], stats: RunStats) -> None:
        self.bus = bus
        self.analyzers = list(analyzers)
        self.stats = stats
        self._heap: list[tuple[float, int, OutboxItem]] = []
        self._seq = 0

    def push(self, t: float, item: OutboxItem) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, item))

    def flush(self, resolve: SlotResolver, *, final: bool) -> None:
        """Publish everything up to the first transcript slot that is not ready (all when ``final``)."""
        while self._heap:
            t, _seq, item = self._heap[0]
            if isinstance(item, TranscriptSlot):
                ready, event = resolve(item, t, final)
                if not ready:
                    return
                heapq.heappop(self._heap)
                if event is not None:
                    self.publish(event)
                continue
            heapq.heappop(self._heap)
            if isinstance(item, AnalyzerTick):
                for analyzer in self.analyzers:
                    self.publish_all(analyzer.tick(t))
            else:
                self.publish(item)

    def publish_all(self, events: Iterable[Event]) -> None:
        for event in events:
            self.publish(event)

    def publish(self, event: Event) -> None:
        """On the bus now, then to each analyzer; what they derive from it goes out right after."""
        self.stats.events += 1
        if isinstance(event, Speech):
            self.stats.speech_segments += 1
        self.bus.publish(event)
        for analyzer in self.analyzers:
            for derived in analyzer.on_event(event):
                self.stats.events += 1
                self.bus.publish(derived)
