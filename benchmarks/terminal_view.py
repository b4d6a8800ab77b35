#!/usr/bin/env python3
"""Time the terminal view over the events of a replayed session: its cost on the bus and per redraw.

The view is a sink on the pipeline's event bus (it takes every event, live or replayed, whether
or not a terminal shows it) and rich redraws it 4 times a second on its own thread. Over the
events of one session folder this prints, median of ``--repeat`` runs:

- microseconds per event through the view, against a sink that only counts (the baseline,
  measured in the same run: what calling any sink costs);
- milliseconds per redraw of the view in its final state (a 120-column terminal), and the
  share of one core that 4 redraws a second take.

Usage::

    python benchmarks/terminal_view.py SESSION_DIR [--repeat N]

(a folder that ``session-monitor replay`` wrote, e.g. of ``sample_audio/demo_session.flac``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from rich.console import Console

from session_monitor.cli.terminal_view import TerminalView
from session_monitor.errors import SessionMonitorError
from session_monitor.event_log import read_events
from session_monitor.events import event_from_dict

REDRAWS = 50


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("session", type=Path)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    try:
        events = [e if not isinstance(e, dict) else event_from_dict(e) for e in read_events(args.session)]
    except SessionMonitorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    events = [e for e in events if e is not None]
    counted = [0]

    def count(event) -> None:
        counted[0] += 1

    def per_event(sink) -> float:
        walls = []
        for _ in range(args.repeat):
            s = sink()
            t0 = time.perf_counter()
            for e in events:
                s(e)
            walls.append(time.perf_counter() - t0)
        return 1e6 * statistics.median(walls) / len(events)

    base = per_event(lambda: count)
    view_us = per_event(lambda: TerminalView(console=Console(force_terminal=False)))
    view = TerminalView(console=Console(force_terminal=False), title=str(args.session))
    for e in events:
        view(e)
    with open(os.devnull, "w") as sink:
        console = Console(file=sink, width=120, force_terminal=True, color_system="standard")
        walls = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            for _ in range(REDRAWS):
                console.print(view)
            walls.append((time.perf_counter() - t0) / REDRAWS)
    redraw_ms = 1000 * statistics.median(walls)
    print(f"{args.session}: {len(events)} events; median of {args.repeat} runs")
    print(f"  counting sink (baseline)  {base:6.2f} us/event")
    print(f"  terminal view             {view_us:6.2f} us/event  ({view_us / base:.1f}x the baseline)")
    print(f"  one redraw (120 columns)  {redraw_ms:6.2f} ms  -> 4 redraws/s = {0.4 * redraw_ms:.2f} % of a core")
    return 0


if __name__ == "__main__":
    sys.exit(main())
