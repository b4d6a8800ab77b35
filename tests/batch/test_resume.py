"""A session is skipped only when complete for the same input bytes, settings and roles."""

from __future__ import annotations

import json

from session_monitor.batch.resume import file_digest, is_done, run_key


def done_folder(tmp_path, key, *, complete=True, report=True):
    folder = tmp_path / "s"
    folder.mkdir(exist_ok=True)
    (folder / "events.jsonl").write_text("{}\n")
    (folder / "session.json").write_text(json.dumps({"complete": complete, "batch": key}))
    if report:
        (folder / "report.html").write_text("<html></html>")
    return folder


def test_skip_needs_the_same_input_settings_and_roles(tmp_path):
    audio = tmp_path / "a.wav"
    audio.write_bytes(b"one")
    key = run_key(file_digest(audio), "abc", None)
    folder = done_folder(tmp_path, key)
    assert is_done(folder, key)
    assert not is_done(folder, run_key(file_digest(audio), "abd", None))  # other settings
    assert not is_done(folder, run_key(file_digest(audio), "abc", ("patient", "therapist")))  # other roles
    audio.write_bytes(b"two")
    assert not is_done(folder, run_key(file_digest(audio), "abc", None))  # the recording changed


def test_an_interrupted_or_unreported_session_is_not_done(tmp_path):
    key = run_key("0" * 64, "abc", None)
    assert not is_done(done_folder(tmp_path, key, complete=False), key)
    folder = done_folder(tmp_path, key)
    (folder / "report.html").unlink()
    assert not is_done(folder, key)
    (tmp_path / "s" / "session.json").write_text("{torn")
    assert not is_done(tmp_path / "s", key)
    assert not is_done(tmp_path / "missing", key)
