"""Faults a live session must survive, provoked for real where this machine allows."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from support.audio import SAMPLE_AUDIO, SR, espeak, noise
from support.cli import events, normalize_words, run_cli
from support.live_run import CONSENT, LiveRun, consent_file
from support.pulse import read_until_given_up


def phrase_wav(tmp_path, text: str, name: str) -> "os.PathLike":
    y = np.concatenate([noise(SR // 2), espeak(text), noise(SR // 2, seed=1)])
    path = tmp_path / name
    sf.write(path, np.stack([y, noise(len(y), seed=2)], axis=1), SR)
    return path


@pytest.mark.audio_device
def test_missing_device_at_start_lists_the_available_ones(pulse):
    """With a real PulseAudio server up, the error names the devices the user can pick instead."""
    listed = json.loads(run_cli("devices", "--json", env=pulse.env).stdout)
    assert listed, "the private PulseAudio server should expose capture devices"
    result = run_cli("live", "--device", "no-such-microphone", "--consent", CONSENT, env=pulse.env)
    assert result.returncode == 2
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in line
    assert "'no-such-microphone' not found" in line and "available:" in line
    assert all(d["name"] in line for d in listed), (listed, line)


def test_no_devices_at_all_says_so_and_how_to_fix_it():
    from session_monitor.audio.microphone import _available

    assert _available([]).startswith("available: none (connect a microphone or start PulseAudio")


@pytest.mark.slow
@pytest.mark.audio_device
def test_device_lost_mid_session_is_reported_retried_and_resumed(tmp_path, pulse):
    """Unload the null sink while live records from its monitor, then bring it back."""
    after = phrase_wav(tmp_path, "we can talk about my mother now", "after.wav")
    out = tmp_path / "live"
    run = LiveRun("--device", "pulse", "--roles", "therapist,patient", "--duration", "24", "--session-dir",
                  str(out), "--no-view", "--consent", consent_file(tmp_path), env=pulse.env)
    run.wait_ready()
    time.sleep(4)
    pulse.remove_sink()
    time.sleep(4)
    pulse.add_sink()
    # the program retries with backoff; wait until it says audio is back, as a therapist would
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        health = [json.loads(x) for x in (out / "events.jsonl").read_text().splitlines() if '"health"' in x]
        states = [h["audio_ok"] for h in health]
        if False in states and True in states[states.index(False):]:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("no health event said audio was restored")
    time.sleep(1.0)
    pulse.play(after)
    assert run.wait(timeout=120) == 0, run.stderr
    lines = (out / "events.jsonl").read_text().splitlines()
    evs = [json.loads(line) for line in lines]  # every line intact
    health = [e for e in evs if e["type"] == "health"]
    states = [h["audio_ok"] for h in health]
    lost = states.index(False)
    assert True in states[lost:], "audio never came back"
    assert "audio lost" in health[lost]["message"]
    # the session clock kept running through the loss: health about every second
    times = [h["t"] for h in health]
    assert max(np.diff(times)) < 2.5
    words = normalize_words(" ".join(e["text"] for e in evs if e["type"] == "transcript"))
    assert "mother" in words, words
    assert evs[-1]["type"] == "session" and evs[-1]["state"] == "ended"
    assert not [e for e in evs if e["type"] == "gap" and e["duration_s"] > 3.0], "no gap spans lost audio"


@pytest.mark.audio_device
def test_input_overflow_is_counted_and_the_clock_kept(pulse, monkeypatch):
    """A reader that stalls for 2 s behind a 0.2 s queue: blocks dropped, counted, replaced by silence."""
    for key, value in pulse.env.items():
        monkeypatch.setenv(key, value)
    from session_monitor.audio.microphone import MicrophoneSource

    source = MicrophoneSource("pulse", channels=2, capture_rate=48000, block_ms=96, capture_block_ms=20,
                              queue_s=0.2)
    try:
        blocks = source.blocks()
        got = next(blocks).shape[1]
        t0 = time.monotonic()
        time.sleep(2.0)
        while time.monotonic() - t0 < 4.0:
            got += next(blocks).shape[1]
        elapsed = time.monotonic() - t0
    finally:
        source.close()
    assert source.overflows > 0
    # samples delivered keep pace with the wall clock despite the drops (within 0.5 s)
    assert got / SR == pytest.approx(elapsed, abs=0.5)


@pytest.mark.audio_device
def test_a_device_that_reopens_but_never_delivers_is_given_up(pulse, monkeypatch):
    """The null sink suspended (``pactl suspend-sink``): the stream stalls, and every reopen
    succeeds but delivers nothing. The give-up clock runs from the first loss until audio comes
    again, so such a device is lost for good after ``give_up_s`` (it was never given up: each
    loss restarted the clock); it is not called restored while it delivers nothing."""
    for key, value in pulse.env.items():
        monkeypatch.setenv(key, value)
    from session_monitor.audio.microphone import LOST_AFTER_S, MicrophoneSource

    source = MicrophoneSource("pulse", channels=2, capture_rate=48000, give_up_s=3.0)
    blocks = source.blocks()
    try:
        next(blocks)
        with pulse.suspended(pulse.sink):
            elapsed, restored = read_until_given_up(blocks, lambda: source.audio_ok,
                                                    match="did not come back for 3 s")
    finally:
        source.close()
    # noticed after LOST_AFTER_S (+ a block), given up at the first check after 3 s more; the
    # reopen in between waits up to its 5 s for a first block (measured 6.6 s in all)
    assert LOST_AFTER_S + 3.0 <= elapsed <= LOST_AFTER_S + 3.0 + 5.0 + 2.0, elapsed
    assert not any(restored[5:]), "a reopened device that delivers nothing is not restored"


class FlakyBackend:
    """A stand-in ASR backend that fails on the first ``fail_first`` utterances, then on
    every ``every``-th one.

    A mock, and the only one in these tests: a real faster-whisper failure cannot be
    provoked on demand. The pipeline around it is real.
    """

    name = "flaky"

    def __init__(self, fail_first: int = 3, every: int = 3) -> None:
        self.calls = 0
        self.fail_first = fail_first
        self.every = every

    def transcribe(self, audio):
        from session_monitor.events import Word
        from session_monitor.speech.asr_backend import AsrSegment

        self.calls += 1
        if self.calls <= self.fail_first or self.calls % self.every == 0:
            raise RuntimeError("simulated decoder failure")
        return [AsrSegment(0.2, 0.8, "hello there", (Word(0.2, 0.5, "hello"), Word(0.5, 0.8, "there")))]


def test_transcriber_failures_are_reported_and_the_session_goes_on():
    from session_monitor.audio.file_source import FileSource
    from session_monitor.events import Health, Prosody, Signal, Transcript
    from session_monitor.rupture.model import build_analyzers
    from session_monitor.session.bus import EventBus
    from session_monitor.session.pipeline import Pipeline
    from session_monitor.settings.loader import load_settings
    from session_monitor.speech.transcriber import TranscriptionWorker

    # one Whisper pass per utterance, so each failure costs one utterance (packing is tested elsewhere)
    settings = load_settings(overrides={"transcriber": {"batch_s": 0.0}})
    source = FileSource(SAMPLE_AUDIO / "demo_session.flac", block_ms=96, speed=None)
    bus = EventBus()
    seen: list = []
    bus.subscribe(seen.append)
    worker = TranscriptionWorker(FlakyBackend(), settings.transcriber, backend_factory=lambda: FlakyBackend(fail_first=0))
    Pipeline.from_settings(settings, source, bus, roles=["therapist", "patient"], worker=worker,
             analyzers=build_analyzers(settings), deterministic=True).run()
    health = [e for e in seen if isinstance(e, Health)]
    assert health[-1].asr_errors >= 5
    assert health[-1].asr_restarts >= 1
    assert len([e for e in seen if isinstance(e, Transcript)]) >= 10
    end = seen[-1].t
    prosody_times = [e.t for e in seen if isinstance(e, Prosody)]
    signal_times = [e.t for e in seen if isinstance(e, Signal)]
    assert prosody_times[-1] > end - 1 and signal_times[-1] > end - 1


def _paced_replay(tmp_path, **popen):
    out = tmp_path / "s"
    proc = subprocess.Popen(
        [sys.executable, "-m", "session_monitor", "replay", str(SAMPLE_AUDIO / "demo_session.flac"),
         "--speed", "8", "--no-asr", "--no-view", "--session-dir", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        path = out / "events.jsonl"
        if path.exists() and path.read_text().count("\n") > 300:
            break
        time.sleep(0.2)
    return proc, out


def test_kill_9_mid_replay_leaves_a_readable_incomplete_session(tmp_path):
    proc, out = _paced_replay(tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    lines = (out / "events.jsonl").read_text().split("\n")
    body, last = lines[:-1], lines[-1]
    for line in body[:-1]:
        json.loads(line)
    # the last complete line is valid too, or it is the torn one
    assert last == "" or body
    meta = json.loads((out / "session.json").read_text())
    assert meta["complete"] is False and meta["ended_at"] is None
    # the report still works on it, and says it ended early
    result = run_cli("report", str(out))
    assert result.returncode == 0, result.stderr
    page = (out / "report.html").read_text()
    assert 'id="incomplete"' in page and "<polyline" in page


def test_ctrl_c_ends_the_session_cleanly(tmp_path):
    proc, out = _paced_replay(tmp_path)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    evs = events(out)
    assert evs[-1]["type"] == "session" and evs[-1]["state"] == "ended"
    meta = json.loads((out / "session.json").read_text())
    assert meta["complete"] is True and meta["end_reason"] == "stopped_by_user"


def test_full_disk_while_writing_is_a_clear_error_and_keeps_what_was_written(tmp_path):
    limit = 64 * 1024  # bytes per file: events.jsonl hits it a few seconds into the session

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    out = tmp_path / "s"
    result = subprocess.run(
        [sys.executable, "-m", "session_monitor", "replay", str(SAMPLE_AUDIO / "demo_session.flac"),
         "--no-asr", "--no-view", "--session-dir", str(out)],
        capture_output=True, text=True, preexec_fn=small_files, timeout=300,
    )
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert "Traceback" not in result.stderr
    assert "events.jsonl: cannot write (disk full)" in line and "written so far are kept" in line
    text = (out / "events.jsonl").read_text()
    lines = text.split("\n")
    for line in lines[:-1]:
        json.loads(line)
    assert len(lines) > 100


@pytest.mark.slow
@pytest.mark.audio_device
def test_a_device_lost_for_good_ends_the_session_cleanly(tmp_path, pulse):
    """The null sink unloaded and never brought back: after audio.give_up_after_s the session
    ends with device_lost (exit 2, one line), its events valid and its report written."""
    cfg = tmp_path / "give_up.toml"
    cfg.write_text("[audio]\ngive_up_after_s = 3.0\n")
    out = tmp_path / "live"
    run = LiveRun("--device", "pulse", "--config", str(cfg), "--duration", "60", "--no-asr", "--session-dir",
                  str(out), "--no-view", "--consent", CONSENT, env=pulse.env)
    run.wait_ready()
    pulse.play(phrase_wav(tmp_path, "we can talk about my mother now", "before.wav"))
    pulse.remove_sink()
    t_removed = time.monotonic()
    try:
        code = run.wait(timeout=60)
    finally:
        pulse.add_sink()  # for the tests after this one
    assert code == 2, run.stderr
    assert time.monotonic() - t_removed < 3.0 + 1.0 + 15.0  # noticed (1 s), given up (3 s), ended
    last = [line for line in run.stderr.splitlines() if line.strip()][-1]
    assert "did not come back for 3 s" in last and "Traceback" not in run.stderr, run.stderr
    meta = json.loads((out / "session.json").read_text())
    assert meta["end_reason"] == "device_lost" and meta["complete"] is False and meta["aborted"] is False
    evs = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]  # every line intact
    assert [e for e in evs if e["type"] == "speech"], "the speech before the loss is kept"
    assert any(e["type"] == "health" and not e["audio_ok"] for e in evs)
    assert (out / "report.html").is_file()
