"""Input health on recordings with known faults made from the committed sessions and real files."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import soxr

from session_monitor.audio.input_health import InputHealth
from session_monitor.settings.loader import load_settings
from support.audio import SAMPLE_AUDIO, SR, shared_file


def session(name: str = "demo_session") -> np.ndarray:
    y, _ = sf.read(SAMPLE_AUDIO / f"{name}.flac", dtype="float32", always_2d=True)
    return np.ascontiguousarray(y.T)


def problems(y: np.ndarray, *, block: int = 1600):
    health = InputHealth(load_settings().input_health, channels=y.shape[0],
                         names=("therapist", "patient")[: y.shape[0]])
    out = []
    for i in range(0, y.shape[1], block):
        out += health.process(y[:, i : i + block])
    return out


def at_16_bits(y: np.ndarray) -> np.ndarray:
    return (np.round(np.clip(y, -1, 1) * 32767) / 32767).astype(np.float32)


@pytest.mark.parametrize("name", ["demo_session", "withdrawal_only", "calm_reflective", "confrontation_repair"])
def test_a_good_recording_raises_nothing(name):
    assert problems(session(name)) == []


def test_real_recordings_raise_nothing():
    y, sr = sf.read(shared_file("conversation_2speakers.wav"), dtype="float32")
    assert problems(y[None, :]) == []
    j, sr = sf.read(shared_file("jfk.flac"), dtype="float32")
    assert problems(soxr.resample(j, sr, SR).T.astype(np.float32).copy()) == []


@pytest.mark.parametrize("gain_db", [-24, -30])
def test_a_quiet_microphone_is_too_quiet_once_per_channel(gain_db):
    found = [p for p in problems(at_16_bits(session() * 10 ** (gain_db / 20))) if not p.cleared]
    assert sorted((p.problem, p.channel) for p in found) == [("too_quiet", 0), ("too_quiet", 1)]
    for p in found:
        assert p.t == pytest.approx(load_settings().input_health.quiet_after_s, abs=1.5)
        assert p.value_db == pytest.approx(-25 + gain_db, abs=4)  # the demo's speech peaks near -25 dBFS
        assert "move its microphone closer or raise its input gain" in p.hint


def test_12_db_quieter_is_still_fine():
    assert problems(at_16_bits(session() * 10 ** (-12 / 20))) == []


def test_clipping_is_said_once_until_it_stops():
    j, sr = sf.read(shared_file("jfk.flac"), dtype="float32")
    loud = np.clip(10 * soxr.resample(j, sr, SR).T, -1, 1).astype(np.float32)  # +20 dB into the limits
    found = problems(np.ascontiguousarray(loud))
    assert {(p.problem, p.channel, p.cleared) for p in found} == {("clipping", 0, False), ("clipping", 1, False)}
    assert all(p.t <= 3.0 and "turn its input gain down" in p.hint for p in found)


def test_an_unplugged_channel_is_dead_and_comes_back():
    y = session()
    y[1, 60 * SR : 90 * SR] = 0.0
    found = problems(y)
    assert [(p.problem, p.channel, p.cleared) for p in found] == [("dead_channel", 1, False),
                                                                   ("dead_channel", 1, True)]
    assert found[0].t == pytest.approx(63.0, abs=1.5) and found[1].t == pytest.approx(90.0, abs=1.5)
    assert "plugged in" in found[0].hint


@pytest.mark.parametrize("step_db", [-20, 15])
def test_a_level_jump_is_found_where_it_happens(step_db):
    y = session()
    at = 80 * SR
    if step_db < 0:
        y[1, at:] *= 10 ** (step_db / 20)  # the microphone knocked away from the patient
        channel = 1
    else:  # a hum or fan on the therapist's microphone, 15 dB over the room
        rng = np.random.default_rng(0)
        y[0, at:] += (10 ** ((-65 + 15) / 20) * rng.standard_normal(y.shape[1] - at)).astype(np.float32)
        channel = 0
    found = [p for p in problems(y) if not p.cleared]
    assert [(p.problem, p.channel) for p in found] == [("level_jump", channel)]
    assert 80.0 <= found[0].t <= 86.0
    assert found[0].value_db == pytest.approx(step_db, abs=3)


def test_disabled_raises_nothing():
    from dataclasses import replace

    health = InputHealth(replace(load_settings().input_health, enabled=False), channels=2)
    y = np.zeros((2, 10 * SR), dtype=np.float32)
    assert [p for i in range(0, y.shape[1], 1600) for p in health.process(y[:, i : i + 1600])] == []
