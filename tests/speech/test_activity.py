"""Speech activity: pause and gap lengths against known truth."""

from __future__ import annotations

import numpy as np
import pytest

from session_monitor.audio.frames import Frame
from session_monitor.events import Speech, SpeechOnset
from session_monitor.settings.loader import load_settings
from session_monitor.speech.activity import SpeechActivity, UtteranceReady
from support.audio import SR, espeak, frames, noise, place, shared_file

TOLERANCE_S = 0.030  # the bound on boundary error


def run_vad(signal: np.ndarray, *, speaker: str = "unknown", channel: int = 0):
    vad = SpeechActivity(load_settings().speech_activity, channel=channel, speaker=speaker)
    out = []
    for start, block in frames(signal):
        out += vad.process(Frame(start, channel, block))
    return out + vad.flush()


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
