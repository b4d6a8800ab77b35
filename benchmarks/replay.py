"""Replay speed and memory of the full pipeline, against bare faster-whisper.

For each file: the full pipeline (``session-monitor replay --speed max``: VAD,
prosody, turns, transcription, rupture model, events.jsonl), the pipeline without
ASR (prosody only), and the baseline measured in the same run: bare faster-whisper
``transcribe`` of every channel of the same file with the same model, compute type,
threads, beam size and word timestamps, with its own VAD filter. Each measurement
runs in a fresh process, so its peak RSS is its own; model loading and warm-up are
excluded from the timed part of all three.

Usage: python benchmarks/replay.py [FILE ...]   (default: the demo session and
../shared/data/jfk.flac)
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILES = [ROOT / "sample_audio" / "demo_session.flac", ROOT.parent / "shared" / "data" / "jfk.flac"]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure_pipeline(path: str, asr: bool) -> dict:
    from session_monitor.audio.replay import FileSource
    from session_monitor.bus import EventBus
    from session_monitor.cli import parse_roles
    from session_monitor.pipeline import Pipeline
    from session_monitor.rupture import build_analyzers
    from session_monitor.session_store import SessionStore, prepare_session_dir
    from session_monitor.settings import load_settings
    from session_monitor.transcriber import TranscriptionWorker, WhisperBackend

    settings = load_settings()
    source = FileSource(path, block_ms=settings.audio.block_ms, speed=None)
    roles = parse_roles(None if source.channels <= 2 else ",".join(["unknown"] * source.channels),
                        source.channels, settings)
    worker = None
    if asr:
        backend = WhisperBackend(settings.transcriber)
        backend.warm_up()
        worker = TranscriptionWorker(backend, settings.transcriber)
    Pipeline.warm_up()
    with tempfile.TemporaryDirectory() as tmp:
        store = SessionStore(prepare_session_dir(Path(tmp) / "s"))
        bus = EventBus()
        bus.subscribe(store.write)
        pipeline = Pipeline(settings, source, bus, roles=roles, worker=worker, analyzers=build_analyzers(settings),
                            deterministic=True)
        t0 = time.perf_counter()
        stats = pipeline.run()
        wall = time.perf_counter() - t0
        store.finish(complete=True)
    return {"audio_s": stats.audio_s, "wall_s": wall, "events": stats.events, "peak_rss_mb": _peak_rss_mb()}


def measure_bare(path: str) -> dict:
    import librosa
    import soundfile as sf
    from faster_whisper import WhisperModel

    from session_monitor.settings import load_settings
    from session_monitor.transcriber import resolve_model

    s = load_settings().transcriber
    target, _ = resolve_model(s)
    model = WhisperModel(target, device=s.device, compute_type=s.compute_type, cpu_threads=s.cpu_threads)
    import av  # noqa: F401  (decode like the pipeline for compressed files)

    data, rate = sf.read(path, dtype="float32", always_2d=True)
    channels = [librosa.resample(data[:, c], orig_sr=rate, target_sr=16000) if rate != 16000 else data[:, c]
                for c in range(data.shape[1])]
    list(model.transcribe(channels[0][:16000], language=s.language, beam_size=1)[0])  # warm-up
    t0 = time.perf_counter()
    for audio in channels:
        segments, _ = model.transcribe(audio, language=s.language, beam_size=s.beam_size, word_timestamps=True,
                                       condition_on_previous_text=False, vad_filter=True)
        list(segments)
    wall = time.perf_counter() - t0
    return {"audio_s": len(channels[0]) / 16000, "wall_s": wall, "peak_rss_mb": _peak_rss_mb()}


def _child(mode: str, path: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, path], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        mode, path = argv[1], argv[2]
        result = {"full": lambda: measure_pipeline(path, True), "prosody": lambda: measure_pipeline(path, False),
                  "bare": lambda: measure_bare(path)}[mode]()
        print(json.dumps(result))
        return
    files = [Path(a) for a in argv] or DEFAULT_FILES
    print(f"{'file':24s} {'audio s':>8s} {'measure':>14s} {'wall s':>8s} {'x real time':>12s} {'peak RSS MB':>12s}")
    for path in files:
        if not path.is_file():
            print(f"{path}: missing, skipped")
            continue
        results = {mode: _child(mode, str(path)) for mode in ("bare", "full", "prosody")}
        for mode, r in results.items():
            label = {"bare": "bare whisper", "full": "full pipeline", "prosody": "prosody only"}[mode]
            print(f"{path.name:24s} {r['audio_s']:8.1f} {label:>14s} {r['wall_s']:8.2f} "
                  f"{r['audio_s'] / r['wall_s']:12.1f} {r['peak_rss_mb']:12.0f}")
        ratio = results["full"]["wall_s"] / results["bare"]["wall_s"]
        print(f"{path.name:24s} full pipeline / bare faster-whisper wall time: {ratio:.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
