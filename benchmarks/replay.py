"""Replay speed and memory of the full pipeline, against bare faster-whisper.

For each file: the full pipeline (``session-monitor replay --speed max``: VAD,
prosody, turns, transcription, rupture model, events.jsonl), the pipeline without
ASR (prosody only), and the baseline measured in the same run: bare faster-whisper
``transcribe`` of every channel of the same file with the same model, compute type,
threads, beam size and word timestamps, with its own VAD filter. Each measurement
runs in a fresh process, so its peak RSS is its own; model loading and warm-up are
excluded from the timed part of all three. A fourth run, the Silero VAD model alone over
every channel in ~1 s calls, then F0 alone on the hops it calls speech, and decoding the
file, gives the floor under the prosody-only figure (that replay does these three and
everything else): its ceiling if the three ran perfectly in parallel on two cores. They run one after the other per
file (and per repeat), so they see about the same machine load; with ``--repeat N``
each time is the minimum over N runs (the least disturbed one), and the full ÷ bare ratio is
also given as the median (and range) of the N ratios of runs made back to back.

Also printed per measurement: CPU seconds per wall second of the child (cores used;
the pipeline's ASR runs on CTranslate2's own threads), audio seconds per CPU second
(less sensitive to other load than wall time: what one free core would give a
single-threaded stage), and how busy the rest of the machine was meanwhile.

Two experiments on settings that exist already (no code change), each against the
default run of the same file in the same run:

- ``--block-ms 480,960``: prosody-only runs with bigger pipeline blocks (``[audio]
  block_ms``, default 96): how much of the prosody-only cost is per-block overhead
  (one Silero call and one YIN call per channel per block; at --speed max the Silero
  calls already cover ~1 s each);
- ``--asr-threads 1``: full-pipeline runs with ``[transcriber] cpu_threads`` = 1
  (default 2): whether CTranslate2's threads compete with the pipeline thread;
- ``--variant MODE:SECTION.KEY=VALUE[,...]`` (repeatable): any other settings, e.g.
  ``--variant full:transcriber.max_lookahead_s=120`` (a replay's packed Whisper
  batches are sent after half the lookahead; a longer one fills them to ``batch_s``);
  ``env.NAME=VALUE`` sets an environment variable of that run only, e.g.
  ``--variant full:env.OMP_WAIT_POLICY=PASSIVE`` (the bare baseline keeps the defaults).

Usage: python benchmarks/replay.py [--quick] [--all] [--repeat N] [--block-ms LIST] [--asr-threads LIST]
                                  [--variant MODE:SECTION.KEY=VALUE ...] [FILE ...]
(default: the demo session and ../shared/data/jfk.flac; ``--all``: the six sessions of
sample_audio/ as well; ``--quick``: the demo session only)
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILES = [ROOT / "sample_audio" / "demo_session.flac", ROOT.parent / "shared" / "data" / "jfk.flac"]

TARGET_OVERHEAD = 1.15
TARGET_FULL_RTF = 15.0
TARGET_PROSODY_RTF = 300.0


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


def measure_pipeline(path: str, asr: bool, overrides: dict | None = None) -> dict:
    from session_monitor.audio.file_source import FileSource
    from session_monitor.rupture.model import build_analyzers
    from session_monitor.session.bus import EventBus
    from session_monitor.session.pipeline import Pipeline
    from session_monitor.session.roles import parse_roles
    from session_monitor.session.store import SessionStore, prepare_session_dir
    from session_monitor.settings.loader import load_settings

    settings = load_settings(overrides=overrides)
    source = FileSource(path, block_ms=settings.audio.block_ms, speed=None)
    roles = parse_roles(None if source.channels <= 2 else ",".join(["unknown"] * source.channels),
                        source.channels, settings.roles)
    import _bench

    worker = _bench.warm_pipeline(settings, asr=asr)
    with tempfile.TemporaryDirectory() as tmp:
        store = SessionStore(prepare_session_dir(Path(tmp) / "s"))
        bus = EventBus()
        bus.subscribe(store.write)
        pipeline = Pipeline.from_settings(settings, source, bus, roles=roles, worker=worker, analyzers=build_analyzers(settings),
                            deterministic=True)
        cpu0 = _cpu_s()
        t0 = time.perf_counter()
        stats = pipeline.run()
        wall = time.perf_counter() - t0
        cpu = _cpu_s() - cpu0
        store.finish(complete=True)
    return {"audio_s": stats.audio_s, "wall_s": wall, "events": stats.events, "peak_rss_mb": _peak_rss_mb(),
            "cpu_s": cpu}


def measure_bare(path: str) -> dict:
    import soundfile as sf
    import soxr
    from faster_whisper import WhisperModel

    from session_monitor.settings.loader import load_settings
    from session_monitor.speech.asr_backend import resolve_model

    s = load_settings().transcriber
    target, _ = resolve_model(s)
    model = WhisperModel(target, device=s.device, compute_type=s.compute_type, cpu_threads=s.cpu_threads)
    import av  # noqa: F401  (decode like the pipeline for compressed files)

    data, rate = sf.read(path, dtype="float32", always_2d=True)
    channels = [soxr.resample(data[:, c], rate, 16000) if rate != 16000 else data[:, c]
                for c in range(data.shape[1])]
    list(model.transcribe(channels[0][:16000], language=s.language, beam_size=1)[0])  # warm-up
    cpu0 = _cpu_s()
    t0 = time.perf_counter()
    for audio in channels:
        segments, _ = model.transcribe(audio, language=s.language, beam_size=s.beam_size, word_timestamps=True,
                                       condition_on_previous_text=False, vad_filter=True)
        list(segments)
    wall = time.perf_counter() - t0
    return {"audio_s": len(channels[0]) / 16000, "wall_s": wall, "peak_rss_mb": _peak_rss_mb(),
            "cpu_s": _cpu_s() - cpu0}


def measure_vad(path: str) -> dict:
    """The Silero VAD model alone over every channel, ~1 s per call (as the replay scores it),
    then, timed apart, F0 alone (YIN and the voicing measure) over the 10 ms hops of the
    chunks the VAD calls speech, ten hops per call (as the pipeline's 96 ms blocks do), and
    decoding the file. Together they are the floor under the prosody-only replay, which
    does all three and much more: it cannot beat
    ``audio_s / ((cpu_s + f0_cpu_s + decode_cpu_s) / 2)`` on two cores."""
    import soundfile as sf
    import soxr

    from session_monitor.prosody.pitch import periodicity, yin_frames
    from session_monitor.settings.loader import load_settings
    from session_monitor.speech.activity import CHUNK, SileroVad

    settings = load_settings()
    p = settings.prosody
    hop = round(p.hop_ms * 16000 / 1000)
    frame = 1 << int(np.ceil(np.log2(3 * 16000 / p.fmin_hz)))  # as ProsodyTracker
    decode0 = _cpu_s()
    data, rate = sf.read(path, dtype="float32", always_2d=True)
    channels = [soxr.resample(data[:, c], rate, 16000) if rate != 16000 else data[:, c] for c in range(data.shape[1])]
    decode_cpu = _cpu_s() - decode0
    SileroVad()(np.zeros((3, CHUNK), dtype=np.float32))  # session load and first run, untimed
    probs = []
    cpu0 = _cpu_s()
    t0 = time.perf_counter()
    for audio in channels:
        vad = SileroVad()
        n = len(audio) // CHUNK
        chunks = np.ascontiguousarray(audio[: n * CHUNK].reshape(n, CHUNK), dtype=np.float32)
        probs.append(np.concatenate([vad(chunks[i : i + 31]) for i in range(0, n, 31)]))  # 31 chunks = 0.99 s
    wall = time.perf_counter() - t0
    cpu = _cpu_s() - cpu0
    # the hops whose frame ends in a speech chunk, in runs of ten consecutive hops
    calls = []
    for audio, prob in zip(channels, probs):
        ends = np.arange(frame, len(audio) + 1, hop)
        speech = prob[np.minimum((ends - 1) // CHUNK, len(prob) - 1)] >= settings.speech_activity.threshold
        for first in range(0, len(ends), 10):
            take = np.flatnonzero(speech[first : first + 10])
            if len(take):
                lo, hi = first + take[0], first + take[-1] + 1
                calls.append(audio[ends[lo] - frame : ends[hi - 1]])
    f0_cpu0 = _cpu_s()
    hops = 0
    for signal in calls:
        frames = np.lib.stride_tricks.sliding_window_view(signal, frame)[::hop]
        f0 = yin_frames(frames, sr=16000, fmin=p.fmin_hz, fmax=p.fmax_hz, threshold=p.yin_threshold)
        periodicity(signal, f0, sr=16000, hop=hop, frame_length=frame)
        hops += len(frames)
    return {"audio_s": len(channels[0]) / 16000, "wall_s": wall, "peak_rss_mb": _peak_rss_mb(),
            "cpu_s": cpu, "f0_cpu_s": _cpu_s() - f0_cpu0, "f0_hops": hops, "decode_cpu_s": decode_cpu}


def _child(mode: str, path: str, overrides: dict | None = None) -> dict:
    import os

    import _bench as b

    overrides = dict(overrides or {})
    env = {**os.environ, **{k: str(v) for k, v in overrides.pop("env", {}).items()}}
    cmd = [sys.executable, __file__, "--child", mode, path] + ([json.dumps(overrides)] if overrides else [])
    t0 = time.monotonic()
    own0 = b.own_cpu_s()
    load = b.MachineLoad().start()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if out.returncode != 0:
        raise SystemExit(f"{mode} on {path} failed: {out.stderr.strip()[-600:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    load.stop(b.own_cpu_s() - own0)
    result["process_wall_s"] = time.monotonic() - t0
    result["others_cores"] = load.others_cores
    return result


def main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        mode, path = argv[1], argv[2]
        overrides = json.loads(argv[3]) if len(argv) > 3 else None
        result = {"full": lambda: measure_pipeline(path, True, overrides),
                  "prosody": lambda: measure_pipeline(path, False, overrides),
                  "bare": lambda: measure_bare(path),
                  "vad": lambda: measure_vad(path)}[mode]()
        print(json.dumps(result))
        return
    import _bench as b

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path, help="recordings (default: demo session and jfk.flac)")
    ap.add_argument("--quick", action="store_true", help="the demo session only")
    ap.add_argument("--all", action="store_true", help="jfk.flac and the six sessions of sample_audio/")
    ap.add_argument("--repeat", type=int, default=1, help="runs per measurement; times are the minimum")
    ap.add_argument("--block-ms", default="", help="extra prosody-only runs at these block_ms values, e.g. 480,960")
    ap.add_argument("--asr-threads", default="", help="extra full-pipeline runs at these transcriber.cpu_threads, e.g. 1")
    ap.add_argument("--variant", action="append", default=[], metavar="MODE:SECTION.KEY=VALUE[,...]",
                    help="an extra run (MODE full or prosody) with these settings, e.g. "
                         "full:transcriber.max_lookahead_s=120")
    args = ap.parse_args(argv)
    if args.files:
        files = args.files
    elif args.quick:
        files = [DEFAULT_FILES[0]]
    elif args.all:
        files = [DEFAULT_FILES[1]] + [b.SAMPLE_AUDIO / f"{n}.flac" for n in b.DEMO_SESSIONS]
    else:
        files = DEFAULT_FILES
    # extra runs: name -> (mode, settings overrides, label, compared with)
    variants = {f"prosody@{ms}": ("prosody", {"audio": {"block_ms": ms}}, f"prosody only, {ms} ms blocks", "prosody")
                for ms in (int(x) for x in args.block_ms.split(",") if x.strip())}
    variants.update({f"full@{n}": ("full", {"transcriber": {"cpu_threads": n}}, f"full, ASR {n} thread(s)", "full")
                     for n in (int(x) for x in args.asr_threads.split(",") if x.strip())})
    for spec in args.variant:
        mode, _, assignments = spec.partition(":")
        if mode not in ("full", "prosody") or "=" not in assignments:
            ap.error(f"--variant {spec!r}: use MODE:SECTION.KEY=VALUE with MODE full or prosody")
        overrides = b.settings_overrides(assignments.split(","))
        variants[f"{mode}@{assignments}"] = (mode, overrides, f"{mode}, {assignments}", mode)
    print(b.machine_line())
    rows, summary, loaded = [], [], []
    labels = {"bare": "bare whisper", "full": "full pipeline", "prosody": "prosody only",
              "vad": "Silero VAD alone"}
    for path in files:
        if not path.is_file():
            print(f"{path}: missing, skipped")
            continue
        runs: dict[str, list[dict]] = {}
        for _ in range(args.repeat):
            for mode in ("bare", "full", "prosody", "vad"):
                runs.setdefault(mode, []).append(_child(mode, str(path)))
            for name, (mode, overrides, _label, _base) in variants.items():
                runs.setdefault(name, []).append(_child(mode, str(path), overrides))
        results = {mode: min(rs, key=lambda r: r["wall_s"]) for mode, rs in runs.items()}
        for mode, r in results.items():
            label = labels.get(mode) or variants[mode][2]
            rows.append([path.name, r["audio_s"], label, r["wall_s"], r["audio_s"] / r["wall_s"],
                         r["audio_s"] / r["cpu_s"], r["peak_rss_mb"], r["cpu_s"] / r["wall_s"], r["others_cores"]])
            if r["others_cores"] > 0.3:
                loaded.append(f"{path.name} {label}")
        full, bare = results["full"], results["bare"]
        rtf = {mode: r["audio_s"] / r["wall_s"] for mode, r in results.items()}
        overhead = full["wall_s"] / bare["wall_s"]
        vad = results["vad"]  # decoding, VAD and F0 alone, perfectly parallel on two cores, nothing else
        ceiling = vad["audio_s"] / ((vad["cpu_s"] + vad["f0_cpu_s"] + vad["decode_cpu_s"]) / 2)
        # each repeat runs bare and full back to back: their ratios show the machine's spread
        paired = sorted(f["wall_s"] / bb["wall_s"] for f, bb in zip(runs["full"], runs["bare"]))
        summary += [
            [path.name, "full pipeline wall s", full["wall_s"], "bare whisper", bare["wall_s"], overhead,
             f"ratio <= {TARGET_OVERHEAD}", b.verdict(overhead, TARGET_OVERHEAD, at_most=True)],
            [path.name, "full pipeline x real time", rtf["full"], "bare whisper", rtf["bare"],
             rtf["full"] / rtf["bare"], f">= {TARGET_FULL_RTF:g}", b.verdict(rtf["full"], TARGET_FULL_RTF, at_most=False)],
            [path.name, "prosody only x real time", rtf["prosody"], "full pipeline", rtf["full"],
             rtf["prosody"] / rtf["full"], f">= {TARGET_PROSODY_RTF:g}",
             b.verdict(rtf["prosody"], TARGET_PROSODY_RTF, at_most=False)],
            [path.name, "prosody only x real time", rtf["prosody"], "Silero VAD alone", rtf["vad"],
             rtf["prosody"] / rtf["vad"], "", ""],
            [path.name, "prosody only x real time", rtf["prosody"], "floor: decode+VAD+F0 on 2 cores", ceiling,
             rtf["prosody"] / ceiling, f">= {TARGET_PROSODY_RTF:g}",
             "floor under target" if ceiling < TARGET_PROSODY_RTF else ""],
        ]
        if len(paired) > 1:
            summary.append([path.name, f"full ÷ bare, {len(paired)} paired runs: median", statistics.median(paired),
                            f"range {paired[0]:.2f}-{paired[-1]:.2f}", "", "", f"<= {TARGET_OVERHEAD}",
                            b.verdict(statistics.median(paired), TARGET_OVERHEAD, at_most=True)])
        for name, (_mode, _overrides, label, base) in variants.items():
            summary.append([path.name, f"{label}: x real time", rtf[name], labels[base] + " (defaults)", rtf[base],
                            rtf[name] / rtf[base], "", ""])
    print(b.table(["file", "audio s", "measure", "wall s", "x real time", "audio s per CPU s", "peak RSS MB",
                   "CPU cores", "others' cores"], rows))
    print()
    print(b.table(["file", "figure", "measured", "baseline", "baseline value", "ratio", "target", "verdict"],
                  summary))
    if loaded:
        print(f"\nmeasured UNDER LOAD (other processes > 0.3 cores): {'; '.join(loaded)}")


if __name__ == "__main__":
    main(sys.argv[1:])
