"""The cohort table: one row per session of a batch, and totals per clinician.

The per-session figures come from :func:`session_monitor.report.summary.summarize` (talk
share, median response latency, rupture episodes with their 3RS subtypes and repairs)
and :mod:`session_monitor.clinician.metrics` (alert episodes; precision, recall, F1,
detection delay and false alarms per hour where annotations were given), so they equal
what ``report`` and ``evaluate`` say of the same folder. The running MI figures are the
summary's (the session's last ``mi_figures`` event); a session whose events have none
leaves those columns empty.

Rows are dicts keyed by column name (:func:`columns` gives the order); an empty figure is
``None`` (an empty CSV cell).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from session_monitor.clinician.metrics import alert_episodes, evaluate, load_annotations
from session_monitor.event_log import read_events
from session_monitor.report.summary import summarize
from session_monitor.settings.loader import EvaluateSettings

__all__ = ["KINDS", "MI_FIELDS", "SessionResult", "clinician_totals", "columns", "session_row", "write_csv", "write_private"]

KINDS = ("withdrawal", "confrontation")
ROLES = ("therapist", "patient")
#: the running MI figures of the session's last ``mi_figures`` event (report.summary)
MI_FIELDS = ("reflection_to_question", "complex_reflection_share", "open_question_share", "change_share",
             "input_share")
EVAL_FIELDS = ("precision", "recall", "f1", "mean_delay_s", "false_alarms_per_hour")
_BASE = (["row", "session", "source", "clinician", "status", "reason", "sessions", "duration_s"]
         + [f"talk_share_{r}" for r in ROLES] + [f"median_latency_{r}_s" for r in ROLES]
         + ["episodes"] + [f"episodes_{k}" for k in KINDS] + ["repaired_share", "alerts", "alerts_per_hour"])
_TAIL = [f"mi_{f}" for f in MI_FIELDS] + [f"eval_{f}" for f in EVAL_FIELDS] + ["eval_ruptures", "eval_detected"]


@dataclass(frozen=True)
class SessionResult:
    """One recording's place in the cohort: its folder (when it ran) or why it failed."""

    session: str
    source: str
    clinician: str
    status: str  # "done", "skipped" (already done) or "failed"
    folder: Path | None = None
    reason: str = ""
    annotations: str | None = None


def _mi(figures: dict[str, Any]) -> dict[str, float | None]:
    """The MI columns from the summary's last ``mi_figures`` event (None where absent)."""
    return {f"mi_{f}": float(figures[f]) if isinstance(figures.get(f), (int, float)) else None for f in MI_FIELDS}


def _r(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def session_row(result: SessionResult, evaluate_settings: EvaluateSettings) -> dict[str, Any]:
    """The cohort row of one session; a failed one has only its identity and reason."""
    row: dict[str, Any] = {"row": "session", "session": result.session, "source": result.source,
                           "clinician": result.clinician, "status": result.status, "reason": result.reason,
                           "sessions": 1}
    if result.folder is None or result.status == "failed":
        return row
    events = read_events(result.folder)
    try:
        meta = json.loads((result.folder / "session.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = {}
    summary = summarize(events, complete=bool(meta.get("complete", True)))
    alerts, duration_s = alert_episodes(events)
    share = summary.talk_share
    episodes = summary.episodes
    row.update({
        "duration_s": _r(summary.duration_s, 2),
        **{f"talk_share_{r}": _r(share.get(r)) for r in ROLES},
        **{f"median_latency_{r}_s": _r(summary.median_latency_s.get(r)) for r in ROLES},
        "episodes": len(episodes),
        **{f"episodes_{k}": sum(1 for e in episodes if e.kind == k) for k in KINDS},
        "repaired_share": _r(sum(e.repaired for e in episodes) / len(episodes)) if episodes else None,
        "alerts": len(alerts),
        "alerts_per_hour": _r(len(alerts) / (duration_s / 3600.0), 2) if duration_s > 0 else None,
    })
    for e in episodes:
        for subtype in e.subtypes:
            key = f"episodes_{e.kind}_{subtype}"
            row[key] = row.get(key, 0) + 1
    row.update(_mi(summary.mi_figures))
    if result.annotations:
        scored = evaluate(result.folder, load_annotations(result.annotations), evaluate_settings)
        row.update({f"eval_{f}": _r(scored[f]) for f in EVAL_FIELDS})
        row.update({"eval_ruptures": scored["ruptures"], "eval_detected": scored["detected"],
                    "_eval_alerts": scored["alerts"], "_eval_false_alarms": scored["false_alarms"]})
    return row


def _sum(rows: Sequence[dict[str, Any]], key: str) -> float:
    return sum(r.get(key) or 0 for r in rows)


def clinician_totals(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per clinician over its sessions that ran: counts summed, rates pooled
    (alerts per hour of all its audio, the share of all its episodes repaired, precision
    and recall over all its annotated ruptures and alerts)."""
    out = []
    for who in sorted({r["clinician"] for r in rows}):
        mine = [r for r in rows if r["clinician"] == who]
        ran = [r for r in mine if r["status"] != "failed"]
        hours = _sum(ran, "duration_s") / 3600.0
        episodes = _sum(ran, "episodes")
        repaired = sum((r.get("repaired_share") or 0) * (r.get("episodes") or 0) for r in ran)
        total: dict[str, Any] = {
            "row": "clinician_total", "session": "", "source": "", "clinician": who,
            "status": f"{len(ran)} ran, {len(mine) - len(ran)} failed", "reason": "", "sessions": len(mine),
            "duration_s": round(hours * 3600.0, 2), "episodes": int(episodes),
            **{f"episodes_{k}": int(_sum(ran, f"episodes_{k}")) for k in KINDS},
            "repaired_share": round(repaired / episodes, 3) if episodes else None,
            "alerts": int(_sum(ran, "alerts")),
            "alerts_per_hour": round(_sum(ran, "alerts") / hours, 2) if hours > 0 else None,
        }
        for key in {k for r in ran for k in r if k.startswith("episodes_") and k.count("_") > 1}:
            total[key] = int(_sum(ran, key))
        scored = [r for r in ran if r.get("eval_ruptures") is not None]
        if scored:
            ruptures, detected = _sum(scored, "eval_ruptures"), _sum(scored, "eval_detected")
            alerts, false = _sum(scored, "_eval_alerts"), _sum(scored, "_eval_false_alarms")
            precision = (alerts - false) / alerts if alerts else None
            recall = detected / ruptures if ruptures else None
            total.update({"eval_precision": _r(precision), "eval_recall": _r(recall),
                          "eval_ruptures": int(ruptures), "eval_detected": int(detected)})
            if precision is not None and recall is not None:
                total["eval_f1"] = _r(0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall))
        out.append(total)
    return out


def columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    """Column order: identity, figures, one column per (kind, 3RS subtype) seen, MI, evaluation."""
    subtypes = sorted({k for r in rows for k in r if k.startswith("episodes_") and k.count("_") > 1
                       and k not in _BASE})
    return _BASE + subtypes + _TAIL


def write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> Path:
    """``rows`` as CSV (0600), replaced atomically; keys starting with ``_`` are not written."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns(rows), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items() if not k.startswith("_")})
    write_private(path, buf.getvalue())
    return path


def write_private(path: Path, text: str) -> None:
    """``text`` into ``path`` (0600), through a temporary file renamed over it."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
