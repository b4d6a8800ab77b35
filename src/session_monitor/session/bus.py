"""The in-process event bus: stages publish, sinks subscribe.

Delivery is synchronous and in publication order, on the publishing thread (the
pipeline thread), so every sink sees the same sequence. A sink that needs to do
slow work (a web server) hands events to its own bounded queue.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from session_monitor.errors import SessionMonitorError
from session_monitor.events import Event

__all__ = ["EventBus", "Subscriber"]

logger = logging.getLogger(__name__)

Subscriber = Callable[[Event], None]


class EventBus:
    """Fan-out of events to subscribers; a failing subscriber is logged and dropped."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)

    def publish(self, event: Event) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber(event)
            except SessionMonitorError:  # e.g. the event log cannot be written: fatal
                raise
            except Exception:  # one broken sink must not stop the session
                logger.exception("event sink %r failed; unsubscribing it", subscriber)
                self.unsubscribe(subscriber)

    def publish_all(self, events: Iterable[Event]) -> None:
        for event in events:
            self.publish(event)
