"""``session-monitor tune --clinician NAME SESSION_DIR...``: fit and write a clinician profile.

See docs/tuning.md. The search and the validation are in :mod:`tuning`; profile files
in :mod:`profiles`.
"""

from __future__ import annotations

import datetime as _dt
import json
import sys
from pathlib import Path
from typing import Any

from session_monitor.clinician.annotations import session_annotations
from session_monitor.clinician.metrics import session_tick_s
from session_monitor.clinician.profiles import profile_data, read_profile, render_profile, write_profile
from session_monitor.clinician.tuning import SEARCH, Objective, TuneResult, prepare_session, tune
from session_monitor.errors import InputError
from session_monitor.event_log import read_events
from session_monitor.settings.loader import clinician_file, load_settings

__all__ = ["add_parser", "cmd_tune", "format_result"]


def add_parser(sub: Any) -> None:
    """Register ``tune`` on the CLI's subparsers."""
    p = sub.add_parser("tune", help="fit a clinician profile to annotated sessions (cross-validated)")
    p.add_argument("session_dirs", nargs="+", metavar="SESSION_DIR", help="session folders (with events.jsonl)")
    p.add_argument("--clinician", required=True, metavar="NAME",
                   help="profile to fit: configs/clinicians/NAME.toml (its current values are the start)")
    p.add_argument("--annotations", metavar="F1,F2,...",
                   help="one annotation file per SESSION_DIR, in order ('-' = that session's own); default: "
                        "SESSION_DIR/annotations.json or .csv, else its dashboard annotations")
    p.add_argument("--objective", choices=("f1", "recall"), default="f1",
                   help="f1 (default): best F1; recall: highest recall within --max-false-alarms-per-hour")
    p.add_argument("--max-false-alarms-per-hour", type=float, metavar="N",
                   help="false-alarm budget of --objective recall (default 6: one per 10 minutes)")
    p.add_argument("--dry-run", action="store_true", help="print the result; write nothing")
    p.add_argument("--force", action="store_true", help="replace an existing profile (a backup is kept)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--config", metavar="FILE", help="TOML settings beneath the profile (as for replay)")


def _objective(args: Any) -> Objective:
    budget = args.max_false_alarms_per_hour
    if budget is not None:
        if args.objective != "recall":
            raise InputError("--max-false-alarms-per-hour goes with --objective recall")
        if not 0 <= budget <= 3600:
            raise InputError(f"--max-false-alarms-per-hour {budget:g} is out of range; use 0..3600")
        return Objective("recall", float(budget))
    return Objective(args.objective)


def _annotation_files(args: Any) -> list[str | None]:
    if args.annotations is None:
        return [None] * len(args.session_dirs)
    files = [f.strip() for f in args.annotations.split(",")]
    if len(files) != len(args.session_dirs):
        raise InputError(f"--annotations names {len(files)} file(s) for {len(args.session_dirs)} session(s); "
                         "give one per SESSION_DIR, in order ('-' for a session's own)")
    return [None if f in ("", "-") else f for f in files]


def _fmt(value: Any, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def _row(name: str, r: dict[str, Any]) -> str:
    return (f"{name:34s} {_fmt(r['precision']):>9s} {_fmt(r['recall']):>6s} {_fmt(r['f1']):>5s} "
            f"{_fmt(r['mean_delay_s'], '.1f'):>7s} {_fmt(r['false_alarms_per_hour'], '.1f'):>6s} "
            f"{r['detected']:>4d}/{r['ruptures']:<4d} {r['alerts']:>6d}")


def format_result(result: TuneResult, *, started_from: str) -> str:
    """The before/after table (pooled over the sessions) and what changed."""
    head = f"{'':34s} {'precision':>9s} {'recall':>6s} {'F1':>5s} {'delay s':>7s} {'FA/h':>6s} {'detected':>9s} " \
           f"{'alerts':>6s}"
    lines = [head,
             _row(f"before ({started_from})", result.before),
             _row("after, cross-validated", result.after_cv),
             _row("after, in-sample (the profile)", result.in_sample)]
    n = len(result.sessions)
    lines.append(f"{n} sessions, {result.before['duration_s'] / 60:.1f} min, {result.before['ruptures']} ruptures; "
                 f"objective: {result.objective.describe()}; cross-validated = each session scored with the "
                 "settings fitted on the others")
    changes = result.changes()
    lines.append("changes: " + (", ".join(f"fusion.{k} {a:g} -> {b:g}" for k, (a, b) in changes.items())
                                or "none (the start is already the best found)"))
    return "\n".join(lines)


def _summary(r: dict[str, Any]) -> str:
    return (f"precision {_fmt(r['precision'])}, recall {_fmt(r['recall'])}, F1 {_fmt(r['f1'])}, "
            f"mean delay {_fmt(r['mean_delay_s'], '.1f')} s, {_fmt(r['false_alarms_per_hour'], '.1f')} false alarms/h")


def _header(name: str, result: TuneResult, sessions: list[Any], started_from: str) -> list[str]:
    when = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
    out = [f"Clinician profile {name!r}: overrides of configs/default.toml (docs/tuning.md).",
           f"Written by `session-monitor tune` on {when}, starting from {started_from}.",
           (f"Fitted on {len(sessions)} annotated sessions ({result.before['ruptures']} ruptures, "
            f"{result.before['duration_s'] / 60:.1f} min); objective: {result.objective.describe()}:")]
    out += [f"  {s.folder} (annotations: {s.annotations.source})".replace("\n", " ") for s in sessions]
    out += ["Leave-one-session-out cross-validated, pooled over the sessions:",
            f"  before: {_summary(result.before)}",
            f"  after:  {_summary(result.after_cv)}",
            f"In-sample with this profile (evaluate --rerun gives these): {_summary(result.in_sample)}."]
    return out


def cmd_tune(args: Any) -> int:
    """The ``tune`` subcommand."""
    objective = _objective(args)
    path = clinician_file(args.clinician)
    below = load_settings(args.config)
    start = load_settings(args.config, clinician=args.clinician) if path.is_file() else below
    if path.exists() and not (args.force or args.dry_run):
        raise InputError(f"{path} exists; add --force to replace it (a backup is kept) or use --dry-run")
    started_from = f"profile {path.name}" if path.is_file() else "the defaults"
    files = _annotation_files(args)
    sessions, skipped = [], []
    for folder, file in zip(args.session_dirs, files):
        if not Path(folder).is_dir():
            raise InputError(f"{folder}: not a folder; give session folders written by session-monitor")
        events = read_events(folder)
        found = session_annotations(folder, file, settings=start.evaluate, events=events)
        if found is None:
            skipped.append(folder)
            print(f"session-monitor: warning: {folder}: no annotations (no --annotations entry, no annotations.json"
                  "/.csv, no dashboard presses); left out", file=sys.stderr)
            continue
        print(f"session-monitor: reading {folder} ({len(found.intervals)} ruptures, annotations: {found.source})",
              file=sys.stderr, flush=True)
        sessions.append(prepare_session(Path(folder), events, found, start, tick_s=session_tick_s(folder, start.audio)))
    if len(sessions) < 2:
        raise InputError(f"tune needs at least 2 annotated sessions for cross-validation; got {len(sessions)}: "
                         "annotate more sessions (docs/annotations.md)")
    if not any(s.ruptures for s in sessions):
        raise InputError(f"the {len(sessions)} annotated sessions hold no rupture interval: nothing to fit; "
                         "annotate the ruptures (a session without any is still useful beside them)")
    result = tune(sessions, start.fusion, start.evaluate, objective=objective,
                  on_progress=lambda msg: print(f"session-monitor: {msg}", file=sys.stderr, flush=True))
    keys = tuple(p.key for p in SEARCH)
    data = profile_data(read_profile(path), result.fitted, below.fusion, keys)
    text = render_profile(data, _header(args.clinician, result, sessions, started_from))
    check = load_settings(args.config, overrides=data)
    assert all(getattr(check.fusion, k) == getattr(result.fitted, k) for k in keys), "profile does not round-trip"
    backup = None
    if not args.dry_run:
        backup = write_profile(path, text, force=args.force)
    if args.json:
        print(json.dumps({
            "clinician": args.clinician, "profile": None if args.dry_run else str(path),
            "backup": str(backup) if backup else None, "dry_run": args.dry_run, "started_from": started_from,
            "objective": result.objective.name, "max_false_alarms_per_hour": result.objective.max_false_alarms_per_hour,
            "before": result.before, "after_cv": result.after_cv, "in_sample": result.in_sample,
            "changes": {k: list(v) for k, v in result.changes().items()}, "sessions": result.sessions,
            "skipped": skipped, "profile_text": text,
        }, sort_keys=True))
        return 0
    print(format_result(result, started_from=started_from))
    if args.dry_run:
        print(f"dry run: {path} not written; it would read:")
        print(text, end="")
    else:
        print(f"wrote {path}" + (f" (the previous profile is kept as {backup.name})" if backup else ""))
    return 0
