"""What the capture checks cost per block on the live path, against the stages they sit beside.

Live, the pipeline thread handles one block (``audio.block_ms``, 96 ms) at a time: per
channel the speech activity and prosody, then the rest. Issue 15 added, per block: the
input checks (``session/input_checks.py``: input health of every channel, the bleed
decision over both channels), and a noise-floor update in each channel's speech
activity and prosody. This times, over every block of a session, in the same process
and the same loop:

- the stages as the pipeline runs them: per channel ``SpeechActivity.process`` (its
  noise-floor update included) and ``ProsodyTracker.process``;
- the input checks alone;
- the two noise-floor updates alone (what the floor following the recording costs);

and prints per-block p50 / p95 / max in ms and the checks' share of the stage time.
Times are thread CPU time (``time.thread_time``), so other load on the machine barely
moves them; each block is timed ``--repeat`` times over fresh stages and the minimum kept.

Usage: python benchmarks/capture_cost.py [--repeat N] [FILE]   (default: the demo session)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench import machine_line, percentile, table  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def run_once(y: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from session_monitor.audio.frames import Frame
    from session_monitor.prosody.tracker import ProsodyTracker
    from session_monitor.session.input_checks import InputChecks
    from session_monitor.settings.loader import load_settings
    from session_monitor.speech.activity import SpeechActivity
    from session_monitor.speech.noise_floor import NoiseFloor

    settings = load_settings()
    roles = ["therapist", "patient"]
    vads = [SpeechActivity(settings.speech_activity, channel=c, speaker=r) for c, r in enumerate(roles)]
    prosody = [ProsodyTracker(settings.prosody, speaker=r) for r in roles]
    checks = InputChecks(settings, roles)
    checks.verdict = checks.dual.finish() if checks.dual is not None else None  # decided: not dual mono
    floors = [NoiseFloor(chunk_s=0.032) for _ in roles] + [NoiseFloor(chunk_s=0.01) for _ in roles]
    stages, added, floor_cost = [], [], []
    for start in range(0, y.shape[1] - block + 1, block):
        b = y[:, start : start + block]
        t0 = time.thread_time()
        own, _ = checks.process(b, (start + block) / 16000)
        t1 = time.thread_time()
        for c in range(2):
            frame = Frame(start, c, b[c])
            vads[c].process(frame, own=None if own is None else own[c])
            prosody[c].process(frame, speaking=vads[c].speaking)
        t2 = time.thread_time()
        n_chunks, n_hops = block // 512, block // 160
        for c in range(2):
            floors[c].update(np.full(n_chunks, -60.0))
            floors[2 + c].update(np.full(n_hops, -60.0))
        t3 = time.thread_time()
        added.append(t1 - t0)
        stages.append(t2 - t1)
        floor_cost.append(t3 - t2)
    return np.array(stages), np.array(added), np.array(floor_cost)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", default=str(ROOT / "sample_audio" / "demo_session.flac"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--block-ms", type=int, default=96)
    args = ap.parse_args()
    from session_monitor.session.pipeline import Pipeline
    from session_monitor.settings.loader import load_settings

    Pipeline.warm_up(load_settings().prosody)
    y, _ = sf.read(args.file, dtype="float32", always_2d=True)
    y = np.ascontiguousarray(y.T)
    block = args.block_ms * 16
    runs = [run_once(y, block) for _ in range(args.repeat)]
    stages, added, floors = (np.min(np.stack([r[i] for r in runs]), axis=0) for i in range(3))
    ms = 1000.0
    rows = [
        [name, f"{percentile(v * ms, 50):.3f}", f"{percentile(v * ms, 95):.3f}", f"{v.max() * ms:.3f}"]
        for name, v in (("VAD + prosody, both channels (the stages)", stages),
                        ("input checks (health + bleed)", added),
                        ("noise-floor updates (VAD + prosody, both channels)", floors))
    ]
    print(machine_line())
    print(f"{Path(args.file).name}: {len(stages)} blocks of {args.block_ms} ms, min of {args.repeat} runs, "
          "thread CPU ms per block")
    print(table(["work per block", "p50", "p95", "max"], rows))
    share = added.sum() / stages.sum()
    print(f"input checks / stages: {share:.1%} of the stage time; per block budget {args.block_ms} ms: "
          f"p95 of stages + checks = {percentile((stages + added) * ms, 95):.2f} ms")


if __name__ == "__main__":
    main()
