#!/usr/bin/env python3
"""Time and peak memory of ``session-monitor tune`` on 10 recorded demo sessions.

The six recordings in sample_audio/ are replayed once each (``--speed max``, default
settings; or reuse folders from an earlier run with ``--sessions DIR``). Ten sessions
are made from them: the six, plus copies of demo_session, withdrawal_only,
confrontation_repair and heldout_mixed (byte-identical event logs in separate
folders: tune treats them as separate sessions and caches nothing across them).
Each gets its truth file as ``annotations.json``.

Measured in this run, each in a fresh process (so peak RSS is its own):

- **baseline**: one pass of the whole rupture model over the recorded events of the
  ten sessions (``rupture.run_on_events``, what ``evaluate --rerun`` does per
  session), after reading them;
- **tune**: ``session-monitor tune --clinician bench SESSION_DIR x10 --dry-run`` from a
  deliberately bad profile that alerts too easily and flaps (``alert_on = 0.45``,
  ``alert_off = 0.44``, ``off_hold_s = 0``, ``evidence_tau_s = 60``, ``release_s = 0.5``),
  with its leave-one-session-out cross-validation (11 fits). The copies make the
  cross-validated figures optimistic (a copy of the held-out session is among the
  training sessions): this benchmark is for time and memory, not for accuracy.

Usage: python benchmarks/tune.py [--sessions DIR] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ["demo_session", "withdrawal_only", "confrontation_repair", "calm_reflective", "heldout_mixed",
           "heldout_calm"]
COPIED = ["demo_session", "withdrawal_only", "confrontation_repair", "heldout_mixed"]

BAD_PROFILE = "[fusion]\nalert_on = 0.45\nalert_off = 0.44\noff_hold_s = 0.0\nevidence_tau_s = 60.0\nrelease_s = 0.5\n"
BASELINE = """
import sys, time
from session_monitor.rupture.model import RuptureModel, run_on_events
from session_monitor.event_log import read_events
from session_monitor.settings.loader import load_settings
settings = load_settings()
sessions = [read_events(p) for p in sys.argv[1:]]
t0 = time.perf_counter()
for events in sessions:
    run_on_events(RuptureModel.from_settings(settings), events)
print(time.perf_counter() - t0)
print("PEAK_RSS_KB", __import__("resource").getrusage(__import__("resource").RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""
TUNE = """
import resource, sys
from session_monitor.cli.main import main
code = main(sys.argv[1:])
print("PEAK_RSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def _child(argv: list[str], cwd: Path) -> tuple[float, float, float, str]:
    """(wall s, CPU s, peak RSS MiB, stdout) of one fresh process (which prints its own peak RSS)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        sys.exit(f"{argv[:4]} failed: {result.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    peak_kb = next(int(line.split()[1]) for line in result.stderr.splitlines() if line.startswith("PEAK_RSS_KB"))
    return wall, cpu, peak_kb / 1024, result.stdout


def _replay_all(into: Path) -> dict[str, Path]:
    out = {}
    for name in SAMPLES:
        folder = into / name
        if not (folder / "events.jsonl").is_file():
            print(f"replaying {name} ...", file=sys.stderr, flush=True)
            subprocess.run([sys.executable, "-m", "session_monitor", "replay",
                            str(ROOT / "sample_audio" / f"{name}.flac"), "--session-dir", str(folder), "--force",
                            "--no-view", "--no-report"], check=True, capture_output=True)
        out[name] = folder
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=Path, help="folder holding replays NAME/ of the six samples (made if absent)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each measurement (the median is printed)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_tune."))
    replays = _replay_all(args.sessions or work / "replays")
    sessions = []
    for name in SAMPLES + COPIED:
        folder = work / "sessions" / (name if not (work / "sessions" / name).exists() else f"{name}_copy")
        shutil.copytree(replays[name], folder)
        shutil.copy(ROOT / "sample_audio" / f"{name}.truth.json", folder / "annotations.json")
        sessions.append(folder)
    configs = work / "cwd" / "configs"
    (configs / "clinicians").mkdir(parents=True)
    for name in ("default.toml", "markers.toml"):
        shutil.copy(ROOT / "configs" / name, configs / name)
    (configs / "clinicians" / "bench.toml").write_text(BAD_PROFILE)
    audio_min = sum(json.loads((s / "session.json").read_text()).get("audio_s", 0.0) for s in sessions) / 60
    events = sum(1 for s in sessions for _ in (s / "events.jsonl").open())

    runs: dict[str, list[tuple[float, float, float, str]]] = {"baseline": [], "tune": []}
    for _ in range(args.repeat):
        runs["baseline"].append(_child([sys.executable, "-c", BASELINE, *map(str, sessions)], work / "cwd"))
        runs["tune"].append(_child([sys.executable, "-c", TUNE, "tune", "--clinician", "bench",
                                    *map(str, sessions), "--dry-run"], work / "cwd"))

    def median(rows: list[tuple], i: int) -> float:
        return sorted(r[i] for r in rows)[len(rows) // 2]

    print(f"{len(sessions)} sessions ({len(SAMPLES)} replays + {len(COPIED)} copies), {audio_min:.1f} min of audio, "
          f"{events} events; {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
          f"median of {args.repeat}")
    print(f"{'':44s} {'wall s':>7s} {'CPU s':>7s} {'peak RSS MiB':>13s}")
    base_model = sorted(float(r[3].strip()) for r in runs["baseline"])[len(runs["baseline"]) // 2]
    print(f"{'baseline: rupture model, one pass (process)':44s} {median(runs['baseline'], 0):7.2f} "
          f"{median(runs['baseline'], 1):7.2f} {median(runs['baseline'], 2):13.0f}")
    print(f"{'  of which the model itself':44s} {base_model:7.2f}")
    print(f"{'tune --dry-run, 10 sessions, 11 fits':44s} {median(runs['tune'], 0):7.2f} "
          f"{median(runs['tune'], 1):7.2f} {median(runs['tune'], 2):13.0f}")
    print()
    print(runs["tune"][-1][3].split("dry run:")[0].rstrip())
    shutil.rmtree(work / "sessions", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
