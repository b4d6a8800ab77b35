"""Speech activity: pause and gap lengths against known truth."""

from __future__ import annotations

import numpy as np
import pytest

from session_monitor.audio.frames import Frame
from session_monitor.events import Gap, Overlap, Speech, SpeechOnset
from session_monitor.settings.loader import load_settings
from session_monitor.speech.activity import SpeechActivity, UtteranceReady
from session_monitor.speech.turns import TurnTracker
from support.audio import SR, espeak, frames, noise, shared_file

TOLERANCE_S = 0.030  # the bound on boundary error


def run_vad(signal: np.ndarray, *, speaker: str = "unknown", channel: int = 0):
    vad = SpeechActivity(load_settings().speech_activity, channel=channel, speaker=speaker)
    out = []
    for start, block in frames(signal):
        out += vad.process(Frame(start, channel, block))
    return out + vad.flush()


def place(total_s: float, pieces: list[tuple[float, np.ndarray]], *, seed: int = 0) -> np.ndarray:
    y = noise(int(total_s * SR), seed=seed)
    for at_s, speech in pieces:
        i = int(round(at_s * SR))
        y[i : i + len(speech)] += speech
    return y


def test_silence_gaps_found_at_known_samples():
    a = espeak("we talked about your week at work")
    b = espeak("and how did that feel for you")
    c = espeak("it was a long week")
    gaps = [1.37, 0.46]
    t_a = 0.5
    t_b = t_a + len(a) / SR + gaps[0]
    t_c = t_b + len(b) / SR + gaps[1]
    y = place(t_c + len(c) / SR + 1.0, [(t_a, a), (t_b, b), (t_c, c)])
    segs = [e for e in run_vad(y) if isinstance(e, Speech)]
    # espeak speaks each phrase without pauses >= 200 ms, so one segment each
    assert len(segs) == 3, segs
    truth = [(t_a, t_a + len(a) / SR), (t_b, t_b + len(b) / SR), (t_c, t_c + len(c) / SR)]
    for seg, (start, end) in zip(segs, truth):
        assert seg.start == pytest.approx(start, abs=TOLERANCE_S)
        assert seg.end == pytest.approx(end, abs=TOLERANCE_S)
    found = [segs[i + 1].start - segs[i].end for i in range(2)]
    assert found == pytest.approx(gaps, abs=TOLERANCE_S)


def test_pause_below_minimum_does_not_split_a_segment():
    a = espeak("I went home")
    b = espeak("and slept")
    y = place(4.0, [(0.5, a), (0.5 + len(a) / SR + 0.12, b)])
    segs = [e for e in run_vad(y) if isinstance(e, Speech)]
    assert len(segs) == 1


def test_utterance_closes_after_half_a_second_of_silence():
    a = espeak("tell me more about that")
    y = place(3.0, [(0.5, a)])
    out = run_vad(y)
    utts = [e for e in out if isinstance(e, UtteranceReady)]
    assert len(utts) == 1
    end = 0.5 + len(a) / SR
    assert utts[0].t == pytest.approx(end + 0.5, abs=0.1)  # known ~500 ms after the speech ended
    assert utts[0].start_sample / SR == pytest.approx(0.5, abs=TOLERANCE_S)


def test_silence_alone_is_not_speech():
    out = run_vad(noise(5 * SR, db=-60))
    assert not [e for e in out if isinstance(e, (Speech, SpeechOnset))]


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


def test_conversation_speech_agrees_with_rttm():
    """../shared/data/conversation_2speakers.wav: >= 90 % of 10 ms frames agree with the RTTM."""
    import soundfile as sf

    y, sr = sf.read(shared_file("conversation_2speakers.wav"), dtype="float32")
    assert sr == SR
    segs = [e for e in run_vad(y) if isinstance(e, Speech)]
    n = len(y) // 160
    hyp, ref = np.zeros(n, bool), np.zeros(n, bool)
    for seg in segs:
        hyp[round(seg.start * 100) : round(seg.end * 100)] = True
    for line in shared_file("conversation_2speakers.rttm").read_text().splitlines():
        parts = line.split()
        start, dur = float(parts[3]), float(parts[4])
        ref[round(start * 100) : round((start + dur) * 100)] = True
    assert (hyp == ref).mean() >= 0.90


def test_scoring_ahead_gives_the_same_events():
    """prime() (a --speed max replay scores ~1 s per model call) changes no event."""
    y = place(8.0, [(0.5, espeak("we talked about your week at work")), (4.0, espeak("it was a long week"))])
    plain = run_vad(y)
    vad = SpeechActivity(load_settings().speech_activity, channel=0, speaker="unknown")
    primed = []
    pieces = list(frames(y))
    for i in range(0, len(pieces), 7):  # 7 blocks of 1536 samples: chunks straddle the primed spans
        group = pieces[i : i + 7]
        vad.prime(np.concatenate([block for _, block in group]))
        for start, block in group:
            primed += vad.process(Frame(start, 0, block))
    primed += vad.flush()
    assert primed == plain and any(isinstance(e, Speech) for e in plain)
    with pytest.raises(RuntimeError, match="prime"):
        vad.process(Frame(len(y), 0, np.zeros(4096, dtype=np.float32)))
