"""The input checks in front of the pipeline's stages, and a prosody-only replay under bleed."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import soundfile as sf
import soxr

from session_monitor.session.input_checks import InputChecks
from session_monitor.settings.loader import load_settings
from support.audio import SAMPLE_AUDIO, SR, shared_file
from support.cli import events, run_cli


def blocks_of(y: np.ndarray, block: int = 1536):
    return (y[:, i : i + block] for i in range(0, y.shape[1], block))


def stereo(name: str) -> np.ndarray:
    y, sr = sf.read(shared_file(name), dtype="float32", always_2d=True)
    return np.ascontiguousarray(soxr.resample(y, sr, SR).T if sr != SR else y.T, dtype=np.float32)


def test_dual_mono_is_decided_from_the_first_seconds_and_said_once():
    checks = InputChecks(load_settings(), ["therapist", "patient"])
    y = stereo("jfk.flac")
    source = blocks_of(y)
    held = checks.hold(source)
    assert checks.dual_mono and sum(b.shape[1] for b in held) <= 4 * SR
    assert checks.ownership(held[0]) is None  # one microphone now: no bleed decision
    said = [e for b in [*held, *source] for e in checks.health_events(b, 0.0 + 11.0)]
    assert [e.problem for e in said] == ["dual_mono"]
    assert checks.summary()["dual_mono"] is True


def test_two_voices_are_two_channels_with_a_bleed_decision_per_chunk():
    checks = InputChecks(load_settings(), ["therapist", "patient"])
    y = stereo("stereo_diarization.wav")
    source = blocks_of(y)
    held = checks.hold(source)
    assert not checks.dual_mono
    own = checks.ownership(held[0])
    assert own.shape == (2, held[0].shape[1] // 512)
    assert set(checks.summary()) >= {"dual_mono", "bleed_share", "problems"}


def test_mono_input_holds_nothing():
    checks = InputChecks(load_settings(), ["unknown"])
    assert checks.hold(iter([np.zeros((1, 1536), np.float32)])) == [] and checks.verdict is None


def test_two_devices_are_never_held_for_a_dual_mono_verdict():
    checks = InputChecks(load_settings(), ["therapist", "patient"], dual_mono=False)
    y, _ = sf.read(SAMPLE_AUDIO / "demo_session.flac", dtype="float32", always_2d=True)
    one = np.ascontiguousarray(np.stack([y[: 20 * SR, 0]] * 2))  # the same signal on both: still two devices
    source = blocks_of(one)
    assert checks.hold(source) == [] and not checks.dual_mono
    assert next(source).shape == (2, 1536)  # nothing was read from the source


def test_a_stop_ends_the_hold():
    checks = InputChecks(load_settings(), ["therapist", "patient"])
    silent = (np.zeros((2, 1536), np.float32) for _ in range(1000))  # digital silence: no verdict
    stop = threading.Event()
    stop.set()
    assert len(checks.hold(silent, stop=stop)) == 1 and not checks.dual_mono


def test_input_problems_become_health_events_naming_the_speaker():
    checks = InputChecks(load_settings(), ["therapist", "patient"])
    y, _ = sf.read(SAMPLE_AUDIO / "demo_session.flac", dtype="float32", always_2d=True)
    y = np.ascontiguousarray(y.T[:, : 40 * SR])
    y[1, 10 * SR :] = 0.0  # the patient's microphone unplugged at 10 s
    said = [e for i, b in enumerate(blocks_of(y)) for e in checks.health_events(b, (i + 1) * 1536 / SR)]
    assert [(e.problem, e.speaker, e.cleared) for e in said] == [("dead_channel", "patient", False)]
    assert 13.0 <= said[0].t <= 14.5 and "plugged in" in said[0].hint
    assert checks.summary()["problems"][0]["problem"] == "dead_channel"


def test_an_input_problem_says_whether_its_own_channel_delivers():
    """Two devices, the call's lost: a problem on the microphone's channel is not the lost device's."""
    checks = InputChecks(load_settings(), ["therapist", "patient"])
    y, _ = sf.read(SAMPLE_AUDIO / "demo_session.flac", dtype="float32", always_2d=True)
    y = np.ascontiguousarray(y.T[:, : 30 * SR])
    y[:, 10 * SR :] = 0.0  # both channels go quiet: the call because its device is gone
    said = [e for i, b in enumerate(blocks_of(y))
            for e in checks.health_events(b, (i + 1) * 1536 / SR, channel_ok=(True, i * 1536 < 10 * SR))]
    by_speaker = {e.speaker: e.audio_ok for e in said if e.problem == "dead_channel"}
    assert by_speaker == {"therapist": True, "patient": False}


@pytest.mark.parametrize("down_db", [6, 12])
def test_prosody_only_replay_under_bleed_finds_the_clean_speech(tmp_path, down_db):
    """demo_session with each microphone hearing the other speaker: no bleed speech."""
    y, sr = sf.read(SAMPLE_AUDIO / "demo_session.flac", dtype="float32", always_2d=True)
    g, d = 10 ** (-down_db / 20), 32
    bled = y.copy()
    for c in (0, 1):
        bled[d:, c] += g * y[:-d, 1 - c]
    path = tmp_path / "bled.flac"
    sf.write(path, bled, sr, subtype="PCM_16")
    talk = {}
    for name, audio in (("clean", SAMPLE_AUDIO / "demo_session.flac"), ("bled", path)):
        result = run_cli("replay", str(audio), "--session-dir", str(tmp_path / name), "--no-view", "--no-asr",
                         "--no-report")
        assert result.returncode == 0, result.stderr
        evs = events(tmp_path / name)
        talk[name] = {s: sum(e["end"] - e["start"] for e in evs if e["type"] == "speech" and e["speaker"] == s)
                      for s in ("therapist", "patient")}
        talk[name]["overlaps"] = sum(e["type"] == "overlap" for e in evs)
    for speaker in ("therapist", "patient"):  # without bleed detection each would gain the other's ~60 s
        assert talk["bled"][speaker] == pytest.approx(talk["clean"][speaker], rel=0.03)
    assert talk["bled"]["overlaps"] <= talk["clean"]["overlaps"] + 1


def test_levels_shared_with_the_bleed_decision_give_the_same_health():
    y, _ = sf.read(SAMPLE_AUDIO / "demo_session.flac", dtype="float32", always_2d=True)
    y = np.ascontiguousarray(y.T[:, : 40 * SR])
    y[1, 10 * SR :] = 0.0
    y[0, 20 * SR :] *= 0.05  # and the therapist's microphone knocked away (-26 dB) at 20 s
    found = []
    for shared in (False, True):
        checks = InputChecks(load_settings(), ["therapist", "patient"])
        checks.hold(iter([]))
        said = []
        for i, b in enumerate(blocks_of(y)):
            t = (i + 1) * 1536 / SR
            said += checks.process(b, t)[1] if shared else checks.health_events(b, t)
        found.append([(e.t, e.problem, e.channel) for e in said])
    assert found[0] == found[1] and {p for _, p, _ in found[0]} == {"dead_channel", "level_jump"}
