"""The event bus: ordered fan-out; a broken sink is dropped, a session error stays fatal."""

from __future__ import annotations

import logging

import pytest

from session_monitor.errors import SessionDirError
from session_monitor.events import Alert, Gap
from session_monitor.session.bus import EventBus

EVENTS = [Gap(t=1.0, from_speaker="therapist", to_speaker="patient", start=0.5, end=1.0, duration_s=0.5),
          Alert(t=2.0, state="on", kind="withdrawal")]


def test_every_subscriber_sees_every_event_in_order():
    bus, a, b = EventBus(), [], []
    bus.subscribe(a.append)
    bus.subscribe(b.append)
    bus.publish_all(EVENTS)
    assert a == b == EVENTS


def test_a_broken_sink_is_logged_dropped_and_the_others_go_on(caplog):
    bus, seen = EventBus(), []

    def broken(event):
        raise ValueError("sink bug")

    bus.subscribe(broken)
    bus.subscribe(seen.append)
    with caplog.at_level(logging.ERROR, logger="session_monitor.session.bus"):
        bus.publish_all(EVENTS)
    assert seen == EVENTS
    assert sum("unsubscribing" in r.message for r in caplog.records) == 1  # dropped after its first failure


def test_a_session_error_in_a_sink_stops_the_session():
    bus = EventBus()

    def disk_full(event):
        raise SessionDirError("events.jsonl: cannot be written (No space left on device)")

    bus.subscribe(disk_full)
    with pytest.raises(SessionDirError, match="No space left"):
        bus.publish(EVENTS[0])
