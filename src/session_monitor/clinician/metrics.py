"""``session-monitor evaluate``: alert episodes of a session against annotated ruptures.

An *alert episode* runs from an ``alert`` ``on`` to the next ``off`` of the same
kind (or the end of the session). It *matches* an annotated rupture interval
``[start, end]`` when it overlaps ``[start, end + tolerance_s]`` (so an alert that
starts within the tolerance after the rupture still counts) and, with
``evaluate.match_kind``, has the same kind.

- precision: matched alert episodes / alert episodes
- recall: ruptures with at least one matching alert / ruptures
- F1: their harmonic mean
- mean detection delay: over detected ruptures, the first matching alert's start
  minus the rupture's start (0 when the alert was already on)
- false alarms per hour: unmatched alert episodes per hour of session

A figure that has no denominator (no alerts, no ruptures) is ``None`` (JSON
``null``). Annotation formats: docs/annotations.md. A rupture of kind ``unknown``
(a dashboard press while no alert was on, :mod:`annotations`) matches an alert of
either kind.

``--rerun`` scores the alerts of the rupture model re-run with the given settings
(``--config``, ``--clinician``) over the recorded events, without re-transcription,
instead of the alerts recorded in the session.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from session_monitor.errors import InputError
from session_monitor.event_log import read_events
from session_monitor.events import RUPTURE_KINDS, alert_spans
from session_monitor.schema import Field, Float, Nullable, Str, Table, validate
from session_monitor.settings.loader import AudioSettings, EvaluateSettings, Settings

__all__ = ["ANNOTATION_SCHEMA", "KINDS", "Interval", "alert_episodes", "evaluate", "load_annotations", "rerun_alerts",
           "session_tick_s",
           "score"]

KINDS = RUPTURE_KINDS


@dataclass(frozen=True)
class Interval:
    """An annotated rupture or an alert episode, in session seconds."""

    start: float
    end: float
    kind: str
    marker: str = ""
    note: str = ""


#: One annotated rupture (docs/annotations.md); a CSV row's text is read as numbers first.
ANNOTATION_SCHEMA = Table({
    "start": Float(lo=0), "end": Float(lo=0),
    "kind": Str(pattern=r"(?i)\s*(withdrawal|confrontation)\s*", hint="withdrawal or confrontation"),
    "marker": Field(Nullable(Str(max_len=200)), required=False, default=""),
    "note": Field(Nullable(Str(max_len=2000)), required=False, default=""),
}, extra="keep", name="an object with start, end, kind")


def _interval(src: str, i: int, item: Any) -> Interval:
    where = f"{src}: rupture {i + 1}"
    if isinstance(item, dict) and all(isinstance(v, str) for v in item.values()):  # a CSV row
        item = {k: _number(v) if k in ("start", "end") else v for k, v in item.items()}
    checked = validate(ANNOTATION_SCHEMA, item, source=where)
    start, end = checked["start"], checked["end"]
    if end <= start:
        raise InputError(f"{where}: end {end:g} is not after start {start:g}")
    return Interval(start, end, checked["kind"].strip().lower(), checked["marker"] or "", checked["note"] or "")


def _number(text: str) -> Any:
    try:
        return float(text)
    except ValueError:
        return text  # refused by the schema as "the wrong type; use a number"


def load_annotations(path: str | Path) -> list[Interval]:
    """Rupture intervals from a truth JSON (its ``ruptures``), a JSON list, or a CSV file.

    Raises
    ------
    InputError
        One line naming the file and what is wrong with it.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"--annotations {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"--annotations {path}: cannot be read as UTF-8 text ({exc})") from None
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"--annotations {path}: invalid JSON ({exc.msg} at line {exc.lineno})") from None
        if isinstance(data, dict):
            if "ruptures" not in data:
                raise InputError(f"--annotations {path}: a JSON object needs a 'ruptures' list")
            data = data["ruptures"]
        if not isinstance(data, list):
            raise InputError(f"--annotations {path}: 'ruptures' must be a list of {{start, end, kind}}")
        items = data
    else:
        reader = csv.DictReader(io.StringIO(text))
        header = [h.strip().lower() for h in reader.fieldnames or []]
        if not {"start", "end", "kind"} <= set(header):
            raise InputError(f"--annotations {path}: CSV needs a header with start,end,kind (and optional "
                             "marker,note)")
        items = []
        for row in reader:
            if None in row:  # DictReader's key for values beyond the header
                raise InputError(f"--annotations {path}: line {reader.line_num} has more values than the header; "
                                 "quote a note that holds a comma")
            items.append({(k or "").strip().lower(): (v or "").strip() for k, v in row.items()})
    out = sorted((_interval(str(path), i, item) for i, item in enumerate(items)), key=lambda r: (r.start, r.end))
    for a, b in itertools.pairwise(out):
        if b.start < a.end:
            raise InputError(f"--annotations {path}: ruptures {a.start:g}-{a.end:g} s and {b.start:g}-{b.end:g} s "
                             "overlap; merge them or make one end where the next starts")
    return out


def alert_episodes(events: list[dict[str, Any]]) -> tuple[list[Interval], float]:
    """Alert episodes of a session's events and the session's duration in seconds."""
    duration = 0.0
    for ev in events:
        t = ev.get("t")
        if isinstance(t, (int, float)):
            duration = max(duration, float(t))
        if ev.get("type") == "session" and ev.get("state") == "ended":
            duration = float(ev["t"])
    out = [Interval(s.start, s.end, s.kind) for s in alert_spans(events, duration)]
    return sorted(out, key=lambda a: (a.start, a.kind)), duration


def _matches(alert: Interval, rupture: Interval, settings: EvaluateSettings) -> bool:
    if settings.match_kind and rupture.kind in KINDS and alert.kind != rupture.kind:
        return False
    return alert.start <= rupture.end + settings.tolerance_s and alert.end >= rupture.start


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def _scores(alerts: list[Interval], ruptures: list[Interval], duration_s: float,
            settings: EvaluateSettings) -> dict[str, Any]:
    matched = [a for a in alerts if any(_matches(a, r, settings) for r in ruptures)]
    delays: list[float] = []
    for r in ruptures:
        starts = [a.start for a in alerts if _matches(a, r, settings)]
        if starts:
            delays.append(max(0.0, min(starts) - r.start))
    precision = _ratio(len(matched), len(alerts))
    recall = _ratio(len(delays), len(ruptures))
    f1 = None
    if precision is not None and recall is not None:
        f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    false_alarms = len(alerts) - len(matched)
    return {
        "precision": precision, "recall": recall, "f1": f1,
        "mean_delay_s": sum(delays) / len(delays) if delays else None,
        "false_alarms_per_hour": false_alarms / (duration_s / 3600.0) if duration_s > 0 else None,
        "ruptures": len(ruptures), "detected": len(delays), "alerts": len(alerts), "false_alarms": false_alarms,
    }


def score(alerts: list[Interval], ruptures: list[Interval], duration_s: float,
          settings: EvaluateSettings) -> dict[str, Any]:
    """Figures and counts of alert episodes against ruptures (no ``by_kind``); see the module docstring."""
    return _scores(alerts, ruptures, duration_s, settings)


def rerun_alerts(events: list[dict[str, Any]], settings: Settings, *, tick_s: float) -> list[Interval]:
    """Alert episodes of the rupture model re-run with ``settings`` (a whole
    :class:`~session_monitor.settings.loader.Settings`) over a session's recorded events."""
    from session_monitor.events import event_to_dict
    from session_monitor.rupture.model import RuptureModel, run_on_events, transcribed

    _, duration = alert_episodes(events)
    model = RuptureModel.from_settings(settings, transcripts=transcribed(events))
    out = run_on_events(model, events, tick_s=tick_s, end_t=duration)
    rerun = [event_to_dict(e) for e in out if e.type == "alert"]
    return alert_episodes(rerun + [{"type": "session", "state": "ended", "t": duration}])[0]


def evaluate(session_dir: str | Path, annotations: str | Path | list[Interval],
             settings: EvaluateSettings, *, alerts: list[Interval] | None = None) -> dict[str, Any]:
    """Figures for one session folder against its annotations; see the module docstring.

    ``alerts`` replaces the session's recorded alert episodes (e.g. :func:`rerun_alerts`).
    """
    ruptures = annotations if isinstance(annotations, list) else load_annotations(annotations)
    events = read_events(session_dir)
    recorded, duration = alert_episodes(events)
    alerts = recorded if alerts is None else alerts
    result = _scores(alerts, ruptures, duration, settings)
    by_kind = {}
    unknown = [r for r in ruptures if r.kind not in KINDS]
    for kind in KINDS:
        k_ruptures = [r for r in ruptures if r.kind == kind]
        # an alert that matches only a rupture of unknown kind is neither credited nor blamed per kind
        k_alerts = [a for a in alerts if a.kind == kind and (
            any(_matches(a, r, settings) for r in k_ruptures) or not any(_matches(a, r, settings) for r in unknown))]
        by_kind[kind] = _scores(k_alerts, k_ruptures, duration, settings)
    if unknown:
        by_kind["unknown"] = _scores([a for a in alerts if any(_matches(a, r, settings) for r in unknown)], unknown,
                                     duration, settings)
    result["by_kind"] = by_kind
    result["duration_s"] = duration
    result["tolerance_s"] = settings.tolerance_s
    return result


def session_tick_s(session_dir: str | Path, audio: AudioSettings) -> float:
    """The pipeline block of a recorded session in seconds (its analyzers ticked at block ends):
    ``audio.block_ms`` from its session.json, else from ``audio`` (the [audio] section)."""
    try:
        meta = json.loads((Path(session_dir) / "session.json").read_text(encoding="utf-8"))
        return float(meta["settings"]["values"]["audio"]["block_ms"]) / 1000.0
    except (OSError, ValueError, KeyError, TypeError):
        return audio.block_ms / 1000.0
