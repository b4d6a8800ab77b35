"""Bad input, one test each: a one-line error naming what and how to fix it, exit code 2,
no traceback, nothing written. Odd but usable input runs, with a warning where it helps.

The table in the closing note of the faults issue is this file.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from support.audio import SR, espeak, noise
from support.cli import accepted, refused, run_cli
from support.live_run import CONSENT
from support.media import write_compressed


def speech(seconds_after: float = 1.0) -> np.ndarray:
    return np.concatenate([noise(SR // 2), espeak("we can talk about my mother"), noise(int(seconds_after * SR))])


def replay(tmp_path: Path, path, *args: str):
    out = tmp_path / "out"
    result = run_cli("replay", str(path), "--no-asr", "--no-view", "--session-dir", str(out), *args)
    if result.returncode == 2:
        assert not out.exists(), "a refused run must not leave a session folder"
    return result


# -- files ----------------------------------------------------------------------------------------

def test_file_missing(tmp_path):
    refused(replay(tmp_path, tmp_path / "nope.wav"), "nope.wav: no such file; check the path")


def test_file_is_a_directory(tmp_path):
    refused(replay(tmp_path, tmp_path), "is a folder; give an audio file")


def test_file_empty(tmp_path):
    (tmp_path / "e.wav").write_bytes(b"")
    refused(replay(tmp_path, tmp_path / "e.wav"), "is empty (0 bytes)")


def test_truncated_wav(tmp_path):
    path = tmp_path / "t.wav"
    sf.write(path, speech(), SR)
    path.write_bytes(path.read_bytes()[:40])
    refused(replay(tmp_path, path), "t.wav")


def test_random_bytes_named_wav(tmp_path):
    path = tmp_path / "r.wav"
    path.write_bytes(np.random.default_rng(0).bytes(50_000))
    refused(replay(tmp_path, path), "not a readable audio file", "convert it to wav or flac")


def test_zero_samples(tmp_path):
    path = tmp_path / "z.wav"
    sf.write(path, np.zeros((0, 2), np.float32), SR)
    refused(replay(tmp_path, path), "contains no audio samples")


def test_all_silence_runs_and_warns(tmp_path):
    path = tmp_path / "s.wav"
    sf.write(path, noise(5 * SR, db=-80), SR)
    accepted(replay(tmp_path, path), "no speech was found")


def test_clipped_runs_and_warns(tmp_path):
    path = tmp_path / "c.wav"
    sf.write(path, np.clip(speech() * 20, -1, 1), SR, subtype="FLOAT")
    accepted(replay(tmp_path, path), "clipped; lower the recording gain")


def test_nan_in_float_wav(tmp_path):
    y = speech()
    y[SR] = np.nan
    path = tmp_path / "n.wav"
    sf.write(path, y, SR, subtype="FLOAT")
    refused(replay(tmp_path, path), "NaN or infinite samples", "re-export")


def test_inf_in_float_wav(tmp_path):
    y = speech()
    y[-10] = np.inf
    path = tmp_path / "i.wav"
    sf.write(path, y, SR, subtype="DOUBLE")
    refused(replay(tmp_path, path), "NaN or infinite samples")


def test_8_khz_runs(tmp_path):
    import librosa

    path = tmp_path / "8k.wav"
    sf.write(path, librosa.resample(speech(), orig_sr=SR, target_sr=8000), 8000)
    accepted(replay(tmp_path, path))


def test_48_khz_runs(tmp_path):
    import librosa

    path = tmp_path / "48k.wav"
    sf.write(path, librosa.resample(speech(), orig_sr=SR, target_sr=48000), 48000)
    accepted(replay(tmp_path, path))


def test_six_channels_without_roles(tmp_path):
    path = tmp_path / "six.wav"
    sf.write(path, np.tile(speech()[:, None], (1, 6)), SR)
    refused(replay(tmp_path, path), "input has 6 channels; give --roles with 6 names")


def test_roles_that_do_not_fit_the_channels(tmp_path):
    path = tmp_path / "st.wav"
    sf.write(path, np.stack([speech(), speech()], axis=1), SR)
    refused(replay(tmp_path, path, "--roles", "therapist,patient,unknown"),
            "--roles names 3 speaker(s) but the input has 2 channel(s)")


def test_mp3_runs(tmp_path):
    path = write_compressed(tmp_path / "a.mp3", np.stack([speech(), speech()], axis=1), SR, codec="mp3")
    accepted(replay(tmp_path, path))


def test_video_with_audio_runs(tmp_path):
    path = write_compressed(tmp_path / "v.mp4", np.stack([speech(), speech()], axis=1), SR, codec="aac",
                            video=True)
    accepted(replay(tmp_path, path))


def test_video_without_audio(tmp_path):
    path = write_compressed(tmp_path / "v.mp4", None, SR, codec="aac", video=True)
    refused(replay(tmp_path, path), "has no audio stream")


def test_text_named_mp3(tmp_path):
    path = tmp_path / "notes.mp3"
    path.write_text("this is not audio\n" * 100)
    refused(replay(tmp_path, path), "notes.mp3: cannot be decoded")


# -- settings ---------------------------------------------------------------------------------------

def _speech_file(tmp_path) -> Path:
    path = tmp_path / "a.wav"
    sf.write(path, speech(), SR)
    return path


def _config(tmp_path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_invalid_toml(tmp_path):
    refused(replay(tmp_path, _speech_file(tmp_path), "--config", str(_config(tmp_path, "[prosody\n"))),
            "c.toml: invalid TOML")


def test_unknown_setting(tmp_path):
    refused(replay(tmp_path, _speech_file(tmp_path), "--config", str(_config(tmp_path, "[prosody]\nhop = 3\n"))),
            "unknown key prosody.hop; known keys: hop_ms")


def test_setting_of_wrong_type(tmp_path):
    cfg = _config(tmp_path, "[prosody]\nhop_ms = 'ten'\n")
    refused(replay(tmp_path, _speech_file(tmp_path), "--config", str(cfg)), "prosody.hop_ms='ten' has the wrong type")


def test_setting_out_of_range(tmp_path):
    cfg = _config(tmp_path, "[prosody]\nhop_ms = 500\n")
    refused(replay(tmp_path, _speech_file(tmp_path), "--config", str(cfg)),
            "prosody.hop_ms=500 is out of range; use 5..50")


def test_missing_config_file(tmp_path):
    refused(replay(tmp_path, _speech_file(tmp_path), "--config", str(tmp_path / "none.toml")),
            "none.toml: no such settings file")


def test_missing_clinician_profile(tmp_path):
    refused(replay(tmp_path, _speech_file(tmp_path), "--clinician", "nobody"),
            "clinician profile", "nobody.toml not found")


# -- annotations ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def finished_session(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ann")
    out = tmp / "s"
    path = tmp / "a.wav"
    sf.write(path, speech(), SR)
    assert run_cli("replay", str(path), "--no-asr", "--no-view", "--session-dir", str(out)).returncode == 0
    return out


def _evaluate(session: Path, tmp_path: Path, content: str, name: str = "ann.json"):
    path = tmp_path / name
    path.write_text(content)
    return run_cli("evaluate", str(session), "--annotations", str(path))


def test_annotations_malformed(finished_session, tmp_path):
    refused(_evaluate(finished_session, tmp_path, "{not json"), "invalid JSON")


def test_annotation_ending_before_it_starts(finished_session, tmp_path):
    content = json.dumps({"ruptures": [{"start": 5.0, "end": 2.0, "kind": "withdrawal"}]})
    refused(_evaluate(finished_session, tmp_path, content), "end 2 is not after start 5")


def test_overlapping_annotations(finished_session, tmp_path):
    content = json.dumps({"ruptures": [{"start": 1.0, "end": 5.0, "kind": "withdrawal"},
                                       {"start": 4.0, "end": 8.0, "kind": "confrontation"}]})
    refused(_evaluate(finished_session, tmp_path, content), "overlap")


# -- runs ------------------------------------------------------------------------------------------------

def test_session_folder_exists_without_force(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "events.jsonl").write_text('{"keep": true}\n')
    result = run_cli("replay", str(_speech_file(tmp_path)), "--no-asr", "--session-dir", str(out))
    refused(result, "folder exists and is not empty", "--force")
    assert (out / "events.jsonl").read_text() == '{"keep": true}\n'


def test_unwritable_output_folder(tmp_path):
    result = run_cli("replay", str(_speech_file(tmp_path)), "--no-asr", "--session-dir", "/proc/sm-test/s")
    refused(result, "cannot create folder")


def test_dashboard_port_in_use(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = replay(tmp_path, _speech_file(tmp_path), "--dashboard", "--dashboard-port", str(port))
    refused(result, str(port), "--dashboard-port")


def test_non_loopback_dashboard_without_token(tmp_path):
    result = replay(tmp_path, _speech_file(tmp_path), "--dashboard", "--dashboard-host", "0.0.0.0")
    refused(result, "not loopback", "--dashboard-token")


def test_speed_not_a_number(tmp_path):
    refused(replay(tmp_path, _speech_file(tmp_path), "--speed", "fast"), "--speed 'fast' is not valid")


def test_live_without_consent(tmp_path):
    refused(run_cli("live", "--session-dir", str(tmp_path / "s")), "consent record")
    assert not (tmp_path / "s").exists()


def test_live_with_a_device_that_does_not_exist(tmp_path):
    refused(run_cli("live", "--device", "77", "--consent", CONSENT), "capture device 77 not found")


def test_live_with_a_negative_duration(tmp_path):
    refused(run_cli("live", "--duration", "-3", "--consent", CONSENT), "--duration")
