"""File names a careless user (or a hostile one) gives: too long, with a newline, not UTF-8.

Each is refused with exit 2 and one printable line, and nothing is written.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

LONG = "x" * 300  # above NAME_MAX (255)
NAMES = {"too long": LONG + ".wav", "newline": "a\nb.wav", "not utf-8": b"a\xffb.wav"}


def run(args: list, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "session_monitor", *args], capture_output=True, timeout=120,
                          cwd=cwd, env={**os.environ, "PYTHONIOENCODING": "utf-8"})


def one_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    err = result.stderr.decode("utf-8")  # printable: valid UTF-8, no lone surrogates
    assert err.count("\n") == 1 and err.startswith("session-monitor: error: ") and "Traceback" not in err
    return err


@pytest.mark.parametrize("kind", sorted(NAMES))
def test_odd_recording_names(tmp_path, kind):
    name = NAMES[kind]
    path = os.fsencode(tmp_path) + b"/" + (name if isinstance(name, bytes) else name.encode())
    one_line(run(["replay", path, "--no-view", "--session-dir", tmp_path / "s"], tmp_path))
    assert sorted(os.listdir(tmp_path)) == []


@pytest.mark.parametrize("option", ["--config", "--session-dir"])
def test_odd_names_for_settings_and_the_session_folder(tmp_path, option):
    recording = tmp_path / "r.wav"
    import numpy as np
    import soundfile as sf

    sf.write(recording, np.zeros(1600, np.float32), 16000)
    args = ["replay", recording, "--no-view", "--no-asr", option, tmp_path / LONG]
    if option == "--config":
        args += ["--session-dir", tmp_path / "s"]
    assert "too long" in one_line(run(args, tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["r.wav"]


def test_an_odd_consent_name(tmp_path):
    err = one_line(run(["live", "--consent", tmp_path / (LONG + ".toml"), "--session-dir", tmp_path / "s"], tmp_path))
    assert "no such consent file" in err
    assert sorted(os.listdir(tmp_path)) == []
