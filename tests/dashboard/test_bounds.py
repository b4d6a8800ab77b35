"""The dashboard bounds what it accepts: bodies capped before reading, early presses kept at t = 0.

Real server (uvicorn on 127.0.0.1), raw sockets for requests a browser would not send, and a
real pipeline replaying a synthetic recording for the early presses.
"""

from __future__ import annotations

import json
import socket
import threading

import numpy as np
import soundfile as sf

from session_monitor.audio.file_source import FileSource
from session_monitor.dashboard import Dashboard
from session_monitor.dashboard.server import BODY_MAX_BYTES
from session_monitor.dashboard.session import EARLY_MAX, DashboardAnnotations
from session_monitor.event_log import read_events
from session_monitor.rupture.model import build_analyzers
from session_monitor.session.bus import EventBus
from session_monitor.session.folder import claim_session_dir
from session_monitor.session.pipeline import Pipeline
from session_monitor.session.store import SessionStore
from session_monitor.settings.loader import load_settings
from support.audio import SR, noise


def raw_request(port: int, head: str, body_parts: list[bytes] = ()) -> int:
    """Send ``head`` and ``body_parts`` without finishing the body; the status the server answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head.encode())
        for part in body_parts:
            sock.sendall(part)
        sock.settimeout(5)
        reply = sock.recv(200)  # times out (socket.timeout, a failure) if the server waits for the rest
    return int(reply.split(b" ", 2)[1])


def test_a_huge_declared_body_is_refused_before_a_byte_is_read():
    calls = []
    with Dashboard(port=0, on_annotation=lambda label, note: calls.append(label)) as dash:
        head = ("POST /annotate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {400 * 1024 * 1024}\r\n\r\n")
        assert raw_request(dash.port, head, [b'{"label": "rupture"']) == 413  # the other 400 MiB never sent
    assert calls == []


def test_a_chunked_body_is_read_only_up_to_the_cap():
    with Dashboard(port=0, on_annotation=lambda label, note: None) as dash:
        head = ("POST /annotate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                "Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 3000
        parts = [f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"] * 2  # 6000 bytes > cap, no last chunk
        assert 2 * len(chunk) > BODY_MAX_BYTES
        assert raw_request(dash.port, head, parts) == 413


def test_a_small_body_still_works():
    calls = []
    with Dashboard(port=0, on_annotation=lambda label, note: calls.append((label, note))) as dash:
        body = json.dumps({"label": "rupture", "note": "n"}).encode()
        head = ("POST /annotate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        assert raw_request(dash.port, head, [body]) == 204
    assert calls == [("rupture", "n")]


def test_presses_before_the_pipeline_starts_are_kept_at_t0(tmp_path):
    annotations = DashboardAnnotations()
    annotations("rupture", "pressed while the model loaded")
    annotations("false_alarm")
    path = tmp_path / "quiet.wav"
    sf.write(path, np.stack([noise(3 * SR), noise(3 * SR, seed=1)], axis=1), SR)
    settings = load_settings(overrides={"transcriber": {"enabled": False}})
    claim = claim_session_dir(tmp_path / "s")
    store = SessionStore(claim)
    store.start({"mode": "test"})
    bus = EventBus()
    bus.subscribe(store.write)
    source = FileSource(path, block_ms=settings.audio.block_ms, speed=None)
    pipeline = Pipeline.from_settings(settings, source, bus, roles=["therapist", "patient"], worker=None,
                                      deterministic=True,
                                      analyzers=build_analyzers(settings))
    annotations.attach(pipeline, store, None)
    pipeline.run(threading.Event())
    store.finish(complete=True)
    claim.release()
    marks = [e for e in read_events(tmp_path / "s") if e["type"] == "annotation"]
    assert [(m["t"], m["label"], m["note"]) for m in marks] == [
        (0.0, "rupture", "pressed while the model loaded"), (0.0, "false_alarm", "")]


def test_early_presses_are_bounded_and_the_one_over_is_refused_not_dropped():
    annotations = DashboardAnnotations()
    for _ in range(EARLY_MAX):
        annotations("rupture")
    try:
        annotations("rupture")
    except Exception as exc:  # the server turns it into an error the page shows
        assert "waiting for the session to start" in str(exc)
    else:
        raise AssertionError("press beyond the bound was accepted")
