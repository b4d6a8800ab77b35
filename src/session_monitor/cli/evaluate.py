"""``session-monitor evaluate SESSION_DIR``: a session's alerts against annotated ruptures.

The figures come from :mod:`session_monitor.clinician.metrics`; this module parses the
arguments and prints them (a table, or one JSON object with ``--json``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from session_monitor.clinician.annotations import require_annotations
from session_monitor.clinician.metrics import evaluate, rerun_alerts, session_tick_s
from session_monitor.errors import InputError
from session_monitor.event_log import read_events
from session_monitor.settings import EvaluateSettings, load_settings

__all__ = ["add_parser", "cmd_evaluate", "format_table"]


def _fmt(value: Any, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def format_table(result: dict[str, Any]) -> str:
    """The figures as a small text table (overall, then per kind)."""
    head = f"{'':14s} {'precision':>9s} {'recall':>7s} {'F1':>5s} {'delay s':>8s} {'FA/h':>6s} " \
           f"{'ruptures':>8s} {'alerts':>6s}"
    lines = [head]
    rows = [("all", result)] + [(k, v) for k, v in result["by_kind"].items()]
    for name, r in rows:
        lines.append(f"{name:14s} {_fmt(r['precision']):>9s} {_fmt(r['recall']):>7s} {_fmt(r['f1']):>5s} "
                     f"{_fmt(r['mean_delay_s'], '.1f'):>8s} {_fmt(r['false_alarms_per_hour'], '.1f'):>6s} "
                     f"{r['ruptures']:>8d} {r['alerts']:>6d}")
    lines.append(f"session {result['duration_s']:.1f} s; an alert matches a rupture it overlaps or that ended "
                 f"at most {result['tolerance_s']:g} s before it")
    return "\n".join(lines)


def cmd_evaluate(args: Any) -> int:
    """The ``evaluate`` subcommand."""
    full = load_settings(args.config, clinician=args.clinician)
    settings = full.evaluate
    if args.tolerance is not None:
        if not 0 <= args.tolerance <= 600:
            raise InputError(f"--tolerance {args.tolerance:g} is out of range; use 0..600 seconds")
        settings = EvaluateSettings(tolerance_s=float(args.tolerance), match_kind=settings.match_kind)
    if not Path(args.session_dir).is_dir():
        raise InputError(f"{args.session_dir}: not a folder; give a session folder written by session-monitor")
    events = read_events(args.session_dir)
    found = require_annotations(args.session_dir, args.annotations, settings=settings, events=events)
    alerts = rerun_alerts(events, full, tick_s=session_tick_s(args.session_dir, full.audio)) if args.rerun else None
    result = evaluate(args.session_dir, found.intervals, settings, alerts=alerts)
    result["annotations"] = found.source
    result["alerts_from"] = "rerun" if args.rerun else "recorded"
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        print(format_table(result))
        print(f"annotations: {found.source}; alerts: {'re-run with ' + full.digest if args.rerun else 'as recorded'}")
    return 0


def add_parser(sub: Any) -> None:
    """Register ``evaluate`` on the CLI's subparsers."""
    p = sub.add_parser("evaluate", help="precision, recall, F1, delay and false alarms of a session's alerts")
    p.add_argument("session_dir", metavar="SESSION_DIR", help="a session folder (with events.jsonl)")
    p.add_argument("--annotations", metavar="FILE",
                   help="annotated ruptures: truth JSON, JSON list or CSV (see docs/annotations.md); default: "
                        "SESSION_DIR/annotations.json or .csv, else the session's dashboard annotations")
    p.add_argument("--rerun", action="store_true",
                   help="re-run the rupture model with these settings over the recorded events (no "
                        "re-transcription) and score its alerts instead of the recorded ones")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--tolerance", type=float, metavar="S", help="override evaluate.tolerance_s")
    p.add_argument("--config", metavar="FILE", help="TOML settings overriding configs/default.toml")
    p.add_argument("--clinician", metavar="NAME", help="clinician profile configs/clinicians/NAME.toml")
