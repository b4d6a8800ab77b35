"""What the dashboard page is sent, and the bounded history a newly opened page starts from.

Events are projected to small *page messages* (only what the page shows) and kept in
bounded histories: the last :data:`SPARK_WINDOW_S` seconds of signal for the
sparkline, the latest evidence, a few transcript lines, the latest health and level
per speaker, every alert band and annotation of the session (a few per hour), and a
downsampled whole-session timeline of at most :data:`TIMELINE_MAX_POINTS` points.
A 180-minute session at 10 signals/s therefore holds at most ~3,000 sparkline points
and 2,400 timeline points, however long it runs.

Everything here runs on the server's event-loop thread; the pipeline thread only
hands events over (see :class:`~session_monitor.dashboard.server.Dashboard`).
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

from session_monitor.events import Event

__all__ = ["PAGE_EVENT_TYPES", "Feed", "Timeline", "page_message", "shown_evidence"]

#: Event types the page shows; ``prosody`` becomes a per-speaker ``level``. Every type
#: :func:`page_message` turns into a page message must be here, or the server drops it.
PAGE_EVENT_TYPES = frozenset(
    {"signal", "alert", "marker", "transcript", "health", "session", "annotation", "prosody", "mi_figures"}
)

SPARK_WINDOW_S = 300.0  #: session seconds of signal the sparkline shows
SPARK_MIN_STEP_S = 0.1  #: sparkline points closer than this replace the previous one
TIMELINE_MAX_POINTS = 2400  #: whole-session timeline; buckets double in width past this
TIMELINE_BASE_STEP_S = 1.0
TRANSCRIPT_LINES = 6
EVIDENCE_ITEMS = 5
TEXT_MAX_CHARS = 240
MAX_BANDS = 2500
MAX_ANNOTATIONS = 2500
MAX_MARKERS = 400


def _num(value: Any) -> float | None:
    """A finite float rounded to 4 decimals, or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if math.isnan(value) or math.isinf(value):
        return None
    return round(float(value), 4)


def _text(value: Any) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= TEXT_MAX_CHARS else text[: TEXT_MAX_CHARS - 1] + "…"


def shown_evidence(items: Any, min_strength: float) -> list[dict[str, Any]]:
    """The top evidence items at least ``min_strength``, strongest first, with only the fields a
    display shows (the page's "why" list; the terminal view's "why" row)."""
    out = []
    for item in items or ():
        if not isinstance(item, dict) or (_num(item.get("strength")) or 0.0) < min_strength:
            continue
        out.append(
            {
                "marker": _text(item.get("marker", "")),
                "kind": _text(item.get("kind", "")),
                "strength": _num(item.get("strength")) or 0.0,
                "explanation": _text(item.get("explanation", "")),
                "speaker": _text(item.get("speaker", "")),
            }
        )
    out.sort(key=lambda e: -e["strength"])
    return out[:EVIDENCE_ITEMS]


#: The running MI figures the page shows (``mi_figures`` events), in its order.
MI_FIGURES = ("reflection_to_question", "complex_reflection_share", "open_question_share", "change_share",
              "input_share", "reflections", "questions", "change_talk", "sustain_talk")


def page_message(event: Event, *, min_marker_strength: float = 0.0) -> dict[str, Any] | None:
    """The page's form of ``event``, or None when the page does not show it (a marker, or an
    evidence item of a signal, weaker than ``min_marker_strength``: ``display.min_marker_strength``)."""
    kind = event.type
    t = _num(event.t) or 0.0
    if kind == "signal":
        return {
            "type": "signal",
            "t": t,
            "likelihood": _num(event.likelihood),
            "withdrawal": _num(event.withdrawal),
            "confrontation": _num(event.confrontation),
            "evidence": shown_evidence(event.evidence, min_marker_strength),
        }
    if kind == "alert":
        return {"type": "alert", "t": t, "state": _text(event.state), "kind": _text(event.kind)}
    if kind == "marker":
        if (_num(event.strength) or 0.0) < min_marker_strength:
            return None
        return {
            "type": "marker",
            "t": t,
            "speaker": _text(event.speaker),
            "kind": _text(event.kind),
            "marker": _text(event.marker),
            "strength": _num(event.strength),
            "explanation": _text(event.explanation),
        }
    if kind == "transcript":
        return {
            "type": "transcript",
            "t": t,
            "speaker": _text(event.speaker),
            "start": _num(event.start),
            "end": _num(event.end),
            "text": _text(event.text),
            "final": bool(event.final),
        }
    if kind == "health":
        return {
            "type": "health",
            "t": t,
            "overflows": getattr(event, "overflows", 0),
            "asr_queue": getattr(event, "asr_queue", 0),
            "asr_skipped": getattr(event, "asr_skipped", 0),
            "asr_errors": getattr(event, "asr_errors", 0),
            "asr_lag_s": _num(getattr(event, "asr_lag_s", None)),
            "audio_ok": bool(getattr(event, "audio_ok", True)),
            "message": _text(getattr(event, "message", "")),
            "problem": _text(getattr(event, "problem", "")),
            "channel": getattr(event, "channel", None),
            "speaker": _text(getattr(event, "speaker", None) or ""),
            "hint": _text(getattr(event, "hint", "")),
            "cleared": bool(getattr(event, "cleared", False)),
        }
    if kind == "session":
        return {
            "type": "session",
            "t": t,
            "state": _text(event.state),
            "source": _text(event.source),
            "complete": bool(getattr(event, "complete", True)),
        }
    if kind == "annotation":
        return {
            "type": "annotation",
            "t": t,
            "label": _text(event.label),
            "source": _text(event.source),
            "note": _text(getattr(event, "note", "")),
        }
    if kind == "mi_figures":
        return {"type": "mi_figures", "t": t,
                **{k: _num(getattr(event, k, None)) for k in MI_FIGURES}}
    if kind == "prosody":
        return {
            "type": "level",
            "t": t,
            "speaker": _text(event.speaker),
            "intensity_db": _num(event.intensity_db),
            "speaking": bool(getattr(event, "speaking", False)),
        }
    return None


class Timeline:
    """Whole-session likelihood, withdrawal and confrontation, downsampled by maximum.

    Each point is the maximum of its bucket (a brief peak must survive downsampling);
    buckets start :data:`TIMELINE_BASE_STEP_S` wide and double whenever there would be
    more than ``max_points``, so memory is bounded for any session length.
    """

    def __init__(self, *, max_points: int = TIMELINE_MAX_POINTS, step_s: float = TIMELINE_BASE_STEP_S):
        self.max_points = max_points
        self.step_s = step_s
        self._points: list[list[Any]] = []  # [bucket index, likelihood, withdrawal, confrontation]

    def __len__(self) -> int:
        return len(self._points)

    def add(self, t: float, values: tuple[float | None, float | None, float | None]) -> None:
        bucket = int(t // self.step_s)
        if self._points and self._points[-1][0] >= bucket:
            last = self._points[-1]
            for i, value in enumerate(values, start=1):
                if value is not None and (last[i] is None or value > last[i]):
                    last[i] = value
            return
        self._points.append([bucket, *values])
        if len(self._points) > self.max_points:
            self._coarsen()

    def _coarsen(self) -> None:
        merged: list[list[Any]] = []
        for point in self._points:
            bucket = point[0] // 2
            if merged and merged[-1][0] == bucket:
                last = merged[-1]
                for i in (1, 2, 3):
                    if point[i] is not None and (last[i] is None or point[i] > last[i]):
                        last[i] = point[i]
            else:
                merged.append([bucket, *point[1:]])
        self._points = merged
        self.step_s *= 2

    def to_page(self) -> dict[str, Any]:
        return {
            "type": "timeline",
            "step_s": self.step_s,
            "points": [[round(p[0] * self.step_s, 3), *p[1:]] for p in self._points],
        }


class Feed:
    """Bounded history of one session, in page messages, updated one event at a time."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.session: dict[str, Any] | None = None
        self.ended: dict[str, Any] | None = None
        self.now_t = 0.0
        self.spark: deque[list[Any]] = deque()  # [t, likelihood, withdrawal, confrontation]
        self.latest: dict[str, Any] | None = None
        self.latest_wall: float | None = None
        self.bands: deque[dict[str, Any]] = deque(maxlen=MAX_BANDS)
        self.markers: deque[dict[str, Any]] = deque(maxlen=MAX_MARKERS)
        self.transcript: deque[dict[str, Any]] = deque(maxlen=TRANSCRIPT_LINES)
        self.interim: dict[str, dict[str, Any]] = {}
        self.health: dict[str, Any] | None = None
        self.input_problems: dict[str, dict[str, Any]] = {}  # open input problems, by problem:channel
        self.levels: dict[str, dict[str, Any]] = {}
        self.annotations: deque[dict[str, Any]] = deque(maxlen=MAX_ANNOTATIONS)
        self.figures: dict[str, Any] | None = None
        self.timeline = Timeline()

    def apply(self, message: dict[str, Any], wall_s: float) -> list[dict[str, Any]]:
        """Update the history with one page message; returns what to broadcast.

        A signal whose evidence equals the previous signal's is broadcast without its
        ``evidence`` list (the page keeps the last one); the history keeps it whole.

        ``wall_s`` is the monotonic wall time at which the event was published, used
        only to tell a newly opened page how old the latest signal is.
        """
        kind = message["type"]
        t = message["t"]
        if kind == "session" and message["state"] == "started":
            self.reset()
        self.now_t = max(self.now_t, t)
        out = [message]
        if kind == "signal":
            if self.latest is not None and message["evidence"] == self.latest["evidence"]:
                out = [{k: v for k, v in message.items() if k != "evidence"}]  # page keeps the last list
            self._add_signal(message, wall_s)
        elif kind == "alert":
            self._add_alert(message)
        elif kind == "marker":
            self.markers.append(message)
        elif kind == "transcript":
            if message["final"]:
                self.interim.pop(message["speaker"], None)
                self.transcript.append(message)
            else:
                self.interim[message["speaker"]] = message
        elif kind == "health" and message.get("problem"):
            key = f"{message['problem']}:{message.get('channel')}"
            if message.get("cleared"):
                self.input_problems.pop(key, None)
            else:
                self.input_problems[key] = message
        elif kind == "health":
            self.health = message
        elif kind == "level":
            self.levels[message["speaker"]] = message
        elif kind == "annotation":
            self.annotations.append(message)
        elif kind == "mi_figures":
            self.figures = message
        elif kind == "session":
            if message["state"] == "started":
                self.session = message
            elif message["state"] == "ended":
                self.ended = message
                out.append(self.timeline.to_page())
        return out

    def _add_signal(self, message: dict[str, Any], wall_s: float) -> None:
        t = message["t"]
        point = [t, message["likelihood"], message["withdrawal"], message["confrontation"]]
        if self.spark and t - self.spark[-1][0] < SPARK_MIN_STEP_S:
            self.spark[-1] = point
        else:
            self.spark.append(point)
        while self.spark and self.spark[0][0] < t - SPARK_WINDOW_S:
            self.spark.popleft()
        self.latest = message
        self.latest_wall = wall_s
        self.timeline.add(t, (point[1], point[2], point[3]))

    def _add_alert(self, message: dict[str, Any]) -> None:
        open_band = next(
            (b for b in reversed(self.bands) if b["kind"] == message["kind"] and b["end"] is None), None
        )
        if message["state"] == "on" and open_band is None:
            self.bands.append({"kind": message["kind"], "start": message["t"], "end": None})
        elif message["state"] == "off" and open_band is not None:
            open_band["end"] = message["t"]

    def snapshot(self, wall_s: float, *, title: str) -> dict[str, Any]:
        """Everything a newly opened page needs before live messages."""
        window_start = self.now_t - SPARK_WINDOW_S
        return {
            "type": "snapshot",
            "title": title,
            "now_t": self.now_t,
            "session": self.session,
            "ended": self.ended,
            "signals": list(self.spark),
            "latest": self.latest,
            "latest_age_s": None if self.latest_wall is None else round(wall_s - self.latest_wall, 3),
            "bands": list(self.bands),
            "markers": [m for m in self.markers if m["t"] >= window_start],
            "transcript": list(self.transcript) + list(self.interim.values()),
            "health": self.health,
            "input": list(self.input_problems.values()),
            "levels": list(self.levels.values()),
            "annotations": list(self.annotations),
            "figures": self.figures,
            "timeline": self.timeline.to_page() if self.ended else None,
        }
