"""A session folder belongs to one run: claimed first, refused to a second run, never mixed, no symlinks."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time

import pytest

from session_monitor.errors import SessionDirError
from session_monitor.event_log import read_events
from session_monitor.events import Annotation, SessionEvent
from session_monitor.session.folder import LOCK_NAME, claim_session_dir, open_private
from session_monitor.session.store import SessionStore
from support.audio import SHARED_DATA
from support.cli import run_cli

CONVERSATION = SHARED_DATA / "conversation_2speakers.wav"
needs_data = pytest.mark.skipif(not CONVERSATION.is_file(), reason=f"{CONVERSATION} is absent")


def test_a_claimed_folder_is_refused_to_a_second_claim_until_released(tmp_path):
    folder = tmp_path / "s"
    claim = claim_session_dir(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and (folder / LOCK_NAME).is_file()
    for force in (False, True):  # --force never takes a folder another run holds
        with pytest.raises(SessionDirError, match=r"is in use by another session-monitor run \(pid \d+\)"):
            claim_session_dir(folder, force=force)
    claim.release()
    assert not (folder / LOCK_NAME).exists() and folder.is_dir()
    claim_session_dir(folder).release()  # empty again: free to claim


def test_a_lock_left_by_a_killed_run_does_not_block(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / LOCK_NAME).write_text('{"pid": 999999}')  # the file stays; the kernel dropped the flock
    with claim_session_dir(folder) as claim:
        assert claim.held


def test_a_folder_with_an_earlier_session_needs_force_and_force_moves_it_aside_whole(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    for name in ("events.jsonl", "session.json", "audio.flac", "report.html", "annotations.json"):
        (folder / name).write_text(f"old {name}")
    with pytest.raises(SessionDirError, match="not empty; choose a new folder or add --force"):
        claim_session_dir(folder)
    assert not (folder / LOCK_NAME).exists(), "a refused claim leaves no lock file"
    with claim_session_dir(folder, force=True) as claim:
        assert sorted(os.listdir(folder)) == [LOCK_NAME]  # nothing of the old session is left to mix
        old = claim.previous
        assert old is not None and old.parent == tmp_path and old.name.startswith("s.replaced-")
        assert sorted(os.listdir(old)) == ["annotations.json", "audio.flac", "events.jsonl", "report.html",
                                           "session.json"]
        assert (old / "annotations.json").read_text() == "old annotations.json"


def test_a_failed_run_leaves_no_folder_it_made(tmp_path):
    claim = claim_session_dir(tmp_path / "new")
    claim.release(remove_if_empty=True)
    assert not (tmp_path / "new").exists()
    mine = tmp_path / "mine"
    mine.mkdir()  # a folder the user made stays
    claim_session_dir(mine).release(remove_if_empty=True)
    assert mine.is_dir()


def test_no_symlink_inside_the_folder_is_followed(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("not yours")
    folder = tmp_path / "s"
    claim = claim_session_dir(folder)
    (folder / "events.jsonl").symlink_to(outside)
    with pytest.raises(SessionDirError, match="events.jsonl: already exists"):  # O_EXCL: links never followed
        SessionStore(claim)
    with pytest.raises(SessionDirError, match="is a symbolic link"):
        read_events(folder)
    with pytest.raises(SessionDirError, match="is a symbolic link"):
        open_private(folder / "events.jsonl", os.O_WRONLY | os.O_TRUNC)
    claim.release()
    assert outside.read_text() == "not yours"


def test_a_store_never_appends_to_another_runs_events(tmp_path):
    claim = claim_session_dir(tmp_path / "s")
    store = SessionStore(claim)
    store.start({"mode": "test"})
    store.write(SessionEvent(t=0.0, state="started", source="x", sample_rate=16000, channels=1))
    with pytest.raises(SessionDirError, match="already exists; a session folder holds one run"):
        SessionStore(claim)
    store.write(Annotation(t=1.0, label="rupture", source="test"))
    store.finish(complete=True)
    claim.release()
    assert [e["type"] for e in read_events(tmp_path / "s")] == ["session", "annotation"]


@needs_data
def test_two_runs_into_one_new_folder_never_merge(tmp_path):
    """The issue's case: both runs used to exit 0 appending into one events.jsonl."""
    folder = tmp_path / "s"
    first = subprocess.Popen([sys.executable, "-m", "session_monitor", "replay", str(CONVERSATION), "--speed", "1",
                              "--no-asr", "--no-view", "--no-report", "--session-dir", str(folder)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (folder / "events.jsonl").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        second = run_cli("replay", str(CONVERSATION), "--no-asr", "--no-view", "--session-dir", str(folder))
        also_forced = run_cli("replay", str(CONVERSATION), "--no-asr", "--no-view", "--session-dir", str(folder),
                              "--force")
        assert first.poll() is None, "the first run (30 s at real time) is still running"
    finally:
        first.send_signal(signal.SIGINT)  # a clean end: the session is complete up to here
        out, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    for result in (second, also_forced):
        assert result.returncode == 2 and result.stderr.count("\n") == 1
        assert "is in use by another session-monitor run" in result.stderr
    evs = read_events(folder)
    assert [e["state"] for e in evs if e["type"] == "session"] == ["started", "ended"]  # one run's events only
    assert json.loads((folder / "session.json").read_text())["complete"] is True
    assert sorted(os.listdir(folder)) == ["events.jsonl", "session.json"]  # lock released


@needs_data
def test_force_starts_clean_and_keeps_the_old_session_aside(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir(mode=0o700)
    (folder / "annotations.json").write_text('[{"start": 1, "end": 2, "kind": "withdrawal"}]')
    (folder / "audio.flac").write_bytes(b"old audio")
    result = run_cli("replay", str(SHARED_DATA / "stereo_diarization.wav"), "--no-asr", "--no-view",
                     "--session-dir", str(folder), "--force")
    assert result.returncode == 0, result.stderr
    assert "the earlier session was moved to" in result.stderr
    assert sorted(os.listdir(folder)) == ["events.jsonl", "report.html", "session.json", "timeline.csv"]
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("s.replaced-")]
    assert len(aside) == 1 and sorted(os.listdir(aside[0])) == ["annotations.json", "audio.flac"]


def test_report_never_writes_through_a_planted_link(tmp_path):
    claim = claim_session_dir(tmp_path / "s")
    store = SessionStore(claim)
    store.start({"mode": "test"})
    store.write(Annotation(t=1.0, label="rupture", source="test"))
    store.finish(complete=True)
    claim.release()
    outside = tmp_path / "outside.txt"
    outside.write_text("not yours")
    (tmp_path / "s" / "report.html.tmp").symlink_to(outside)
    result = run_cli("report", str(tmp_path / "s"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "report.html.tmp" in result.stderr
    assert outside.read_text() == "not yours"


def test_a_model_that_fails_to_load_leaves_no_folder(tmp_path):
    """The folder is claimed before the model loads; a load that fails removes what it made."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "model.bin").write_text("junk")
    (model / "config.json").write_text("{}")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[transcriber]\nmodel = "{model}"\n')
    result = run_cli("replay", str(SHARED_DATA / "stereo_diarization.wav"), "--no-view", "--config", str(cfg),
                     "--session-dir", str(tmp_path / "s"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "cannot be loaded" in result.stderr
    assert not (tmp_path / "s").exists()
