"""Consent, what is stored, and that nothing leaves the machine."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from support.audio import SR, espeak, noise
from support.cli import events, run_cli
from support.live_run import CONSENT, LiveRun

SUPPORT = Path(__file__).resolve().parents[1] / "support"


def speech_wav(tmp_path) -> Path:
    y = np.concatenate([noise(SR // 2), espeak("I have been sleeping badly this month"), noise(SR, seed=1)])
    path = tmp_path / "speech.wav"
    sf.write(path, np.stack([y, noise(len(y), seed=2)], axis=1), SR)
    return path


def test_live_refuses_to_start_without_consent(tmp_path):
    result = run_cli("live", "--session-dir", str(tmp_path / "s"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "consent record" in result.stderr
    assert not (tmp_path / "s").exists()


@pytest.mark.audio_device
def test_consent_is_recorded_and_audio_stored_only_when_covered(tmp_path, pulse):
    cfg = tmp_path / "audio.toml"
    cfg.write_text("[session]\nstore_audio = true\n")
    # asked for in the settings, but the consent does not cover audio: refused up front
    result = subprocess.run(
        [sys.executable, "-m", "session_monitor", "live", "--device", "pulse", "--config", str(cfg),
         "--consent", CONSENT, "--session-dir", str(tmp_path / "no")],
        capture_output=True, text=True, env=pulse.env, timeout=60,
    )
    assert result.returncode == 2 and "does not grant audio" in result.stderr
    assert not (tmp_path / "no").exists()
    consent = tmp_path / "consent.json"
    consent.write_text(json.dumps({"who": ["patient: A. B."], "when": "2026-11-26T10:00",
                                   "covers": {"monitoring": True, "transcript": True, "audio": True}}))
    out = tmp_path / "yes"
    run = LiveRun("--device", "pulse", "--config", str(cfg), "--consent", str(consent), "--duration", "3",
                  "--no-asr", "--session-dir", str(out), "--no-view", env=pulse.env)
    run.wait_ready()
    assert run.wait() == 0, run.stderr
    meta = json.loads((out / "session.json").read_text())
    assert meta["consent"]["who"] == ["patient: A. B."] and meta["consent"]["granted"]["audio"] is True
    audio = out / "audio.flac"
    assert stat.S_IMODE(audio.stat().st_mode) == 0o600
    info = sf.info(audio)
    assert info.samplerate == SR and info.channels == 2 and info.duration == pytest.approx(3.0, abs=0.2)


@pytest.mark.audio_device
def test_live_run_stores_no_audio_by_default(tmp_path, pulse):
    out = tmp_path / "s"
    run = LiveRun("--device", "pulse", "--consent", CONSENT, "--duration", "2", "--no-asr", "--session-dir",
                  str(out), "--no-view", env=pulse.env)
    run.wait_ready()
    assert run.wait() == 0, run.stderr
    assert sorted(p.name for p in out.iterdir()) == ["events.jsonl", "report.html", "session.json", "timeline.csv"]
    assert json.loads((out / "session.json").read_text())["consent"]["text"] == CONSENT


@pytest.mark.slow
def test_store_transcript_false_keeps_features_but_no_words(tmp_path):
    cfg = tmp_path / "private.toml"
    cfg.write_text("[privacy]\nstore_transcript = false\n")
    out = tmp_path / "s"
    result = run_cli("replay", str(speech_wav(tmp_path)), "--config", str(cfg), "--session-dir", str(out),
                     "--no-view")
    assert result.returncode == 0, result.stderr
    evs = events(out)
    transcripts = [e for e in evs if e["type"] == "transcript"]
    assert transcripts, "the transcript event is kept, with its timing"
    assert all(e["text"] == "" and e["words"] == [] for e in transcripts)
    assert "sleeping" not in (out / "events.jsonl").read_text()
    assert [e for e in evs if e["type"] == "speech"] and [e for e in evs if e["type"] == "prosody"]
    report = (out / "report.html").read_text()  # says why the transcript is empty, not "no transcript"
    assert f"{len([e for e in transcripts if e.get('final', True)])} utterances were transcribed; their words " \
           "were not kept" in report and 'id="transcript"' not in report


@pytest.mark.slow
def test_a_session_that_keeps_no_words_shows_none_either(tmp_path):
    """privacy.store_transcript = false: the dashboard (its snapshot, what a page opened later
    replays) and the terminal view get the events as the folder stores them: transcripts with
    their timing only, no word."""
    import re
    import signal
    import urllib.request

    cfg = tmp_path / "private.toml"
    cfg.write_text("[privacy]\nstore_transcript = false\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "session_monitor", "replay", str(speech_wav(tmp_path)), "--config", str(cfg),
         "--session-dir", str(tmp_path / "s"), "--dashboard", "--dashboard-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    url, seen = None, []
    try:
        for line in proc.stderr:
            seen.append(line)
            match = re.search(r"dashboard at (\S+)", line)
            if match:
                url = match.group(1)
            if "timeline stays" in line:
                break
        assert url, "".join(seen)
        base, _, query = url.partition("?")  # loopback: no token
        events_url = f"{base.rstrip('/')}/events" + (f"?{query}" if query else "")
        with urllib.request.urlopen(events_url, timeout=10) as stream:
            for raw in stream:
                if raw.startswith(b"data: "):
                    snapshot = json.loads(raw[6:])
                    break
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:  # the dashboard holds the process open: never leave it behind
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0
    lines = snapshot["transcript"]
    assert lines and all(line["text"] == "" for line in lines), lines
    assert "sleeping" not in json.dumps(snapshot).lower()
    assert "sleeping" not in (out + "".join(seen)).lower()  # nor the terminal's lines, nor a log


def _guarded(log: Path, *args: str, env=None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SUPPORT / "netguard.py"), str(log), "--", *args],
                          capture_output=True, text=True, env=env, **kwargs)


def test_the_guard_itself_blocks_the_network(tmp_path):
    log = tmp_path / "net.log"
    code = ("import sys; sys.path.insert(0, %r); import netguard; netguard.install(%r)\n"
            "import urllib.request\n"
            "try:\n    urllib.request.urlopen('http://huggingface.co', timeout=2)\nexcept OSError:\n    pass\n"
            % (str(SUPPORT), str(log)))
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)
    assert "huggingface.co" in log.read_text()


@pytest.mark.slow
def test_replay_with_dashboard_opens_no_network_connection(tmp_path):
    import re
    import signal
    import urllib.request

    log = tmp_path / "net.log"
    log.write_text("")
    proc = subprocess.Popen(
        [sys.executable, str(SUPPORT / "netguard.py"), str(log), "--", "replay", str(speech_wav(tmp_path)),
         "--session-dir", str(tmp_path / "s"), "--no-view", "--dashboard", "--dashboard-port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    url = None
    for line in proc.stderr:
        match = re.search(r"dashboard at (\S+)", line)
        if match:
            url = match.group(1)
        if "timeline stays" in line:
            break
    assert url, "no dashboard address printed"
    with urllib.request.urlopen(url, timeout=10) as page:  # loopback is allowed
        assert page.status == 200
    proc.send_signal(signal.SIGINT)
    assert proc.wait(30) == 0
    assert log.read_text() == "", log.read_text()
    assert any(e["type"] == "transcript" for e in events(tmp_path / "s"))


@pytest.mark.slow
@pytest.mark.audio_device
def test_live_opens_no_network_connection(tmp_path, pulse):
    log = tmp_path / "net.log"
    log.write_text("")
    result = _guarded(log, "live", "--device", "pulse", "--consent", CONSENT, "--duration", "3",
                      "--session-dir", str(tmp_path / "s"), "--no-view", env=pulse.env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert log.read_text() == ""
    assert any(e["type"] == "transcript" or e["type"] == "health" for e in events(tmp_path / "s"))


@pytest.mark.slow
@pytest.mark.audio_device
def test_a_consent_without_the_transcript_keeps_no_words(tmp_path, pulse):
    """A consent text grants monitoring only: the words are heard and used, but none is stored,
    not in transcripts, not quoted in a marker's explanation, not in the report."""
    y = np.concatenate([noise(SR // 2), espeak("I feel like this is going nowhere"), noise(SR, seed=1)])
    played = tmp_path / "played.wav"
    sf.write(played, np.stack([noise(len(y), seed=2), y], axis=1), SR)  # right = patient
    out = tmp_path / "s"
    run = LiveRun("--device", "pulse", "--roles", "therapist,patient", "--consent", CONSENT, "--duration", "8",
                  "--session-dir", str(out), "--no-view", env=pulse.env)
    run.wait_ready()
    pulse.play(played)
    assert run.wait() == 0, run.stderr
    assert "does not grant the transcript: no words are kept" in run.stderr
    evs = events(out)
    transcripts = [e for e in evs if e["type"] == "transcript"]
    assert transcripts and all(e["text"] == "" and e["words"] == [] for e in transcripts)
    lexical = [e for e in evs if e["type"] == "marker" and e["cue"] == "lexical"]
    assert lexical, "the words were still used: the complaint is a marker"
    assert all(e["explanation"].endswith(": \u2018\u2026\u2019") for e in lexical), lexical
    for name in ("events.jsonl", "report.html", "timeline.csv"):
        text = (out / name).read_text().lower()
        assert "nowhere" not in text and "feel like" not in text, name
    meta = json.loads((out / "session.json").read_text())
    assert meta["words_kept"] is False and meta["consent"]["granted"]["transcript"] is False
