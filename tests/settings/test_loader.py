"""Settings: defaults complete and documented; bad values refused in one line."""

from __future__ import annotations

import dataclasses
import re

import pytest

from session_monitor.errors import ConfigError
from session_monitor.settings.loader import default_config_path, load_settings


def write(tmp_path, text: str):
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_defaults_load_and_every_key_has_a_comment():
    settings = load_settings()
    assert settings.speech_activity.min_pause_ms == 200
    assert settings.prosody.hop_ms == 10
    lines = default_config_path().read_text().splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^[a-z_]+ = ", line):
            assert lines[i - 1].startswith("#"), f"default.toml line {i + 1} has no comment: {line}"
    keys = {line.split(" = ")[0] for line in lines if re.match(r"^[a-z_]+ = ", line)}
    for section in dataclasses.fields(settings):
        value = getattr(settings, section.name)
        if dataclasses.is_dataclass(value):
            for f in dataclasses.fields(value):
                assert f.name in keys, f"{section.name}.{f.name} is not in default.toml"


def test_override_file_changes_only_what_it_names(tmp_path):
    s = load_settings(write(tmp_path, "[speech_activity]\nmin_pause_ms = 300\n"))
    assert s.speech_activity.min_pause_ms == 300
    assert s.speech_activity.utterance_end_ms == 500
    assert s.sources[-1].endswith("c.toml")


@pytest.mark.parametrize(
    "text,pattern",
    [
        ("[speech_activity]\nmin_pause_ms = 10\n", r"c\.toml: speech_activity\.min_pause_ms=10 is out of range; use 50\.\.5000"),
        ("[speech_activity]\nthreshold = 1.4\n", r"speech_activity\.threshold=1\.4 is out of range; use 0\.\.1"),
        ("[speech_activity]\nmin_pause_ms = 'long'\n", r"speech_activity\.min_pause_ms='long' has the wrong type; use an integer"),
        ("[speech_activity]\nmin_pause_ms = 2.5\n", r"has the wrong type; use an integer"),
        ("[transcriber]\nenabled = 1\n", r"transcriber\.enabled=1 has the wrong type; use true/false"),
        ("[speech_activity]\npause = 1\n", r"unknown key speech_activity\.pause; known keys: threshold"),
        ("[nonsense]\na = 1\n", r"unknown section \[nonsense\]"),
        ("[speech_activity\n", r"invalid TOML"),
        ("[transcriber]\ndevice = 'tpu'\n", r"transcriber\.device='tpu' is not allowed; use one of cpu, cuda, auto"),
        ("[prosody]\nfmin_hz = 300.0\nfmax_hz = 200.0\n", r"fmin_hz must be below prosody\.fmax_hz"),
        ("speech_activity = 3\n", r"speech_activity must be a \[speech_activity\] table"),
    ],
)
def test_bad_settings_are_one_line_errors(tmp_path, text, pattern):
    with pytest.raises(ConfigError, match=pattern) as info:
        load_settings(write(tmp_path, text))
    assert "\n" not in str(info.value)


def test_missing_config_file_and_clinician(tmp_path):
    with pytest.raises(ConfigError, match="no such settings file"):
        load_settings(tmp_path / "absent.toml")
    with pytest.raises(ConfigError, match="clinician profile .*nobody.toml not found"):
        load_settings(clinician="nobody")
    with pytest.raises(ConfigError, match="plain name"):
        load_settings(clinician="../etc/passwd")


def test_settings_digest_changes_with_the_values(tmp_path):
    a = load_settings()
    b = load_settings(write(tmp_path, "[speech_activity]\nmin_pause_ms = 300\n"))
    assert a.digest != b.digest and len(a.digest) == 16
