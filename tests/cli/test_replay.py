"""Replay of recorded sessions: formats, rates, channels, the session folder, determinism."""

from __future__ import annotations

import json
import stat

import numpy as np
import pytest
import soundfile as sf

from session_monitor.audio.file_source import FileSource, parse_speed
from session_monitor.errors import InputError
from support.audio import SAMPLE_AUDIO, SR, espeak, noise
from support.cli import events, run_cli, without_timing
from support.media import write_compressed


def speech_file(tmp_path, *, rate: int, channels: int, name: str = "s.wav") -> tuple:
    """1 s noise, a phrase on channel 0 at 1.0 s, 1 s noise; written at ``rate``."""
    import librosa

    phrase = espeak("we can talk about my mother")  # voiced edges survive 8 kHz
    y = np.concatenate([noise(SR), phrase + noise(len(phrase), seed=1), noise(SR, seed=2)])
    y = librosa.resample(y, orig_sr=SR, target_sr=rate) if rate != SR else y
    data = np.stack([y] + [noise(len(y), seed=10 + c) for c in range(1, channels)], axis=1)
    path = tmp_path / name
    sf.write(path, data, rate)
    return path, 1.0, 1.0 + len(phrase) / SR


def replay_no_asr(path, out, *extra):
    return run_cli("replay", str(path), "--no-asr", "--no-view", "--session-dir", str(out), *extra)


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
def test_any_rate_is_resampled_and_timed_in_session_seconds(tmp_path, rate):
    path, start, end = speech_file(tmp_path, rate=rate, channels=1)
    out = tmp_path / "s"
    result = replay_no_asr(path, out)
    assert result.returncode == 0, result.stderr
    speech = [e for e in events(out) if e["type"] == "speech"]
    assert len(speech) == 1
    assert speech[0]["start"] == pytest.approx(start, abs=0.04)
    assert speech[0]["end"] == pytest.approx(end, abs=0.04)
    assert speech[0]["speaker"] == "therapist"  # mono: attributed; the first voice heard (docs/attribution.md)


def test_six_channels_need_roles_and_map_them(tmp_path):
    path, start, _ = speech_file(tmp_path, rate=SR, channels=6)
    result = replay_no_asr(path, tmp_path / "a")
    assert result.returncode == 2
    assert "6 channels" in result.stderr and "--roles" in result.stderr
    assert not (tmp_path / "a").exists()
    roles = "patient,therapist,unknown,unknown,unknown,unknown"
    result = replay_no_asr(path, tmp_path / "b", "--roles", roles)
    assert result.returncode == 0, result.stderr
    speech = [e for e in events(tmp_path / "b") if e["type"] == "speech"]
    assert [e["speaker"] for e in speech] == ["patient"]


@pytest.mark.parametrize("codec,suffix,video", [("mp3", "mp3", False), ("aac", "m4a", False), ("aac", "mp4", True)])
def test_compressed_and_video_files_decode(tmp_path, codec, suffix, video):
    wav, start, end = speech_file(tmp_path, rate=44100, channels=2)
    data, rate = sf.read(wav, dtype="float32")
    path = write_compressed(tmp_path / f"s.{suffix}", data, rate, codec=codec, video=video)
    out = tmp_path / "s"
    result = replay_no_asr(path, out)
    assert result.returncode == 0, result.stderr
    speech = [e for e in events(out) if e["type"] == "speech"]
    assert [e["speaker"] for e in speech] == ["therapist"]
    assert speech[0]["start"] == pytest.approx(start, abs=0.08)  # codec delay allowed
    session = [e for e in events(out) if e["type"] == "session"]
    assert session[-1]["t"] == pytest.approx(len(data) / rate, abs=0.1)


def test_video_without_audio_is_refused(tmp_path):
    path = write_compressed(tmp_path / "v.mp4", None, SR, codec="aac", video=True)
    result = replay_no_asr(path, tmp_path / "s")
    assert result.returncode == 2
    assert "no audio stream" in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "s").exists()


def test_speed_parsing():
    assert parse_speed("max") is None
    assert parse_speed("realtime") == 1.0
    assert parse_speed("4") == 4.0
    for bad in ("0", "-1", "fast", "nan", "inf"):
        with pytest.raises(InputError, match="--speed"):
            parse_speed(bad)


def test_paced_replay_runs_at_the_asked_speed(tmp_path):
    import time

    path, _, _ = speech_file(tmp_path, rate=SR, channels=1)  # ~3.9 s
    source = FileSource(path, block_ms=96, speed=4.0)
    t0 = time.monotonic()
    n = sum(block.shape[1] for block in source.blocks())
    elapsed = time.monotonic() - t0
    assert n / SR / 4.0 == pytest.approx(elapsed, abs=0.25)


def test_session_folder_is_private_and_describes_the_run(tmp_path):
    path, _, _ = speech_file(tmp_path, rate=SR, channels=2)
    out = tmp_path / "s"
    assert replay_no_asr(path, out).returncode == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    for f in out.iterdir():
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    meta = json.loads((out / "session.json").read_text())
    assert meta["complete"] is True
    assert meta["roles"] == ["therapist", "patient"]
    assert meta["settings"]["digest"] and meta["versions"]["faster-whisper"]
    assert not list(out.glob("*.wav")), "audio must not be stored unless asked for"
    evs = events(out)
    assert evs[0]["type"] == "session" and evs[0]["state"] == "started"
    assert evs[-1]["type"] == "session" and evs[-1]["state"] == "ended"
    times = [e["t"] for e in evs]
    assert times == sorted(times), "the stream is ordered by session time"


def test_existing_session_folder_is_kept_unless_forced(tmp_path):
    path, _, _ = speech_file(tmp_path, rate=SR, channels=1)
    out = tmp_path / "s"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    result = replay_no_asr(path, out)
    assert result.returncode == 2 and "--force" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert replay_no_asr(path, out, "--force").returncode == 0
    assert not (out / "notes.txt").exists()  # --force never mixes the earlier files with the new session
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("s.replaced-")]
    assert len(aside) == 1 and (aside[0] / "notes.txt").read_text() == "keep me"  # moved aside, kept


@pytest.mark.slow
def test_max_speed_replay_is_deterministic(tmp_path, replayed):
    """Two --speed max replays of the demo give identical events, timing fields aside."""
    first = replayed("demo_session")
    second = tmp_path / "again"
    result = run_cli("replay", str(SAMPLE_AUDIO / "demo_session.flac"), "--session-dir", str(second), "--no-view")
    assert result.returncode == 0, result.stderr
    a, b = without_timing(events(first)), without_timing(events(second))
    assert len(a) == len(b)
    assert a == b
    assert any(e["type"] == "transcript" for e in a)


@pytest.mark.slow
def test_demo_session_transcript_and_gaps_match_the_script(replayed):
    """Stereo demo: roles from channels, the scripted latencies found, words recognisable."""
    from support.cli import word_error_rate

    truth = json.loads((SAMPLE_AUDIO / "demo_session.truth.json").read_text())
    evs = events(replayed("demo_session"))
    transcripts = [e for e in evs if e["type"] == "transcript"]
    for speaker in ("therapist", "patient"):
        ref = " ".join(t["text"] for t in truth["transcript"] if t["speaker"] == speaker)
        hyp = " ".join(e["text"] for e in transcripts if e["speaker"] == speaker)
        assert word_error_rate(ref, hyp) <= 0.15, speaker
    gaps = [e for e in evs if e["type"] == "gap"]
    turns = truth["transcript"]
    for prev, cur in zip(turns, turns[1:]):
        latency = cur["start"] - prev["end"]
        if prev["speaker"] != cur["speaker"] and latency > 0.25:
            match = [g for g in gaps if abs(g["end"] - cur["start"]) < 0.1 and g["to_speaker"] == cur["speaker"]]
            assert match, (prev, cur)
            # the script's times run to the last sample of espeak's decay; for the quiet (-10 dB)
            # withdrawn replies that tail lies under the -50 dBFS energy floor for up to ~130 ms
            assert match[0]["duration_s"] == pytest.approx(latency, abs=0.15)


class _BreaksAfter:
    """A source whose decoding fails after ``n`` blocks (a file damaged half-way)."""

    name, channels, overflows, audio_ok, message, live, clipped_fraction = "broken.wav", 1, 0, True, "", False, 0.0
    channel_ok = (True,)

    def __init__(self, n: int) -> None:
        self.n = n
        self.served = 0

    def blocks(self):
        for _ in range(self.n):
            self.served += 1
            yield noise(1536)[None, :]
        raise RuntimeError("decoding failed at block %d" % self.n)


def _pipeline(source, stop=None):
    import threading

    from session_monitor.session.bus import EventBus
    from session_monitor.session.pipeline import Pipeline
    from session_monitor.settings.loader import load_settings

    seen: list = []
    bus = EventBus()
    bus.subscribe(seen.append)
    pipeline = Pipeline.from_settings(load_settings(), source, bus, roles=["therapist"], deterministic=True)
    return pipeline, seen, threading.active_count()


def test_max_speed_reader_error_reaches_the_caller():
    """At --speed max a reader thread decodes ahead: its error is raised in the pipeline's
    thread (not lost, no hang), and the reader thread is gone afterwards."""
    import threading

    source = _BreaksAfter(60)
    pipeline, seen, threads_before = _pipeline(source)
    with pytest.raises(RuntimeError, match="decoding failed at block 60"):
        pipeline.run()
    assert threading.active_count() == threads_before
    # every block read before the failure was processed, in order
    assert pipeline.position == 60 * 1536


def test_max_speed_stop_ends_the_reader():
    import threading

    source = _BreaksAfter(10_000)  # ~16 min of audio; stopped long before the end
    stop = threading.Event()
    pipeline, seen, threads_before = _pipeline(source)
    pipeline.on_progress = lambda now, stats: stop.set() if now > 5.0 else None
    stats = pipeline.run(stop)
    assert not stats.completed
    assert threading.active_count() == threads_before
    assert 5.0 < pipeline.position / SR < 6.0
    assert source.served < 10_000  # it read ahead by a few seconds, not the whole source
