"""``session-monitor report SESSION_DIR``: report.html and timeline.csv for a session folder."""

from __future__ import annotations

import argparse
from typing import Any

from session_monitor.report.render import write_report

__all__ = ["add_parser", "cmd_report"]


def add_parser(sub: Any) -> None:
    report = sub.add_parser("report", help="write report.html and timeline.csv for a session folder")
    report.add_argument("session_dir", help="a session folder (also one that ended early)")


def cmd_report(args: argparse.Namespace) -> int:
    html_path, csv_path = write_report(args.session_dir)
    print(html_path)
    print(csv_path)
    return 0
