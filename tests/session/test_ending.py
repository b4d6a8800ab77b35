"""Every way a session can end ends cleanly: the signal matrix, the dashboard's end, no core files.

The matrix replays a real two-speaker session with the real Whisper model (``slow``) and sends
real signals to the real process at three moments: while the model loads (before the session
exists), while the pipeline runs, and a second signal while the session is ending.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from session_monitor.event_log import read_events
from session_monitor.session.folder import LOCK_NAME
from support.audio import SAMPLE_AUDIO, SHARED_DATA

CONVERSATION = SHARED_DATA / "conversation_2speakers.wav"
STEREO = SHARED_DATA / "stereo_diarization.wav"
#: A 2-minute two-speaker session with speech throughout: at --speed max transcription falls behind,
#: so ending it (finishing the pending utterances) takes seconds, long enough for a second signal.
SPEECH = SAMPLE_AUDIO / "calm_reflective.flac"
pytestmark = pytest.mark.skipif(not CONVERSATION.is_file(), reason=f"{CONVERSATION} is absent")


class Run:
    """``session-monitor replay ...`` in the background, its stderr collected line by line."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "session_monitor", "replay", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stderr), daemon=True)
        self._reader.start()

    def wait_for(self, test, what: str, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while not test():
            assert self.proc.poll() is None, f"ended before {what}: {''.join(self.lines)}"
            assert time.monotonic() < deadline, f"no {what} within {timeout_s} s"
            time.sleep(0.02)

    def finish(self) -> int:
        rc = self.proc.wait(timeout=180)
        self.proc.stdout.close()
        self._reader.join(5)
        return rc

    @property
    def stderr(self) -> str:
        return "".join(self.lines)


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def assert_clean_files(folder: Path) -> dict:
    """session.json says how it ended; events valid to the last line; the lock released; the report there."""
    meta = json.loads((folder / "session.json").read_text())
    lines = (folder / "events.jsonl").read_text().splitlines()
    assert lines and all(json.loads(line) for line in lines)  # every line, the last included, is whole
    assert len(read_events(folder)) == len(lines) == meta["events"]
    assert not (folder / LOCK_NAME).exists()
    assert (folder / "report.html").is_file() and (folder / "timeline.csv").is_file()
    return meta


MATRIX = [  # (signals, moment, expected exit code, expected end_reason)
    (("SIGINT",), "loading", 130, None),
    (("SIGTERM",), "loading", 130, None),
    (("SIGINT",), "running", 0, "stopped_by_user"),
    (("SIGTERM",), "running", 0, "terminated"),
    (("SIGHUP",), "running", 0, "hangup"),
    (("SIGINT", "SIGINT"), "running", 130, "aborted"),
    (("SIGTERM", "SIGINT"), "running", 130, "aborted"),
    (("SIGHUP", "SIGTERM"), "running", 130, "aborted"),
]


@pytest.mark.slow
@pytest.mark.parametrize("signals, moment, code, reason", MATRIX,
                         ids=["+".join(s) + "@" + m for s, m, _, _ in MATRIX])
def test_signal_matrix_ends_cleanly(tmp_path, signals, moment, code, reason):
    folder = tmp_path / "s"
    run = Run(str(SPEECH), "--no-view", "--session-dir", str(folder))
    if moment == "loading":  # the folder is claimed, the Whisper model is loading
        run.wait_for(lambda: (folder / LOCK_NAME).exists(), "claimed folder")
    else:
        run.wait_for(lambda: _lines(folder / "events.jsonl") >= 100, "100 events (transcription pending)")
        limits = Path(f"/proc/{run.proc.pid}/limits").read_text()
        core = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
        assert core.split()[4:6] == ["0", "0"], core  # soft and hard limit: no core file, ever
    for i, name in enumerate(signals):
        if i:
            time.sleep(0.05)  # the second arrives while the first is being honoured
        run.proc.send_signal(getattr(signal, name))
    rc = run.finish()
    assert rc == code, run.stderr
    assert "Traceback" not in run.stderr and "terminate called" not in run.stderr
    assert not list(Path.cwd().glob("core*")) and not list(tmp_path.glob("core*"))
    if reason is None:  # stopped before the session started: nothing written
        assert not folder.exists(), os.listdir(folder)
        assert "nothing was written" in run.stderr
        return
    meta = assert_clean_files(folder)
    assert meta["end_reason"] == reason
    assert meta["aborted"] is (reason == "aborted") and meta["complete"] is (reason != "aborted")
    assert read_events(folder)[-1]["type"] == "session" and read_events(folder)[-1]["state"] == "ended"


def test_end_of_input_is_a_complete_session(tmp_path):
    folder = tmp_path / "s"
    run = Run(str(STEREO), "--no-view", "--no-asr", "--session-dir", str(folder))
    assert run.finish() == 0, run.stderr
    meta = assert_clean_files(folder)
    assert (meta["complete"], meta["aborted"], meta["end_reason"]) == (True, False, "end_of_input")


def test_with_the_dashboard_the_session_is_complete_when_the_audio_ends(tmp_path):
    folder = tmp_path / "s"
    run = Run(str(STEREO), "--no-view", "--no-asr", "--session-dir", str(folder), "--dashboard",
              "--dashboard-port", "0")
    run.wait_for(lambda: "the timeline stays at" in run.stderr, "end of the audio")
    meta = json.loads((folder / "session.json").read_text())  # before Ctrl-C: already complete
    assert (meta["complete"], meta["end_reason"]) == (True, "end_of_input")
    assert (folder / "report.html").is_file()
    url = next(line for line in run.lines if "the timeline stays at" in line).split(" at ")[1].split(" - ")[0]
    request = urllib.request.Request(url + "annotate", data=b'{"label": "rupture", "note": "after"}',
                                     method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 204
    run.proc.send_signal(signal.SIGINT)  # closes the page
    assert run.finish() == 0, run.stderr
    meta = assert_clean_files(folder)
    assert (meta["complete"], meta["end_reason"]) == (True, "end_of_input")
    marks = [e for e in read_events(folder) if e["type"] == "annotation"]
    assert [(m["label"], m["note"]) for m in marks] == [("rupture", "after")]
    assert "after" in (folder / "timeline.csv").read_text() or "rupture" in (folder / "report.html").read_text()


def test_the_process_never_leaves_a_core_file():
    code = ("import resource\nfrom session_monitor.cli.main import main\n"
            "try:\n    main(['devices', '--json'])\nexcept SystemExit:\n    pass\n"
            "print(resource.getrlimit(resource.RLIMIT_CORE))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip().splitlines()[-1] == "(0, 0)", result.stderr


def _flac(path: Path, seconds: float = 20.0) -> bytes:
    import numpy as np
    import soundfile as sf

    y = (np.random.default_rng(0).standard_normal(int(16000 * seconds)) * 0.1).astype(np.float32)
    sf.write(path, y, 16000)
    return path.read_bytes()


def test_a_truncated_flac_is_refused_before_the_folder_exists(tmp_path):
    whole = _flac(tmp_path / "whole.flac")
    cut = tmp_path / "cut.flac"
    cut.write_bytes(whole[: len(whole) // 2])  # a copy that stopped half-way
    result = subprocess.run([sys.executable, "-m", "session_monitor", "replay", str(cut), "--no-asr", "--no-view",
                             "--session-dir", str(tmp_path / "s")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "is truncated (its header promises 20.0 s" in result.stderr
    assert not (tmp_path / "s").exists()


def test_damage_the_header_cannot_show_ends_the_session_as_truncated_input(tmp_path):
    data = bytearray(_flac(tmp_path / "whole.flac"))
    third = len(data) // 3
    data[third:third + 4000] = bytes(4000)  # the middle overwritten; the end is intact
    damaged = tmp_path / "damaged.flac"
    damaged.write_bytes(bytes(data))
    folder = tmp_path / "s"
    run = Run(str(damaged), "--no-view", "--no-asr", "--session-dir", str(folder))
    assert run.finish() == 2, run.stderr
    assert "truncated input" in run.stderr and "Traceback" not in run.stderr
    meta = assert_clean_files(folder)
    assert (meta["complete"], meta["aborted"], meta["end_reason"]) == (False, False, "truncated_input")
    assert 3 < max(e["t"] for e in read_events(folder)) < 15  # the events up to the damage are kept
