"""Call echo: the therapist's voice coming back in the call audio is not the patient's speech."""

from __future__ import annotations

import numpy as np
import pytest

from session_monitor.settings.loader import load_settings
from session_monitor.speech.bleed import CHUNK
from session_monitor.speech.call_echo import CallEchoDetector
from support.audio import SR, espeak, noise


def call_session(echo_delay_s: float, echo_db: float):
    """Microphone: the therapist; call audio: the patient at other moments plus the therapist's echo."""
    therapist = [espeak("how have things been since we last met", voice="en-us+m3"),
                 espeak("what would you like to work on today", voice="en-us+m3")]
    patient = [espeak("not great to be honest", voice="en-us+f3")]
    total = 14 * SR
    mic = noise(total, seed=1)
    call = noise(total, seed=2)
    t_spans, p_spans = [], []
    for at_s, y in zip((1.0, 8.0), therapist):
        i = int(at_s * SR)
        mic[i : i + len(y)] += y
        j = i + int(echo_delay_s * SR)
        call[j : j + len(y)] += y * 10 ** (echo_db / 20)
        t_spans.append((j, j + len(y)))
    i = int(5.0 * SR)
    call[i : i + len(patient[0])] += patient[0]
    p_spans.append((i, i + len(patient[0])))
    return np.stack([mic, call]).astype(np.float32), t_spans, p_spans


def loud_chunks(spans, level_db, channel):
    """Chunks inside the spans that hold speech (12 dB over the quietest), by chunk index."""
    floor = np.percentile(level_db[channel], 5)
    out = []
    for a, b in spans:
        for k in range(a // CHUNK + 1, b // CHUNK - 1):
            if level_db[channel, k] > floor + 12:
                out.append(k)
    return np.array(out)


@pytest.mark.parametrize(("delay_s", "echo_db"), [(0.18, -10.0), (0.45, -6.0)])
def test_echo_is_not_patient_speech(delay_s, echo_db):
    audio, echo_spans, patient_spans = call_session(delay_s, echo_db)
    settings = load_settings()
    detector = CallEchoDetector(settings.bleed, settings.call_echo)
    owns, levels = [], []
    for i in range(0, audio.shape[1], 1536):
        d = detector.process(audio[:, i : i + 1536])
        owns.append(d.own)
        levels.append(d.level_db)
    own, level = np.concatenate(owns, axis=1), np.concatenate(levels, axis=1)
    assert detector.delay is not None and abs(detector.delay / SR - delay_s) <= 0.002
    assert own[0].all()  # the microphone is always the therapist's
    # the second utterance's echo comes after the delay was found from the first
    late_echo = loud_chunks(echo_spans[1:], level, 1)
    assert len(late_echo) > 20 and np.mean(~own[1, late_echo]) >= 0.9
    patient = loud_chunks(patient_spans, level, 1)
    assert len(patient) > 20 and np.mean(own[1, patient]) >= 0.98


def test_gate_turns_the_echo_down_and_leaves_the_patient():
    """What the speech stages see: the echo 40 dB down, the patient's speech as it was."""
    audio, echo_spans, patient_spans = call_session(0.25, -8.0)
    settings = load_settings()
    detector = CallEchoDetector(settings.bleed, settings.call_echo)
    gated = np.concatenate([detector.gate(audio[:, i : i + 1536]) for i in range(0, audio.shape[1], 1536)], axis=1)
    assert np.array_equal(gated[0], audio[0])  # the microphone untouched
    a, b = echo_spans[1]
    before, after = (10 * np.log10(np.mean(x[a:b] ** 2)) for x in (audio[1], gated[1]))
    assert before - after >= 15.0  # most of the late echo's chunks gated (40 dB each)
    a, b = patient_spans[0]
    assert np.array_equal(gated[1, a:b], audio[1, a:b])
