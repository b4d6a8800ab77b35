#!/usr/bin/env python3
"""Time the rupture model alone over the events of a replayed demo session.

Replays ``sample_audio/demo_session.flac`` through the full pipeline (the
baseline: its wall time, measured in this run), then feeds the recorded events to

- a no-op analyzer (the cost of the replay harness itself), and
- the rupture model (:class:`session_monitor.rupture.model.RuptureModel`),

each ``--repeat`` times, ticking at the pipeline's 96 ms blocks. Prints events per
second, microseconds per event, and the rupture model's share of the full
pipeline's wall time.

Usage::

    python benchmarks/rupture_model.py [--audio FILE] [--session DIR] [--repeat N]
        [--set SECTION.KEY=VALUE ...]

``--set`` times a second rupture model with those settings changed, over the same events in
the same run (e.g. ``--set utterances.whole_turn=false``: the change against the default).

``--session`` reuses an already replayed session folder; the pipeline's wall time
then comes from its session.json (audio_s / rtf) instead of a fresh replay.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _bench import settings_overrides

from session_monitor.cli.main import main as cli_main
from session_monitor.event_log import read_events
from session_monitor.rupture.model import OUTPUT_TYPES, RuptureModel, run_on_events
from session_monitor.settings.loader import load_settings

ROOT = Path(__file__).resolve().parents[1]


class NoOp:
    """An analyzer that does nothing: the baseline cost of feeding events and ticks."""

    def on_event(self, event):
        return []

    def tick(self, t):
        return []

    def finish(self, t):
        return []


def _time(make, events, repeat: int) -> list[float]:
    run_on_events(make(), events)  # untimed: the first pass pays the classifiers' and encoder's loading
    walls = []
    for _ in range(repeat):
        model = make()
        t0 = time.perf_counter()
        run_on_events(model, events)
        walls.append(time.perf_counter() - t0)
    return walls


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--audio", type=Path, default=ROOT / "sample_audio" / "demo_session.flac")
    ap.add_argument("--session", type=Path, help="an already replayed session folder (skips the replay)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="also time a model with this setting changed (repeatable; the value as JSON)")
    args = ap.parse_args()
    changed = settings_overrides(args.set)

    if args.session is not None:
        folder = args.session
        meta = json.loads((folder / "session.json").read_text(encoding="utf-8"))
        audio_s, pipeline_wall = meta["audio_s"], meta["audio_s"] / meta["rtf"]
        source = f"{folder} (pipeline time from its session.json)"
    else:
        folder = Path(tempfile.mkdtemp(prefix="bench_rupture."))
        t0 = time.perf_counter()
        code = cli_main(["replay", str(args.audio), "--session-dir", str(folder), "--force", "--no-view"])
        pipeline_wall = time.perf_counter() - t0
        if code != 0:
            print(f"replay failed with exit code {code}", file=sys.stderr)
            return code
        audio_s = json.loads((folder / "session.json").read_text(encoding="utf-8"))["audio_s"]
        source = f"{args.audio} (replayed now, --speed max, includes model loading)"

    events = [e for e in read_events(folder) if e["type"] not in OUTPUT_TYPES]
    n = len(events)
    settings = load_settings()
    from session_monitor.events import event_from_dict  # typed once, outside the timing

    typed = [event_from_dict(e) for e in events]
    base = _time(NoOp, typed, args.repeat)
    model = _time(lambda: RuptureModel.from_settings(settings), typed, args.repeat)
    b, m = statistics.median(base), statistics.median(model)
    alone = max(m - b, 1e-9)

    print(f"session: {source}")
    print(f"machine: {platform.machine()} {platform.processor() or ''} python {platform.python_version()}")
    print(f"audio: {audio_s:.1f} s, input events: {n}, ticks: {int(audio_s / 0.096)}; median of {args.repeat} runs")
    print(f"{'':28s} {'wall s':>8s} {'events/s':>10s} {'us/event':>9s} {'x real time':>12s}")
    print(f"{'full pipeline (baseline)':28s} {pipeline_wall:8.2f} {n / pipeline_wall:10.0f} "
          f"{1e6 * pipeline_wall / n:9.1f} {audio_s / pipeline_wall:12.1f}")
    print(f"{'no-op analyzer (harness)':28s} {b:8.3f} {n / b:10.0f} {1e6 * b / n:9.1f} {audio_s / b:12.0f}")
    print(f"{'rupture model + harness':28s} {m:8.3f} {n / m:10.0f} {1e6 * m / n:9.1f} {audio_s / m:12.0f}")
    print(f"{'rupture model alone':28s} {alone:8.3f} {n / alone:10.0f} {1e6 * alone / n:9.1f} "
          f"{audio_s / alone:12.0f}")
    print(f"rupture model share of the full pipeline's time: {100 * alone / pipeline_wall:.2f} %")
    if changed:
        other = load_settings(overrides=changed)
        o = statistics.median(_time(lambda: RuptureModel.from_settings(other), typed, args.repeat))
        print(f"rupture model with {' '.join(args.set)}: {o:.3f} s + harness, alone {max(o - b, 1e-9):.3f} s, "
              f"{max(o - b, 1e-9) / alone:.2f}x the default's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
