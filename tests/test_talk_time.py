"""Talk time over a sliding window, against hand-computed seconds."""

from __future__ import annotations

import pytest

from session_monitor.talk_time import TalkTime


def test_talk_seconds_are_clipped_to_the_window():
    talk = TalkTime()
    talk.add("therapist", 0.0, 4.0)
    talk.add("patient", 5.0, 9.0)
    assert talk.in_window(2.0, 8.0) == pytest.approx({"therapist": 2.0, "patient": 3.0})


def test_listed_speakers_start_at_zero_and_are_the_only_ones_counted():
    talk = TalkTime()
    talk.add("unknown", 0.0, 4.0)
    assert talk.in_window(0.0, 10.0, speakers=("patient", "therapist")) == {"patient": 0.0, "therapist": 0.0}


def test_eviction_drops_and_returns_what_ended_before_the_window():
    talk = TalkTime()
    talk.add("therapist", 0.0, 4.0)
    talk.add("patient", 5.0, 9.0)
    assert list(talk.evict_before(4.5)) == [("therapist", 0.0, 4.0)]
    assert talk.in_window(0.0, 10.0) == pytest.approx({"patient": 4.0})
