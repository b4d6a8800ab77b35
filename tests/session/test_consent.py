"""Consent records: a file or a text, checked as a whole (session/consent.py)."""

from __future__ import annotations

import pytest

from session_monitor.errors import InputError
from session_monitor.session.consent import load_consent


def test_consent_file_is_validated(tmp_path):
    good = tmp_path / "consent.toml"
    good.write_text('who = ["patient: A. B."]\nwhen = 2026-11-26\ncovers = ["monitoring", "audio"]\n')
    record = load_consent(str(good))
    assert record["who"] == ["patient: A. B."] and record["covers"] == ["monitoring", "audio"]
    bad = tmp_path / "bad.toml"
    for text, pattern in [
        ('who = []\nwhen = 2026-11-26\ncovers = ["monitoring"]\n', "'who' must name"),
        ('who = "A"\nwhen = "yesterday"\ncovers = ["monitoring"]\n', "not an ISO date"),
        ('who = "A"\nwhen = 2026-11-26\ncovers = ["audio"]\n', "must include monitoring"),
        ('who = "A"\nwhen = 2026-11-26\ncovers = ["everything"]\n', "'covers' must list"),
        ("who = \n", "not valid TOML"),
    ]:
        bad.write_text(text)
        with pytest.raises(InputError, match=pattern):
            load_consent(str(bad))
    with pytest.raises(InputError, match="too short"):
        load_consent("ok")
    assert load_consent("A. B. consented to monitoring and transcript on 2026-11-26")["covers"] == [
        "monitoring", "transcript"]
