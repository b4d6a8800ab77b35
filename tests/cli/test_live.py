"""Live capture for real: a PulseAudio null sink, a recording played in with paplay,
``session-monitor live`` recording from the sink's monitor through sounddevice."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from support.audio import SR, espeak, noise
from support.cli import events, normalize_words
from support.live_run import consent_file

pytestmark = [pytest.mark.slow, pytest.mark.audio_device]


def test_live_capture_transcribes_and_times_speech(tmp_path, pulse):
    first = espeak("good morning how are you feeling today", voice="en-us+f3")
    second = espeak("I have been very tired this week", voice="en-us+m3")
    gap_s = 1.5
    y = np.concatenate([noise(SR // 2), first, noise(int(gap_s * SR), seed=1), second, noise(SR, seed=2)])
    stereo = np.zeros((len(y), 2), np.float32)
    stereo[:, 0] = y  # left = therapist channel
    stereo[:, 1] = noise(len(y), seed=3)
    recording = tmp_path / "played.wav"
    sf.write(recording, stereo, SR)

    out = tmp_path / "live"
    proc = subprocess.Popen(
        [sys.executable, "-m", "session_monitor", "live", "--device", "pulse", "--roles", "therapist,patient",
         "--duration", "12", "--session-dir", str(out), "--no-view", "--consent", consent_file(tmp_path)],
        stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=pulse.env,
    )
    ready = threading.Event()
    stderr_lines: list[str] = []

    def read_stderr():
        for line in proc.stderr:
            stderr_lines.append(line)
            if "ready: capturing" in line:
                ready.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    assert ready.wait(120), "".join(stderr_lines)
    time.sleep(0.5)
    pulse.play(recording)
    proc.wait(timeout=120)
    reader.join(5)
    assert proc.returncode == 0, "".join(stderr_lines)

    evs = events(out)
    speech = [e for e in evs if e["type"] == "speech" and e["speaker"] == "therapist"]
    assert len(speech) == 2, speech
    # durations and the silence between them as played, within 50 ms
    assert speech[0]["end"] - speech[0]["start"] == pytest.approx(len(first) / SR, abs=0.05)
    assert speech[1]["end"] - speech[1]["start"] == pytest.approx(len(second) / SR, abs=0.05)
    assert speech[1]["start"] - speech[0]["end"] == pytest.approx(gap_s, abs=0.05)
    words = normalize_words(" ".join(e["text"] for e in evs if e["type"] == "transcript" and e["final"]))
    for expected in ("morning", "feeling", "today", "tired", "week"):
        assert expected in words, words
    assert not [e for e in evs if e["type"] == "speech" and e["speaker"] == "patient"]
    health = [e for e in evs if e["type"] == "health"]
    assert health and all(h["audio_ok"] for h in health)
