"""Synthetic session folders for the tuning tests: a few minutes of conversation with planted
ruptures (known intervals), written as a session's events.jsonl in a fraction of a second."""

from __future__ import annotations

import json
from pathlib import Path

from session_monitor.events import SessionEvent, event_to_json
from support.conversation import Conversation

OPEN_Q = "How are you feeling about your father now?"


def _calm(conv: Conversation, n: int) -> None:
    for i in range(n):
        conv.turn("therapist", "That sounds important to you, and I appreciate you sharing it.")
        conv.turn("patient", f"Yes, and on day {i} I called my sister, which helped me feel less alone.")


def write_session(folder: Path, *, withdrawal: bool = True, confrontation: bool = True, gap_s: float = 3.8,
                  quiet_db: float = -38.0, calm_turns: int = 4) -> list[dict]:
    """Write ``folder/events.jsonl`` and ``session.json``; returns the planted rupture intervals
    (annotation objects: the first cue to the end of the last cue's turn)."""
    conv = Conversation()
    conv.warm_up()
    ruptures = []
    if withdrawal:
        start = conv.turn("therapist", OPEN_Q)[1]
        conv.turn("patient", "I don't know.", gap_s=gap_s, level_db=quiet_db)
        conv.turn("therapist", "What comes up for you when we talk about him?")
        end = conv.turn("patient", "Nothing much.", gap_s=gap_s, level_db=quiet_db)[1]
        ruptures.append({"start": round(start, 3), "end": round(end, 3), "kind": "withdrawal",
                         "marker": "minimal_response"})
    _calm(conv, calm_turns)
    if confrontation:
        start = conv.turn("therapist", "Let's go back to the list of worries from last time and look at it together.")[1]
        conv.turn("patient", "You don't understand what I'm saying.", level_db=-23.0, f0_hz=135.0, interrupt_s=1.0)
        conv.turn("therapist", "I hear that.")
        end = conv.turn("patient", "This isn't helping, we keep doing the same list.", level_db=-24.0)[1]
        ruptures.append({"start": round(start - 1.0, 3), "end": round(end, 3), "kind": "confrontation",
                         "marker": "complaint_about_therapist"})
    _calm(conv, calm_turns)
    end_t = round(conv.t + 20.0, 4)
    folder.mkdir(parents=True, exist_ok=True)
    events = [SessionEvent(t=0.0, state="started", source="synthetic", sample_rate=16000, channels=2,
                           roles=("therapist", "patient"))]
    events += conv.sorted_events()
    events.append(SessionEvent(t=end_t, state="ended", source="synthetic", sample_rate=16000, channels=2,
                               roles=("therapist", "patient")))
    (folder / "events.jsonl").write_text("".join(event_to_json(e) + "\n" for e in events), encoding="utf-8")
    (folder / "session.json").write_text(json.dumps({"id": folder.name, "settings": {"values": {
        "audio": {"block_ms": 96}}}}), encoding="utf-8")
    return ruptures


def write_annotations(path: Path, ruptures: list[dict]) -> Path:
    path.write_text(json.dumps(ruptures), encoding="utf-8")
    return path
