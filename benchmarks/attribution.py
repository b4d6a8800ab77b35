"""Cost of speaker attribution per utterance, against the rest of the pipeline in the same run.

A stereo session is mixed to mono and replayed at ``--speed max`` twice in this
process: with attribution (``attribution.enabled = true``) and without (the mono
channel stays ``unknown``). Reported per VAD utterance (the unit the transcriber
gets before attribution splits it by speaker):

- ``attribution stage``: CPU time (of its thread) inside :meth:`MonoAttribution.process`
  (features, clustering, decisions, relabelling), measured directly; ``--embedding``
  chooses ``mfcc`` (before issue 16) and/or ``ge2e`` (after);
- ``attribution overhead``: the whole run with attribution minus the run without
  (adds the second prosody tracker that per-role baselines need);
- ``rest of pipeline``: the run without attribution (VAD, prosody, turns, rupture
  model, event log), with or without ASR (``--asr``).

The issue's budget is <= 50 ms per utterance on 2 cores. Model loading and warm-up
are outside the timed part.

Usage: python benchmarks/attribution.py [FILE ...] [--asr] [--embedding mfcc|ge2e]
(default: sample_audio/demo_session.flac; ../shared/data/conversation_2speakers.wav is mono already)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _mono_file(path: Path, tmp: Path) -> Path:
    import soundfile as sf

    data, rate = sf.read(path, dtype="float32", always_2d=True)
    out = tmp / (path.stem + ".mono.wav")
    sf.write(out, data.mean(axis=1), rate)
    return out


def run_once(path: Path, *, attribution: bool, asr: bool, embedding: str = "mfcc") -> dict:
    from session_monitor.audio.file_source import FileSource
    from session_monitor.events import Speech
    from session_monitor.prosody.tracker import ProsodyTracker
    from session_monitor.rupture.model import build_analyzers
    from session_monitor.session.bus import EventBus
    from session_monitor.session.pipeline import Pipeline
    from session_monitor.settings.loader import load_settings
    from session_monitor.speakers import attribution as attribution_module
    from session_monitor.speech.activity import SpeechActivity, UtteranceReady

    settings = load_settings(overrides={"attribution": {"enabled": attribution, "embedding": embedding}})
    import _bench

    worker = _bench.warm_pipeline(settings, asr=asr)
    # count VAD utterances and speech segments; time the attribution stage and the prosody trackers
    counts = {"utterances": 0, "segments": 0, "stage_s": 0.0, "prosody_s": 0.0}
    saved = {}

    def patch(cls, name, wrapper):
        saved[(cls, name)] = getattr(cls, name)
        setattr(cls, name, wrapper(getattr(cls, name)))

    def counting(method):
        def wrapped(self, *a, **k):
            out = method(self, *a, **k)
            counts["utterances"] += sum(isinstance(x, UtteranceReady) for x in out)
            counts["segments"] += sum(isinstance(x, Speech) for x in out)
            return out
        return wrapped

    def timing(key):
        def wrap(method):
            def wrapped(self, *a, **k):
                t0 = time.thread_time()  # CPU time of this thread: what the stage costs, not the load
                try:
                    return method(self, *a, **k)
                finally:
                    counts[key] += time.thread_time() - t0
            return wrapped
        return wrap

    patch(SpeechActivity, "process", counting)
    patch(SpeechActivity, "flush", counting)
    patch(attribution_module.MonoAttribution, "process", timing("stage_s"))
    if attribution:
        patch(attribution_module.RoleProsody, "process", timing("prosody_s"))
    else:
        patch(ProsodyTracker, "process", timing("prosody_s"))
    try:
        source = FileSource(path, block_ms=settings.audio.block_ms, speed=None)
        pipeline = Pipeline.from_settings(settings, source, EventBus(), roles=["unknown"], worker=worker,
                            analyzers=build_analyzers(settings), deterministic=True)
        t0 = time.perf_counter()
        stats = pipeline.run()
        wall = time.perf_counter() - t0
    finally:
        for (cls, name), method in saved.items():
            setattr(cls, name, method)
    return {"audio_s": stats.audio_s, "wall_s": wall, **counts}


def _busy_cpu_s() -> float | None:
    """CPU seconds all processes have used so far (from /proc/stat; None where there is none)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return None
    ticks = [int(x) for x in fields]
    idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
    return (sum(ticks[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--asr", action="store_true", help="include transcription in the rest of the pipeline")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, best kept (default 3)")
    parser.add_argument("--embedding", choices=("mfcc", "ge2e"), action="append",
                        help="the voice features to time (default: both, mfcc = before, ge2e = after)")
    args = parser.parse_args(argv)
    files = args.files or [ROOT / "sample_audio" / "demo_session.flac"]
    print(f"cores: {os.cpu_count()}  asr: {args.asr}")
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            mono = _mono_file(path, Path(tmp))
            busy0, own0, wall0 = _busy_cpu_s(), _own_cpu_s(), time.perf_counter()
            off = min((run_once(mono, attribution=False, asr=args.asr) for _ in range(args.repeat)),
                      key=lambda r: r["wall_s"])
            for embedding in args.embedding or ["mfcc", "ge2e"]:
                on = min((run_once(mono, attribution=True, asr=args.asr, embedding=embedding)
                          for _ in range(args.repeat)), key=lambda r: r["wall_s"])
                _report(path, embedding, on, off)
            print("  others' cores (load of other processes during these runs): "
                  + ("unknown" if others(busy0, own0, wall0) is None else
                     f"{others(busy0, own0, wall0):.2f} of {os.cpu_count()}"))
    return 0


def others(busy0: float | None, own0: float, wall0: float) -> float | None:
    """Cores other processes kept busy since ``wall0``: the machine is shared, timings depend on it."""
    if busy0 is None:
        return None
    return max(0.0, (_busy_cpu_s() - busy0) - (_own_cpu_s() - own0)) / (time.perf_counter() - wall0)


def _report(path: Path, embedding: str, on: dict, off: dict) -> None:
    # attribution = its stage + the second prosody tracker (per-role baselines)
    cost_s = on["stage_s"] + max(0.0, on["prosody_s"] - off["prosody_s"])
    rest_s = on["wall_s"] - cost_s
    n = max(1, off["utterances"])
    print(f"{path.name} [{embedding}]: {on['audio_s']:.0f} s audio, {n} VAD utterances, "
          f"{on['segments']} attributed speech segments; run {on['wall_s']:.1f} s with attribution, {off['wall_s']:.1f} s without")
    print(f"  attribution (stage {1000 * on['stage_s'] / n:.1f} + 2nd prosody tracker "
          f"{1000 * (cost_s - on['stage_s']) / n:.1f})  {1000 * cost_s / n:7.1f} ms/utterance"
          f"  {1000 * cost_s / max(1, on['segments']):6.1f} ms/segment"
          f"  {100 * cost_s / on['audio_s']:.2f} % of real time")
    print(f"  rest of the pipeline (same run)          {1000 * rest_s / n:7.1f} ms/utterance"
          f"  {1000 * rest_s / max(1, on['segments']):6.1f} ms/segment"
          f"  {100 * rest_s / on['audio_s']:.2f} % of real time")
    print(f"  budget 50 ms/utterance: {'ok' if 1000 * cost_s / n <= 50 else 'over'}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    np.seterr(all="ignore")
    sys.exit(main())
