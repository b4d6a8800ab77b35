"""A 60-minute session: replay speed, peak RSS, RSS growth and CPU use.

Builds one long stereo 16 kHz FLAC (therapist left, patient right) by concatenating
the demo sessions of ``sample_audio/`` in a loop, in a temporary folder deleted
afterwards, and replays it with ``session-monitor replay --speed max`` in a child
process, full pipeline and prosody only (``--no-asr``). While the child runs, its
RSS and CPU time are read from /proc every ``--interval`` seconds.

- real-time factor: audio seconds / pipeline wall seconds (the pipeline's own
  figure from session.json, startup excluded) and audio / process wall (startup
  included);
- peak RSS: the kernel's high-water mark of the child (``ru_maxrss`` from wait4);
- RSS growth: median RSS over the last 10 % of the run against the median around
  10 % of it (8-12 %); the run starts when events.jsonl first has data, so model
  loading is not counted as growth;
- CPU: the child's user+system seconds per wall second (cores used), and audio
  seconds per CPU second (start-up included; less sensitive to other load);
- load: how much CPU other processes used meanwhile (this machine is shared).

The baseline, measured in the same run: the same command on ``demo_session.flac``
(2.9 minutes). The ratio long / demo shows whether the pipeline slows down or grows
as a session gets longer.

Usage::

    python benchmarks/long_session.py [--quick] [--minutes M] [--modes full,prosody]

``--quick`` builds a 10-minute session instead of 60.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _bench as b
import numpy as np

TARGET_FULL_RTF = 15.0
TARGET_PROSODY_RTF = 300.0
TARGET_RSS_MB = 500.0
TARGET_GROWTH_PCT = 5.0


def build_session(path: Path, minutes: float) -> float:
    """Write ``minutes`` of the demo sessions back to back into ``path``; returns its length in s."""
    import soundfile as sf

    total = int(minutes * 60 * 16000)
    done = 0
    with sf.SoundFile(path, "w", samplerate=16000, channels=2, subtype="PCM_16", format="FLAC") as out:
        while done < total:
            for name in b.DEMO_SESSIONS:
                data, rate = sf.read(b.SAMPLE_AUDIO / f"{name}.flac", dtype="int16", always_2d=True)
                assert rate == 16000 and data.shape[1] == 2, f"{name}: expected 16 kHz stereo"
                take = data[: total - done]
                out.write(np.ascontiguousarray(take))
                done += len(take)
                if done >= total:
                    break
    return done / 16000


def replay(path: Path, *, asr: bool, interval_s: float, timeout_s: float) -> dict:
    """One ``session-monitor replay --speed max`` in a child process, sampled from /proc."""
    with tempfile.TemporaryDirectory(prefix="sm-bench-") as tmp:
        folder = Path(tmp) / "session"
        cmd = [*b.cli(), "replay", str(path), "--speed", "max", "--session-dir", str(folder), "--no-view",
               "--no-report"] + ([] if asr else ["--no-asr"])
        load = b.MachineLoad().start()
        t0 = time.monotonic()
        log = open(Path(tmp) / "stderr.txt", "w+")  # noqa: SIM115  (a file, not a pipe: a full pipe stalls the child)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log, text=True)
        sampler = b.ProcSampler(proc.pid, interval_s=interval_s, watch=folder / "events.jsonl")
        timed_out = False
        while True:  # wait4 gives the child's own peak RSS and CPU time
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() - t0 > timeout_s:
                timed_out = True
                proc.send_signal(signal.SIGKILL)
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        wall = time.monotonic() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        sampler.stop()
        cpu_s = usage.ru_utime + usage.ru_stime
        load.stop(cpu_s)
        log.seek(0)
        stderr = log.read()
        log.close()
        if proc.returncode != 0 and not timed_out:
            raise SystemExit(f"replay failed ({proc.returncode}): {stderr.strip()[-500:]}")
        meta = {}
        if (folder / "session.json").is_file():
            meta = json.loads((folder / "session.json").read_text())
    started = [s for s in sampler.samples if s[3] > 0]
    growth = _growth(started)
    audio_s = float(meta.get("audio_s") or float("nan"))
    return {
        "timed_out": timed_out, "wall_s": wall, "audio_s": audio_s, "rtf": float(meta.get("rtf") or float("nan")),
        "rtf_e2e": audio_s / wall, "peak_mb": usage.ru_maxrss / 1024, "cpu_cores": cpu_s / wall,
        "audio_per_cpu": audio_s / cpu_s,
        "load": load, **growth,
    }


def _growth(samples: list[tuple[float, float, float, int]]) -> dict:
    if len(samples) < 10:
        return {"rss10_mb": float("nan"), "rss_end_mb": float("nan"), "growth_pct": float("nan"),
                "n_samples": len(samples), "tenths_mb": []}
    t0, t1 = samples[0][0], samples[-1][0]
    frac = [(s[0] - t0) / max(1e-9, t1 - t0) for s in samples]
    early = [s[1] for s, f in zip(samples, frac) if 0.08 <= f <= 0.12] or [samples[len(samples) // 10][1]]
    late = [s[1] for s, f in zip(samples, frac) if f >= 0.9]
    base, end = statistics.median(early), statistics.median(late)
    tenths = [statistics.median([s[1] for s, f in zip(samples, frac) if k / 10 <= f <= (k + 1) / 10] or [math.nan])
              for k in range(10)]
    return {"rss10_mb": base, "rss_end_mb": end, "growth_pct": 100 * (end / base - 1), "n_samples": len(samples),
            "tenths_mb": tenths}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10 minutes instead of 60")
    ap.add_argument("--minutes", type=float, help="length of the long session (default 60, --quick 10)")
    ap.add_argument("--modes", default="full,prosody", help="full, prosody or both (default both)")
    ap.add_argument("--interval", type=float, default=0.25, help="seconds between /proc samples (default 0.25)")
    ap.add_argument("--timeout", type=float, help="seconds per replay before it is killed "
                    "(default: the session length / 2, i.e. slower than 2x real time is a failure)")
    args = ap.parse_args(argv)
    minutes = args.minutes or (10.0 if args.quick else 60.0)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if not set(modes) <= {"full", "prosody"}:
        ap.error("--modes: use full and/or prosody")
    print(b.machine_line())
    demo = b.SAMPLE_AUDIO / "demo_session.flac"
    rows, results = [], {}
    with tempfile.TemporaryDirectory(prefix="sm-long-") as tmp:
        long_path = Path(tmp) / f"long_{minutes:g}min.flac"
        t = time.monotonic()
        length_s = build_session(long_path, minutes)
        print(f"built {long_path.name}: {length_s / 60:.1f} min, {long_path.stat().st_size / 2**20:.0f} MB "
              f"in {time.monotonic() - t:.1f} s (deleted afterwards)")
        for mode in modes:
            asr = mode == "full"
            for label, path, length in (("demo (baseline)", demo, 171.2), (f"{minutes:g} min", long_path, length_s)):
                timeout = args.timeout or max(120.0, length / 2)
                print(f"  replaying {label}, {mode} ... ", end="", flush=True)
                r = replay(path, asr=asr, interval_s=args.interval, timeout_s=timeout)
                print(f"{r['wall_s']:.0f} s{' (TIMED OUT)' if r['timed_out'] else ''}; {r['load'].describe()}")
                results[(mode, label)] = r
                rows.append([mode, label, round(r["audio_s"] / 60, 1), r["wall_s"], r["rtf"], r["rtf_e2e"],
                             r["audio_per_cpu"],
                             r["peak_mb"], r["rss10_mb"], r["rss_end_mb"], r["growth_pct"], r["cpu_cores"],
                             r["load"].others_cores])
    print()
    print(b.table(["mode", "session", "audio min", "wall s", "x RT pipeline", "x RT e2e", "audio s/CPU s",
                   "peak RSS MB",
                   "RSS@10% MB", "RSS last10% MB", "growth %", "CPU cores", "others' cores"], rows))
    print("\nmedian RSS (MB) in each tenth of the run, so growth can be told from a plateau:")
    for (mode, label), r in results.items():
        print(f"  {mode:8s} {label:16s} " + " ".join(f"{v:5.0f}" for v in r["tenths_mb"]))
    print()
    summary = []
    for mode in modes:
        base, long = results[(mode, "demo (baseline)")], results[(mode, f"{minutes:g} min")]
        target = TARGET_FULL_RTF if mode == "full" else TARGET_PROSODY_RTF
        summary.append([f"{mode}: x real time, {minutes:g} min", long["rtf"], base["rtf"], long["rtf"] / base["rtf"],
                        f">= {target:g}", b.verdict(long["rtf"], target, at_most=False)])
        summary.append([f"{mode}: peak RSS MB, {minutes:g} min", long["peak_mb"], base["peak_mb"],
                        long["peak_mb"] / base["peak_mb"], f"<= {TARGET_RSS_MB:g}",
                        b.verdict(long["peak_mb"], TARGET_RSS_MB, at_most=True)])
        summary.append([f"{mode}: RSS growth %, {minutes:g} min", long["growth_pct"], base["growth_pct"], "",
                        f"< {TARGET_GROWTH_PCT:g}", b.verdict(long["growth_pct"], TARGET_GROWTH_PCT, at_most=True)])
        summary.append([f"{mode}: CPU cores used", long["cpu_cores"], base["cpu_cores"],
                        long["cpu_cores"] / base["cpu_cores"], "", ""])
    print(b.table(["figure", "long", "demo baseline", "long / demo", "target", "verdict"], summary))
    loaded = [k for k, r in results.items() if r["load"].loaded]
    if loaded:
        print(f"\nmeasured under load (other processes > 0.3 cores): {', '.join(' '.join(k) for k in loaded)}")
    if any(r["timed_out"] for r in results.values()):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
