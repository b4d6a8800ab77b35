"""Where a session's annotated ruptures come from: a file, or the dashboard's buttons.

``evaluate`` and ``tune`` score alerts against rupture intervals
(:class:`~session_monitor.clinician.metrics.Interval`). A session's intervals come from the
first of these that exists (docs/annotations.md):

1. an annotation file given on the command line (``--annotations``);
2. ``annotations.json`` or ``annotations.csv`` in the session folder;
3. the session's own ``annotation`` events, written by the dashboard's "rupture now"
   and "false alarm" buttons (:func:`dashboard_intervals`).

A session with none of these is *not annotated*: it cannot be scored. A session
annotated on the dashboard is taken as fully annotated: every rupture was marked.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from session_monitor.clinician.metrics import Interval, alert_episodes, load_annotations
from session_monitor.errors import InputError
from session_monitor.event_log import read_events
from session_monitor.settings.loader import EvaluateSettings

__all__ = [
    "ANNOTATION_FILES", "PRESS_WINDOW_S", "UNKNOWN", "SessionAnnotations", "dashboard_intervals",
    "require_annotations", "session_annotations",
]

#: A "rupture" press at session time t marks the rupture as the interval [t - PRESS_WINDOW_S, t]:
#: a clinician presses once they have noticed it, and the 3RS codes ruptures over
#: stretches of dialogue of about this length.
PRESS_WINDOW_S = 20.0
#: Kind of a pressed rupture when no alert was on: it matches an alert of either kind.
UNKNOWN = "unknown"
#: Annotation files looked for in a session folder, in this order.
ANNOTATION_FILES = ("annotations.json", "annotations.csv")
_GAP_S = 0.001  # a clipped interval starts this far after what it was clipped against


@dataclass(frozen=True)
class SessionAnnotations:
    """The rupture intervals of one session and where they came from."""

    intervals: list[Interval]
    source: str  # a file path, or "dashboard"
    false_alarms: int = 0  # recorded alert episodes marked false on the dashboard


def _episode_at(episodes: list[Interval], t: float, tolerance_s: float) -> int | None:
    """Index of the recorded alert episode a press at ``t`` refers to: the one on at ``t`` (the
    latest started if both kinds are on), else the one that ended at most ``tolerance_s`` before."""
    on = [i for i, e in enumerate(episodes) if e.start <= t <= e.end]
    if on:
        return max(on, key=lambda i: (episodes[i].start, i))
    ended = [i for i, e in enumerate(episodes) if e.end < t <= e.end + tolerance_s]
    if ended:
        return max(ended, key=lambda i: (episodes[i].end, i))
    return None


def dashboard_intervals(events: list[dict[str, Any]], *, tolerance_s: float,
                        window_s: float = PRESS_WINDOW_S) -> tuple[list[Interval], int] | None:
    """Rupture intervals from a session's ``annotation`` events; None when it has none.

    - A ``rupture`` press at ``t`` is the interval ``[max(0, t - window_s), t]``. Its kind is
      that of the recorded alert on at ``t`` (or ended at most ``tolerance_s`` before it), else
      ``"unknown"``, which matches an alert of either kind.
    - A ``false_alarm`` press marks that alert episode as false: a rupture interval is clipped
      to start after it, so the alert cannot match. A later ``rupture`` press on the same
      episode overrides it (the last press wins).
    - Intervals that overlap are merged when their kinds agree (or one is unknown); otherwise
      the later one is clipped to start after the earlier one ends.

    Returns the intervals and the number of alert episodes marked false.
    """
    presses = sorted(((float(e["t"]), str(e.get("label", ""))) for e in events
                      if e.get("type") == "annotation" and e.get("label") in ("rupture", "false_alarm")
                      and isinstance(e.get("t"), (int, float))), key=lambda p: p[0])
    if not presses:
        return None
    episodes, _ = alert_episodes(events)
    verdict: dict[int, str] = {}  # episode index -> last label pressed on it
    raw: list[Interval] = []
    for t, label in presses:
        ep = _episode_at(episodes, t, tolerance_s)
        if ep is not None:
            verdict[ep] = label
        if label == "rupture":
            kind = episodes[ep].kind if ep is not None else UNKNOWN
            raw.append(Interval(max(0.0, t - window_s), t, kind, "", f"dashboard press at {t:.1f} s"))
    false_eps = [episodes[i] for i, v in sorted(verdict.items()) if v == "false_alarm"]
    clipped = []
    for r in raw:
        start = r.start
        for fe in false_eps:
            if fe.start < r.end and start <= fe.end < r.end:
                start = max(start, fe.end + _GAP_S)
        if start < r.end:
            clipped.append(replace(r, start=start))
    merged: list[Interval] = []
    for r in sorted(clipped, key=lambda r: (r.start, r.end)):
        if merged and r.start <= merged[-1].end:
            last = merged[-1]
            if UNKNOWN in (last.kind, r.kind) or last.kind == r.kind:
                kind = last.kind if last.kind != UNKNOWN else r.kind
                merged[-1] = Interval(last.start, max(last.end, r.end), kind, "", f"{last.note}; {r.note}")
                continue
            r = replace(r, start=last.end + _GAP_S)
            if r.start >= r.end:
                continue
        merged.append(r)
    return merged, len(false_eps)


def session_annotations(session_dir: str | Path, annotations: str | Path | None = None, *,
                        settings: EvaluateSettings,
                        events: list[dict[str, Any]] | None = None) -> SessionAnnotations | None:
    """A session's rupture intervals from the first source that exists (see the module
    docstring), or None when the session is not annotated.

    Raises
    ------
    InputError
        An annotation file that cannot be used (one line naming it).
    """
    if annotations is not None:
        return SessionAnnotations(load_annotations(annotations), str(annotations))
    folder = Path(session_dir)
    for name in ANNOTATION_FILES:
        if (folder / name).is_file():
            return SessionAnnotations(load_annotations(folder / name), str(folder / name))
    found = dashboard_intervals(events if events is not None else read_events(folder),
                                tolerance_s=settings.tolerance_s)
    if found is None:
        return None
    return SessionAnnotations(found[0], "dashboard", found[1])


def require_annotations(session_dir: str | Path, annotations: str | Path | None = None, *,
                        settings: EvaluateSettings,
                        events: list[dict[str, Any]] | None = None) -> SessionAnnotations:
    """:func:`session_annotations`, with a one-line error where the session is not annotated."""
    found = session_annotations(session_dir, annotations, settings=settings, events=events)
    if found is None:
        raise InputError(f"{session_dir}: no annotations: give --annotations FILE, put annotations.json or "
                         "annotations.csv in the session folder, or mark ruptures with the dashboard's buttons")
    return found

