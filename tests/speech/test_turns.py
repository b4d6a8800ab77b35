"""Turn-taking across speakers: response gaps, overlaps and talk share against known truth."""

from __future__ import annotations

import pytest

from session_monitor.audio.frames import Frame
from session_monitor.events import Gap, Overlap, Speech, SpeechOnset
from session_monitor.settings import load_settings
from session_monitor.speech.activity import SpeechActivity, UtteranceReady
from session_monitor.speech.turns import TurnTracker
from support.audio import SR, espeak, place

TOLERANCE_S = 0.030  # the bound on a boundary error of speech activity


def test_gap_between_two_channels_has_speakers_and_length():
    question = espeak("how are you feeling today", voice="en-us+f3")
    answer = espeak("not great to be honest", voice="en-us+m3")
    t_q, latency = 0.6, 2.35
    t_a = t_q + len(question) / SR + latency
    total = t_a + len(answer) / SR + 1.0
    left = place(total, [(t_q, question)], seed=1)
    right = place(total, [(t_a, answer)], seed=2)
    vads = [SpeechActivity(load_settings().speech_activity, channel=c, speaker=r)
            for c, r in enumerate(("therapist", "patient"))]
    turns = TurnTracker()
    events = []
    for start in range(0, len(left), 1536):
        block = []
        for vad, sig in zip(vads, (left, right)):
            block += vad.process(Frame(start, vad.channel, sig[start : start + 1536]))
        for ev in sorted((e for e in block if not isinstance(e, UtteranceReady)), key=lambda e: e.t):
            events.append(ev)
            events += turns.on_event(ev)
    gaps = [e for e in events if isinstance(e, Gap)]
    assert len(gaps) == 1
    gap = gaps[0]
    assert (gap.from_speaker, gap.to_speaker) == ("therapist", "patient")
    assert gap.duration_s == pytest.approx(latency, abs=TOLERANCE_S)
    assert gap.t < t_a + 0.3  # known within 300 ms of the answer's onset, not at its end


def test_overlap_onto_the_other_speaker_is_reported():
    turns = TurnTracker()
    seq = [
        SpeechOnset(t=1.1, speaker="therapist", start=1.0),
        SpeechOnset(t=2.6, speaker="patient", start=2.5),
        Speech(t=3.2, speaker="therapist", start=1.0, end=3.0),
        Speech(t=5.2, speaker="patient", start=2.5, end=5.0),
    ]
    out = [o for ev in seq for o in turns.on_event(ev)]
    overlaps = [e for e in out if isinstance(e, Overlap)]
    assert len(overlaps) == 1
    o = overlaps[0]
    assert (o.speaker, o.over_speaker, o.yielded) == ("patient", "therapist", True)
    assert o.duration_s == pytest.approx(0.5)
    assert not [e for e in out if isinstance(e, Gap)]


def test_gap_waits_for_the_previous_speakers_end():
    """The answer's onset is confirmed before the question's end is: still a gap, not an overlap."""
    turns = TurnTracker()
    seq = [
        SpeechOnset(t=1.1, speaker="therapist", start=1.0),
        SpeechOnset(t=3.25, speaker="patient", start=3.15),
        Speech(t=3.3, speaker="therapist", start=1.0, end=3.0),
    ]
    out = [o for ev in seq for o in turns.on_event(ev)]
    assert [type(e) for e in out] == [Gap]
    assert out[0].duration_s == pytest.approx(0.15)


def test_talk_share_over_the_window():
    turns = TurnTracker(talk_window_s=10.0, share_every_s=1.0)
    turns.on_event(Speech(t=3.2, speaker="therapist", start=0.0, end=3.0))
    turns.on_event(Speech(t=5.2, speaker="patient", start=4.0, end=5.0))
    share = turns.tick(6.0)[0]
    assert share.shares == pytest.approx({"patient": 0.25, "therapist": 0.75})


def test_talk_share_counts_an_open_segment_up_to_now():
    turns = TurnTracker(talk_window_s=10.0, share_every_s=1.0)
    turns.on_event(Speech(t=3.2, speaker="therapist", start=0.0, end=3.0))
    turns.on_event(SpeechOnset(t=4.1, speaker="patient", start=4.0))
    share = turns.tick(7.0)[0]  # the patient has been talking for 3 s and has not stopped
    assert share.shares == pytest.approx({"patient": 0.5, "therapist": 0.5})


def test_talk_share_forgets_speech_older_than_the_window():
    turns = TurnTracker(talk_window_s=10.0, share_every_s=1.0)
    turns.on_event(Speech(t=3.2, speaker="therapist", start=0.0, end=3.0))
    turns.on_event(Speech(t=20.2, speaker="patient", start=18.0, end=20.0))
    share = turns.tick(21.0)[0]
    assert share.shares == pytest.approx({"patient": 1.0})
