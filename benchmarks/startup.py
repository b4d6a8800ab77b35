"""Launch to ready-to-capture: the CLI end to end, and where the seconds go.

1. ``session-monitor live --device pulse ... --duration 1`` against a private
   PulseAudio null sink (as ``tests/conftest.py``), timed from launch to the
   ``ready: capturing`` line on stderr; ``--repeat`` times (the first run may read
   the model and libraries from disk, later ones from the page cache).
2. The same steps in a fresh process, each timed with ``time.perf_counter``: the
   calls ``cli.cmd_live`` and ``cli._run_session`` make, in their order, with the
   big imports (faster-whisper, onnxruntime; librosa with prosody.pitch = "librosa")
   split out of the steps that first need them.
   The resident memory after each step is printed too (where the memory goes).
3. Baseline, measured in the same run: a fresh Python process that imports
   faster-whisper, loads the same bundled model with the same compute type and
   threads, and runs one warm-up pass: what any tool built on faster-whisper pays.
   The ratio launch-to-ready / baseline is our start-up overhead.

Usage::

    python benchmarks/startup.py [--quick] [--repeat N]

``--quick``: one launch instead of three.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import _bench as b

TARGET_READY_S = 5.0

BASELINE = """
import time, sys
t0 = time.monotonic()
from faster_whisper import WhisperModel
from session_monitor.settings.loader import load_settings
from session_monitor.speech.asr_backend import resolve_model
import numpy as np
s = load_settings().transcriber
model = WhisperModel(resolve_model(s)[0], device=s.device, compute_type=s.compute_type, cpu_threads=s.cpu_threads)
model.transcribe(np.zeros(16000, np.float32), language=s.language, beam_size=1, without_timestamps=True)
print(time.monotonic())
"""


def launch_to_ready(env: dict, folder: Path) -> tuple[float, float]:
    """(seconds from launch to 'ready: capturing', seconds to exit) of one ``session-monitor live``."""
    cmd = [*b.cli(), "live", "--device", "pulse", "--roles", "therapist,patient", "--consent", b.CONSENT,
           "--session-dir", str(folder), "--duration", "1", "--no-view", "--no-report"]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ready: list[float] = []
    lines: list[str] = []

    def read() -> None:
        for line in proc.stderr:
            lines.append(line)
            if "ready: capturing" in line and not ready:
                ready.append(time.monotonic())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        proc.wait(180)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    reader.join(5)
    if proc.returncode != 0 or not ready:
        raise SystemExit(f"live failed ({proc.returncode}): {''.join(lines)[-800:]}")
    return ready[0] - t0, time.monotonic() - t0


def child(folder: str) -> None:
    """The steps of ``cmd_live`` + ``_run_session`` up to 'ready: capturing', one line of JSON."""
    def rss_mb() -> float:
        return (b.proc_rss_mb(os.getpid()) or (0.0, 0.0))[0]

    steps: list[tuple[str, float, float]] = [("python start", time.monotonic(), rss_mb())]

    def mark(name: str) -> None:
        steps.append((name, time.monotonic(), rss_mb()))

    import importlib

    cli = importlib.import_module("session_monitor.cli.main")  # the package's ``main`` is the function

    mark("import session_monitor.cli.main")
    args = cli.build_parser().parse_args(["live", "--device", "pulse", "--roles", "therapist,patient", "--consent",
                                          b.CONSENT, "--session-dir", folder, "--no-view", "--no-report"])
    from session_monitor.settings.loader import load_settings

    settings = load_settings(args.config, clinician=args.clinician)
    mark("parse args + load settings")
    from session_monitor.session.consent import load_consent

    consent = load_consent(args.consent)
    mark("consent")
    from session_monitor.audio.microphone import MicrophoneSource

    a = settings.audio
    source = MicrophoneSource(args.device[0], channels=2, capture_rate=a.capture_rate, block_ms=a.block_ms,
                              capture_block_ms=a.capture_block_ms, queue_s=a.queue_s)
    mark("find device + microphone source (sounddevice, PortAudio)")
    from session_monitor.session.roles import parse_roles
    from session_monitor.session.runner import SessionRun

    mark("import the session runner (pipeline, transcriber, store)")
    run = SessionRun(settings, source, parse_roles(args.roles, 2, settings.roles),
                     meta={"mode": "live", "source": source.name, "consent": consent}, deterministic=False)
    mark("session run: rupture model (lexicon, classifiers), attribution")
    run.claim(folder)
    mark("session folder")
    run.start()
    mark("start: Whisper load + warm-up, pitch warm-up, Silero VAD, session.json")
    run.open_source()
    mark("open capture stream")
    run.close()
    run.finish(None, end_reason="stopped", aborted=True, write_report=False)
    run.release()
    print(json.dumps(steps))


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        child(argv[1])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one launch instead of three")
    ap.add_argument("--repeat", type=int, help="launches of the CLI (default 3, --quick 1)")
    args = ap.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 3)
    print(b.machine_line())
    with tempfile.TemporaryDirectory(prefix="sm-start-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "pulse").mkdir()
        with b.PulseServer(tmp / "pulse") as pulse:
            own0 = b.own_cpu_s()
            load = b.MachineLoad().start()
            readies = []
            for i in range(repeat):
                ready_s, exit_s = launch_to_ready(pulse.env, tmp / f"s{i}")
                readies.append(ready_s)
                print(f"  launch {i + 1}: ready after {ready_s:.2f} s (exited after {exit_s:.2f} s)")
            t0 = time.monotonic()
            out = subprocess.run([sys.executable, "-c", BASELINE], capture_output=True, text=True, check=True)
            baseline_s = float(out.stdout.split()[-1]) - t0
            t0 = time.monotonic()
            out = subprocess.run([sys.executable, __file__, "--child", str(tmp / "child")], env=pulse.env,
                                 capture_output=True, text=True, check=False)
            if out.returncode != 0:
                raise SystemExit(f"breakdown failed: {out.stderr.strip()[-800:]}")
            steps = json.loads(out.stdout.strip().splitlines()[-1])
            load.stop(b.own_cpu_s() - own0)
    print(f"machine during the run: {load.describe()}\n")
    breakdown = []
    prev, prev_rss = t0, 0.0
    for name, t, rss in steps:
        breakdown.append([name, t - prev, 100 * (t - prev) / (steps[-1][1] - t0), rss - prev_rss, rss])
        prev, prev_rss = t, rss
    breakdown.append(["total (in-process breakdown)", steps[-1][1] - t0, 100.0, steps[-1][2], steps[-1][2]])
    print(b.table(["step (fresh process, in cmd_live/_run_session order)", "s", "% of total", "+RSS MB", "RSS MB"],
                  breakdown))
    print()
    ready = statistics.median(readies)
    rows = [
        [f"launch to ready, median of {repeat}", ready, baseline_s, ready / baseline_s, f"<= {TARGET_READY_S:g}",
         b.verdict(ready, TARGET_READY_S, at_most=True)],
        ["launch to ready, min", min(readies), baseline_s, min(readies) / baseline_s, "", ""],
    ]
    print(b.table(["figure (s)", "measured", "baseline: bare faster-whisper load", "ratio", "target", "verdict"],
                  rows))
    if load.loaded:
        print(f"\nmeasured UNDER LOAD: other processes used about {load.others_cores:.2f} of the cores")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
