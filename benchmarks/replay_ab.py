"""Replay speed of this checkout against another source tree, runs alternating, same machine.

For a before/after of a change: ``--before SRC`` is the ``src`` folder of the code before
it (e.g. ``git archive <commit> | tar -x -C /tmp/before``, then ``/tmp/before/src``). Each
round replays the file once with each tree (``session-monitor replay --speed max
--no-view --no-report``, prosody only with ``--no-asr``, and the full pipeline), in
alternating order, each in a fresh process; printed per tree and mode: the minimum wall
time over the rounds (the least disturbed run), x real time, and the child's CPU seconds
(user + system, less sensitive to other load than wall time), with after ÷ before.
Start-up (imports, model load) is inside these times, as a user sees it.

Usage: python benchmarks/replay_ab.py --before SRC [--rounds N] [--modes no-asr,full] [FILE]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import machine_line, table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def replay_once(src: Path, audio: Path, *, asr: bool) -> tuple[float, float]:
    """(wall s, CPU s) of one replay in a fresh process with ``src`` first on the path."""
    env = dict(os.environ, PYTHONPATH=str(src))
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "session_monitor", "replay", str(audio), "--session-dir", f"{tmp}/s",
               "--no-view", "--no-report", *([] if asr else ["--no-asr"])]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, capture_output=True, cwd=str(src.parent))
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", default=str(ROOT / "sample_audio" / "demo_session.flac"))
    ap.add_argument("--before", required=True, type=Path, help="the src folder of the code before")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--modes", default="no-asr,full")
    args = ap.parse_args()
    audio = Path(args.file).resolve()
    duration = sf.info(audio).duration
    trees = {"before": args.before.resolve(), "after": ROOT / "src"}
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for r in range(args.rounds):
        for mode in args.modes.split(","):
            order = ["before", "after"] if r % 2 == 0 else ["after", "before"]
            for name in order:
                results.setdefault((name, mode), []).append(replay_once(trees[name], audio, asr=mode == "full"))
    print(machine_line())
    print(f"{audio.name} ({duration:.1f} s), {args.rounds} rounds alternating; min over rounds")
    rows = []
    for mode in args.modes.split(","):
        b = min(w for w, _ in results["before", mode]), min(c for _, c in results["before", mode])
        a = min(w for w, _ in results["after", mode]), min(c for _, c in results["after", mode])
        rows.append([mode, f"{b[0]:.2f}", f"{a[0]:.2f}", f"{duration / b[0]:.1f}", f"{duration / a[0]:.1f}",
                     f"{a[0] / b[0]:.3f}", f"{b[1]:.2f}", f"{a[1]:.2f}", f"{a[1] / b[1]:.3f}"])
    print(table(["mode", "wall before s", "wall after s", "x rt before", "x rt after", "wall after/before",
                 "CPU before s", "CPU after s", "CPU after/before"], rows))


if __name__ == "__main__":
    main()
