"""Prosody: intensity, pitch and baselines against synthetic signals with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from session_monitor.audio.frames import Frame
from session_monitor.events import Prosody
from session_monitor.prosody.tracker import ProsodyTracker
from session_monitor.settings.loader import load_settings
from support.audio import SR, espeak, frames, noise


def track(signal: np.ndarray, *, speaking=True) -> tuple[ProsodyTracker, list[Prosody]]:
    tracker = ProsodyTracker(load_settings().prosody, speaker="patient")
    events = []
    for start, block in frames(signal):
        flag = speaking(start) if callable(speaking) else speaking
        events += tracker.process(Frame(start, 0, block), speaking=flag)
    return tracker, events


def tone(freq_hz: float, seconds: float, amplitude: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def test_loudness_step_of_known_db():
    step_db = 9.0
    y = np.concatenate([tone(200, 3, 0.05), tone(200, 3, 0.05 * 10 ** (step_db / 20))])
    _, events = track(y)
    before = [e.intensity_db for e in events if 1.0 <= e.t <= 2.9]
    after = [e.intensity_db for e in events if 4.0 <= e.t <= 5.9]
    # a sine of amplitude A has RMS A/sqrt(2): -29.03 dBFS for A = 0.05
    assert np.median(before) == pytest.approx(20 * np.log10(0.05 / np.sqrt(2)), abs=1.0)
    assert np.median(after) - np.median(before) == pytest.approx(step_db, abs=1.0)


def test_intensity_z_rises_after_a_step_against_own_baseline():
    y = np.concatenate([tone(200, 8, 0.05), tone(200, 2, 0.2)])
    _, events = track(y)
    steady = [e.intensity_z for e in events if 5.0 <= e.t <= 7.9]
    loud = [e.intensity_z for e in events if 8.3 <= e.t <= 9.0]
    assert max(abs(z) for z in steady) < 1.0
    assert min(loud) > 2.0


@pytest.mark.parametrize("freq_hz", [90.0, 147.0, 220.0, 330.0])
def test_tone_pitch_within_one_percent(freq_hz):
    _, events = track(tone(freq_hz, 2.0, 0.1))
    f0 = [e.f0_hz for e in events if e.t >= 0.2]
    assert all(f is not None for f in f0)
    assert np.median(f0) == pytest.approx(freq_hz, rel=0.01)


def test_pitch_in_semitones_against_the_speakers_baseline():
    # 20 s at 150 Hz builds the baseline; then 4 semitones up
    up = 150.0 * 2 ** (4 / 12)
    y = np.concatenate([tone(150, 20, 0.1), tone(up, 1.0, 0.1)])
    _, events = track(y)
    late = [e.f0_semitones for e in events if e.t >= 20.3]
    assert np.median(late) == pytest.approx(4.0, abs=0.5)


def test_noise_and_silence_are_unvoiced():
    _, events = track(noise(2 * SR, db=-40), speaking=False)
    assert all(e.f0_hz is None for e in events)
    assert all(e.intensity_z is None for e in events)


def test_events_at_features_rate_on_the_hop_grid():
    _, events = track(tone(200, 3.0, 0.1))
    times = [e.t for e in events]
    assert len(times) == 30  # 10 Hz over 3 s
    assert np.diff(times) == pytest.approx(np.full(29, 0.1), abs=1e-9)


def test_syllable_rate_of_spoken_phrase():
    # "we went to the market" has 6 syllables
    speech = espeak("we went to the market on monday", rate_wpm=150)  # 9 syllables
    y = np.concatenate([noise(SR // 2), speech + noise(len(speech), seed=1), noise(SR // 2, seed=2)])
    tracker, _ = track(y)
    duration = len(speech) / SR
    summary = tracker.summarize(0.5, 0.5 + duration)
    assert summary.syllable_rate_hz * duration == pytest.approx(9, abs=2)
    assert summary.f0_hz is not None and 70 < summary.f0_hz < 250
