"""The command line: help, bad input as one line with exit code 2, nothing written."""

from __future__ import annotations

import pytest

from support.cli import run_cli


@pytest.mark.parametrize("command", [[], ["replay"], ["live"], ["devices"]])
def test_help_exits_zero(command):
    result = run_cli(*command, "--help")
    assert result.returncode == 0
    assert "usage: session-monitor" in result.stdout


def one_line_error(result, *needles):
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_unknown_command_and_option():
    one_line_error(run_cli("dance"), "invalid choice")
    one_line_error(run_cli("replay", "x.wav", "--sped", "max"), "unrecognized arguments")


def test_bad_files(tmp_path):
    one_line_error(run_cli("replay", str(tmp_path / "missing.wav")), "no such file")
    one_line_error(run_cli("replay", str(tmp_path)), "is a folder")
    (tmp_path / "empty.wav").write_bytes(b"")
    one_line_error(run_cli("replay", str(tmp_path / "empty.wav")), "is empty")
    (tmp_path / "noise.wav").write_bytes(bytes(range(256)) * 40)
    one_line_error(run_cli("replay", str(tmp_path / "noise.wav")), "not a readable audio file")


def test_truncated_wav(tmp_path):
    import numpy as np
    import soundfile as sf

    path = tmp_path / "t.wav"
    sf.write(path, np.zeros(16000, np.float32), 16000)
    path.write_bytes(path.read_bytes()[:30])
    one_line_error(run_cli("replay", str(path), "--session-dir", str(tmp_path / "s")))
    assert not (tmp_path / "s").exists()


def test_bad_options(tmp_path):
    import numpy as np
    import soundfile as sf

    path = tmp_path / "a.wav"
    sf.write(path, np.zeros((16000, 2), np.float32), 16000)
    one_line_error(run_cli("replay", str(path), "--speed", "fast"), "--speed")
    one_line_error(run_cli("replay", str(path), "--roles", "therapist"), "--roles names 1 speaker")
    one_line_error(run_cli("replay", str(path), "--roles", "doctor,patient"), "'doctor' is not a role")
    one_line_error(run_cli("replay", str(path), "--roles", "patient,patient"), "once")
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[speech_activity]\nthreshold = 2\n")
    one_line_error(run_cli("replay", str(path), "--config", str(cfg)), "bad.toml: speech_activity.threshold=2 is out of range")
    one_line_error(run_cli("replay", str(path), "--clinician", "nobody"), "nobody.toml not found")


def test_unwritable_session_folder(tmp_path):
    import os

    import numpy as np
    import soundfile as sf

    if os.geteuid() == 0:
        target = "/proc/session-monitor-test"  # not creatable even for root
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = str(locked / "s")
    path = tmp_path / "a.wav"
    sf.write(path, np.zeros(16000, np.float32), 16000)
    one_line_error(run_cli("replay", str(path), "--no-asr", "--session-dir", target), "cannot create folder")
