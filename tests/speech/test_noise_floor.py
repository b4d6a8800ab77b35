"""The tracked noise floor, and speech activity that keeps the same speech at any gain."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

from session_monitor.audio.frames import Frame
from session_monitor.events import Speech
from session_monitor.settings.loader import load_settings
from session_monitor.speech.activity import CHUNK, SpeechActivity
from session_monitor.speech.noise_floor import NoiseFloor
from support.audio import SAMPLE_AUDIO, SR, espeak, noise, shared_file

CHUNK_S = CHUNK / SR
#: the speech activity with its energy floor following the noise floor
TRACKED = replace(load_settings().speech_activity, floor_mode="tracked")
BIN_DB = 0.25  # the floor's resolution (its histogram's bins)


def chunk_db(y: np.ndarray) -> np.ndarray:
    n = len(y) // CHUNK
    return 10 * np.log10(np.mean(y[: n * CHUNK].reshape(n, CHUNK).astype(np.float64) ** 2, axis=1) + 1e-10)


def test_floor_of_speech_in_a_quiet_room_is_the_room():
    parts = [noise(SR, db=-62, seed=1)]
    for k, text in enumerate(["we talked about your week", "and how that felt for you", "it was long"]):
        parts += [espeak(text), noise(SR // 2, db=-62, seed=k + 2)]
    y = np.concatenate(parts)
    y += noise(len(y), db=-62, seed=9)
    floor = NoiseFloor(chunk_s=CHUNK_S)
    levels = chunk_db(y)
    for i in range(0, len(levels), 5):
        floor.update(levels[i : i + 5])
    assert floor.db == pytest.approx(-62 + 10 * np.log10(2), abs=1.5)  # two -62 dB noises summed


def test_floor_falls_at_once_and_rises_slowly():
    floor = NoiseFloor(chunk_s=CHUNK_S, rise_db_per_s=1.0)
    floor.update(np.full(100, -60.0))
    assert floor.db == pytest.approx(-60.0, abs=BIN_DB)
    history = []
    for _ in range(60):  # a minute of a loud steady sound (a fan switched on), a second at a time
        floor.update(np.full(int(round(1 / CHUNK_S)), -30.0))
        history.append(floor.db)
    steps = np.diff([-60.0, *history])
    assert np.all(steps >= 0) and np.all(steps <= 1.0 + 1e-9)  # never faster than 1 dB/s
    assert history[5] == pytest.approx(-60.0, abs=BIN_DB)  # speech-long stretches do not lift it
    assert history[-1] == pytest.approx(-30.0, abs=BIN_DB)  # a lasting change is followed
    floor.update(np.full(int(10 / CHUNK_S), -75.0))
    assert floor.db == pytest.approx(-75.0, abs=BIN_DB)


def test_digital_silence_says_nothing_about_the_room():
    floor = NoiseFloor(chunk_s=CHUNK_S)
    floor.update(np.full(50, -55.0))
    floor.update(np.full(500, -100.0))
    assert floor.db == pytest.approx(-55.0, abs=BIN_DB)


def speech_frames(x: np.ndarray) -> np.ndarray:
    """10 ms frames inside a speech segment of one channel."""
    vad = SpeechActivity(TRACKED, channel=0, speaker="x")
    out = []
    for i in range(0, len(x), 1600):
        out += vad.process(Frame(i, 0, x[i : i + 1600]))
    out += vad.flush()
    mask = np.zeros(len(x) // 160, dtype=bool)
    for e in out:
        if isinstance(e, Speech):
            mask[int(round(e.start * 100)) : int(round(e.end * 100))] = True
    return mask


def at_gain(x: np.ndarray, gain_db: float) -> np.ndarray:
    """The recording ``gain_db`` quieter, saved again at 16 bits as a quieter microphone would."""
    return (np.round(x * 10 ** (gain_db / 20) * 32767) / 32767).astype(np.float32)


@pytest.mark.parametrize("name", ["demo_session", "withdrawal_only"])
def test_the_same_speech_at_0_to_minus_30_db(name):
    y, _ = sf.read(SAMPLE_AUDIO / f"{name}.flac", dtype="float32", always_2d=True)
    for c in range(2):
        ref = speech_frames(y[:, c].copy())
        assert 0.2 < ref.mean() < 0.6
        for gain_db in (-12, -24, -30):
            same = np.mean(speech_frames(at_gain(y[:, c], gain_db)) == ref)
            assert same >= 0.97, f"{name} channel {c} at {gain_db} dB: {same:.3f} identical"


def rttm_frames(path, n: int) -> np.ndarray:
    mask = np.zeros(n, dtype=bool)
    for line in path.read_text().splitlines():
        p = line.split()
        start, dur = float(p[3]), float(p[4])
        mask[int(round(start * 100)) : int(round((start + dur) * 100))] = True
    return mask


@pytest.mark.parametrize("gain_db", [0, -20])
def test_far_field_conversation_agrees_with_the_reference_at_least_as_bare_silero(gain_db):
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    y, _ = sf.read(shared_file("conversation_2speakers.wav"), dtype="float32")
    truth = rttm_frames(shared_file("conversation_2speakers.rttm"), len(y) // 160)
    x = at_gain(y, gain_db)
    ours = np.mean(speech_frames(x) == truth)
    bare = np.zeros(len(truth), dtype=bool)
    for ts in get_speech_timestamps(x, VadOptions()):
        bare[ts["start"] // 160 : ts["end"] // 160] = True
    bare_agreement = np.mean(bare == truth)
    assert ours >= bare_agreement, f"{ours:.3f} < bare Silero {bare_agreement:.3f}"
    assert ours >= 0.9


def _segments(x: np.ndarray, settings) -> list[tuple[float, float]]:
    vad = SpeechActivity(settings, channel=0, speaker="x")
    out = []
    for i in range(0, len(x), 1536):
        out += vad.process(Frame(i, 0, x[i : i + 1536]))
    out += vad.flush()
    return [(e.start, e.end) for e in out if isinstance(e, Speech)]


def test_a_segment_goes_on_through_soft_word_ends_where_silero_is_sure():
    """stereo_diarization.wav's left channel: noise -44 dBFS, speech 20 dB above it, so the floor
    that starts speech is share-capped at noise + 10 dB. The word ending at 2.3-2.6 s falls to
    0-8 dB over the noise with Silero at 0.55-1.0: the lower floor (noise + 3 dB) keeps it to
    2.61 s; with one floor (continue_margin_db = noise_margin_db) the segment ended at 2.40 s."""
    y, _ = sf.read(shared_file("stereo_diarization.wav"), dtype="float32")
    settings = load_settings().speech_activity
    first = _segments(np.ascontiguousarray(y[:, 0]), settings)[0]
    assert first[1] >= 2.55, first  # Silero is sure until 2.56 s
    one_floor = _segments(np.ascontiguousarray(y[:, 0]), replace(settings, continue_margin_db=settings.noise_margin_db))
    assert one_floor[0][1] <= 2.45, one_floor


def test_a_pause_holding_a_breath_silero_doubts_still_splits():
    """The demo's mono mix at 102.56-102.78 s: a 220 ms pause in the therapist's turn holding a
    60 ms breath at -53 dBFS (15 dB over the room, Silero 0.39-0.44). Under the threshold the
    full floor (noise + 18 dB) is needed, so the pause splits the segment (as -50 dBFS did);
    the end is refined over the breath on the lower floor. Tolerance: 30 ms (a chunk)."""
    y, _ = sf.read(SAMPLE_AUDIO / "demo_session.flac", dtype="float32")
    segments = [s for s in _segments(y.mean(axis=1), load_settings().speech_activity) if 101.9 < s[1] < 107.0]
    assert len(segments) == 2, segments
    assert segments[0][0] == pytest.approx(102.16, abs=0.03) and 102.5 <= segments[0][1] <= 102.7, segments
    assert segments[1][0] == pytest.approx(102.78, abs=0.03), segments
