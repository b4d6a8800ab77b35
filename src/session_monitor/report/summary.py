"""What a clinician or supervisor wants from a finished session, computed from its events.

Pure functions over the event dicts of ``events.jsonl`` (as read by
:func:`session_monitor.event_log.read_events`), so they work on any session folder, including
one that ended early: a missing ``session ended`` event just means the last event
time is the end.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from session_monitor.events import alert_spans

__all__ = ["SessionSummary", "summarize", "Silence", "EpisodeRow"]


@dataclass(frozen=True)
class Silence:
    start: float
    end: float
    before: str  # who spoke last ("" at the start)
    after: str  # who spoke next ("" at the end)

    @property
    def duration_s(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class EpisodeRow:
    kind: str
    start: float
    end: float
    peak_t: float | None
    peak_likelihood: float | None
    subtypes: tuple[str, ...]
    repaired: bool
    repair_t: float | None
    repair_markers: tuple[str, ...]
    open_at_end: bool = False


@dataclass
class SessionSummary:
    duration_s: float
    complete: bool
    talk_s: dict[str, float] = field(default_factory=dict)
    median_latency_s: dict[str, float] = field(default_factory=dict)
    latency_count: dict[str, int] = field(default_factory=dict)
    longest_silences: list[Silence] = field(default_factory=list)
    episodes: list[EpisodeRow] = field(default_factory=list)
    subtype_counts: dict[tuple[str, str], int] = field(default_factory=dict)
    annotations: list[dict[str, Any]] = field(default_factory=list)
    mi_figures: dict[str, Any] = field(default_factory=dict)  # the last ``mi_figures`` event ({} if none)

    @property
    def talk_share(self) -> dict[str, float]:
        total = sum(self.talk_s.values())
        return {k: v / total for k, v in sorted(self.talk_s.items())} if total > 0 else {}


def _silences(speech: list[dict[str, Any]], end_s: float) -> list[Silence]:
    """Stretches where nobody speaks, between the first and the last speech."""
    spans = sorted((e["start"], e["end"], e["speaker"]) for e in speech)
    out: list[Silence] = []
    cursor, last_speaker = None, ""
    for start, end, speaker in spans:
        if cursor is not None and start > cursor:
            out.append(Silence(cursor, start, last_speaker, speaker))
        if cursor is None or end >= cursor:
            cursor, last_speaker = end, speaker
    return out


def _episodes(events: list[dict[str, Any]], end_s: float) -> list[EpisodeRow]:
    rows = [
        EpisodeRow(e["kind"], e["start"], e["end"], e.get("peak_t"), e.get("peak_likelihood"),
                   tuple(e.get("subtypes", ())), bool(e.get("repaired")), e.get("repair_t"),
                   tuple(e.get("repair_markers", ())))
        for e in events if e["type"] == "episode"
    ]
    # an alert still on (or whose episode was not yet written) when the session ended early
    covered = {(r.kind, round(r.start, 3)) for r in rows}
    pending = [(s.kind, s.start, s.end) for s in alert_spans(events, end_s)]
    for kind, start, end in pending:
        if (kind, round(start, 3)) in covered:
            continue
        markers = [m for m in events if m["type"] == "marker" and start - 10 <= m["t"] <= end]
        subtypes = tuple(dict.fromkeys(m["marker"] for m in markers if m["kind"] == kind))
        repairs = [m for m in markers if m["kind"] == "repair" and m["t"] >= start]
        rows.append(EpisodeRow(kind, start, end, None, None, subtypes, bool(repairs),
                               repairs[0]["t"] if repairs else None,
                               tuple(dict.fromkeys(m["marker"] for m in repairs)), open_at_end=True))
    return sorted(rows, key=lambda r: r.start)


def summarize(events: list[dict[str, Any]], *, complete: bool = True, top_silences: int = 5) -> SessionSummary:
    """The session's summary; ``complete`` False marks a session that ended early."""
    end_s = max((e.get("t", 0.0) for e in events), default=0.0)
    speech = [e for e in events if e["type"] == "speech"]
    talk: dict[str, float] = {}
    for e in speech:
        talk[e["speaker"]] = talk.get(e["speaker"], 0.0) + (e["end"] - e["start"])
    latencies: dict[str, list[float]] = {}
    for e in events:
        if e["type"] == "gap":
            latencies.setdefault(e["to_speaker"], []).append(e["duration_s"])
    silences = sorted(_silences(speech, end_s), key=lambda s: -s.duration_s)[:top_silences]
    counts = Counter((e["kind"], e["marker"]) for e in events if e["type"] == "marker")
    return SessionSummary(
        duration_s=end_s,
        complete=complete,
        talk_s=talk,
        median_latency_s={k: statistics.median(v) for k, v in sorted(latencies.items())},
        latency_count={k: len(v) for k, v in sorted(latencies.items())},
        longest_silences=silences,
        episodes=_episodes(events, end_s),
        subtype_counts=dict(sorted(counts.items())),
        annotations=[e for e in events if e["type"] == "annotation"],
        mi_figures=next((dict(e) for e in reversed(events) if e["type"] == "mi_figures"), {}),
    )
