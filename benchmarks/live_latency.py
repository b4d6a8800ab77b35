"""Live latency through a real capture device: signal behind the audio, transcripts after utterances.

Starts a private PulseAudio server with a null sink (as ``tests/conftest.py``), runs

    session-monitor live --device pulse --roles therapist,patient --consent ... --session-dir DIR

with ``PULSE_SERVER``/``PULSE_SOURCE`` pointing at the sink's monitor, and plays a demo
session into the sink with ``paplay``. ``events.jsonl`` is read while it grows, each
new line stamped with ``time.monotonic()`` on arrival.

Clocks. Session time ``t`` counts captured samples. The offset between session time
and the played file's time is calibrated from speech onsets: the median of
``speech.start - truth turn start`` over the turns whose first speech segment starts
within 0.3 s of the truth (``sample_audio/NAME.truth.json`` is exact to the sample).
The audio at session time ``t`` was played at ``play_start + (t - offset)``, where
``play_start`` is taken just before ``paplay`` is launched; so every latency below
includes paplay's own start-up and PulseAudio's buffering (a small overestimate).

Figures (p50 / p95 / max):

- signal behind audio: ``signal`` events, arrival minus the wall time at which the
  audio at their ``t`` was played;
- transcript after utterance end: final ``transcript`` events, arrival minus the
  wall time at which the utterance ended (truth end of the last overlapping turn of
  that speaker); lexical markers (``cue == "lexical"``) from the end of the turn
  their sentence is in;
- CPU of the live process during playback (cores), and the machine's other load
  (other than the live process, this harness, pulseaudio and paplay).

Baselines measured in the same run: a bare PortAudio capture (sounddevice, same
device, same 32 ms callback blocks) reading the monitor alongside, timed the same way
(its block ends against the same playback, its offset calibrated from the first
onset): the device's own latency, which no pipeline can beat; and Whisper's compute
time per utterance (``asr_compute_s`` of each transcript).

Two devices (a telehealth session: the therapist's microphone and the call audio). The
same playback, its left channel into one null sink and its right into another at the
same moment (a combine sink), with ``live --device pulse:sm_mic.monitor --device
pulse:sm_call.monitor``: two streams put on one clock (audio/stream_clock.py). Its
figures are printed beside the one-device ones; its bare-capture baseline reads the
microphone's monitor.

Usage::

    python benchmarks/live_latency.py [--quick] [--devices one|two|both] [--session NAME] [--start S]
                                      [--set SECTION.KEY=VALUE ...]

``--quick`` plays a 60 s excerpt (from ``--start``, default 35 s) instead of the whole
session (demo_session: 171 s).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import _bench as b
import numpy as np

TARGET_SIGNAL_P95_S = 0.25
TARGET_TRANSCRIPT_P95_S = 1.5


class BareCapture:
    """A plain sounddevice stream on the same device: block arrival times and the first onset."""

    def __init__(self, device: str, *, channels: int = 2, block_ms: int = 32) -> None:
        import sounddevice as sd

        info = sd.query_devices(device, kind="input")
        self.rate = int(info["default_samplerate"])
        self.blocks: list[tuple[float, int]] = []  # (arrival monotonic, samples captured through this block)
        self.samples = 0
        self.head: list[np.ndarray] = []  # channel 0, kept for the first 120 s (onset calibration)
        self._keep = 120 * self.rate
        self.stream = sd.InputStream(device=device, channels=channels, samplerate=self.rate, dtype="float32",
                                     blocksize=round(block_ms * self.rate / 1000), callback=self._callback)
        self.stream.start()

    def _callback(self, indata, frames, time_info, status) -> None:  # type: ignore[no-untyped-def]
        now = time.monotonic()
        self.samples += frames
        self.blocks.append((now, self.samples))
        if self.samples <= self._keep:
            self.head.append(indata[:, 0].copy())

    def close(self) -> None:
        self.stream.stop()
        self.stream.close()

    def onset_s(self, *, after_s: float, threshold: float = 0.02) -> float | None:
        """Capture time (s) of the first sample after ``after_s`` whose 1 ms peak exceeds ``threshold``."""
        if not self.head:
            return None
        y = np.abs(np.concatenate(self.head))
        start = int(after_s * self.rate)
        hits = np.flatnonzero(y[start:] > threshold)
        return None if len(hits) == 0 else (start + hits[0]) / self.rate


def load_truth(name: str, start_s: float, length_s: float | None) -> tuple[list[dict], float]:
    """Turns fully inside the played stretch, in played-file time, and the stretch length."""
    truth = json.loads((b.SAMPLE_AUDIO / f"{name}.truth.json").read_text())
    end_s = truth["duration_s"] if length_s is None else min(truth["duration_s"], start_s + length_s)
    turns = [dict(t, start=t["start"] - start_s, end=t["end"] - start_s) for t in truth["transcript"]
             if t["start"] >= start_s and t["end"] <= end_s]
    return turns, end_s - start_s


def write_excerpt(name: str, start_s: float, length_s: float, out: Path) -> None:
    import soundfile as sf

    data, rate = sf.read(b.SAMPLE_AUDIO / f"{name}.flac", dtype="int16", always_2d=True)
    a = int(start_s * rate)
    sf.write(out, data[a : a + int(length_s * rate)], rate, subtype="PCM_16")


def calibrate(events: list[dict], turns: list[dict]) -> tuple[float, int]:
    """(session time - file time, number of onsets used), from speech starts vs truth turn starts."""
    speech = sorted((e for e in events if e["type"] == "speech"), key=lambda e: e["start"])
    if not speech or not turns:
        raise SystemExit("no speech events or no truth turns: nothing to calibrate the clocks with")
    first = min(turns, key=lambda t: t["start"])
    first_speech = next((e for e in speech if e["speaker"] == first["speaker"]), speech[0])
    guess = first_speech["start"] - first["start"]
    diffs = []
    for turn in turns:
        mine = [e["start"] - turn["start"] for e in speech if e["speaker"] == turn["speaker"]
                and abs(e["start"] - turn["start"] - guess) < 0.3]
        if mine:
            diffs.append(min(mine, key=lambda d: abs(d - guess)))
    if not diffs:
        return guess, 1
    return float(np.median(diffs)), len(diffs)


def utterance_end(turns: list[dict], speaker: str, start: float, end: float, *, cut: bool = True) -> float | None:
    """File time at which the utterance heard in [start, end] (file time) ended.

    The end of the last truth turn of ``speaker`` overlapping the span; with ``cut``, no
    later than ``end`` (a transcript of an utterance cut at ``max_utterance_s``). A
    lexical marker spans one sentence: its utterance ends with its turn (``cut=False``).
    """
    ends = [t["end"] for t in turns if t["speaker"] == speaker and t["start"] < end and t["end"] > start]
    if not ends:
        return None
    return min(max(ends), end) if cut else max(ends)


def settings_toml(assignments: list[str]) -> str:
    """``SECTION.KEY=VALUE`` lines as a TOML document (VALUE is TOML: 5, 0.2, true, "x")."""
    sections: dict[str, list[str]] = {}
    for item in assignments:
        name, _, value = item.partition("=")
        section, _, key = name.partition(".")
        if not (section and key and value):
            raise SystemExit(f"--set {item!r}: expected SECTION.KEY=VALUE")
        sections.setdefault(section, []).append(f"{key} = {value}")
    return "".join(f"[{sec}]\n" + "\n".join(lines) + "\n" for sec, lines in sections.items())


def stats(values: list[float]) -> list:
    return [len(values), b.percentile(values, 50), b.percentile(values, 95), max(values) if values else float("nan")]


def run_mode(mode: str, args: argparse.Namespace, tmp: Path, wav: Path, turns: list[dict],
             play_s: float) -> dict:
    """One live run (``mode`` one: ``--device pulse``; two: the microphone and the call sinks); its figures."""
    pulse_dir = tmp / f"pulse-{mode}"
    pulse_dir.mkdir()
    with b.PulseServer(pulse_dir) as pulse:
        if mode == "two":
            mic, call = pulse.add_call_pair()
            pulse.env["PULSE_SOURCE"] = mic  # the bare-capture baseline reads the microphone
            devices, sink = ["--device", f"pulse:{mic}", "--device", f"pulse:{call}"], "sm_pair"
        else:
            devices, sink = ["--device", "pulse"], pulse.sink
        os.environ.update({k: pulse.env[k] for k in ("PULSE_SERVER", "PULSE_SOURCE")})
        folder = tmp / f"session-{mode}"
        cmd = [*b.cli(), "live", *devices, "--roles", "therapist,patient", "--consent", b.CONSENT,
               "--session-dir", str(folder), "--duration", str(play_s + 120), "--no-view", "--no-report"]
        if args.set:
            config = tmp / "settings.toml"
            config.write_text(settings_toml(args.set))
            cmd += ["--config", str(config)]
            print("settings: " + ", ".join(args.set))
        launched = time.monotonic()
        proc = subprocess.Popen(cmd, env=pulse.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        ready = threading.Event()
        lines: list[str] = []

        def read_stderr() -> None:
            for line in proc.stderr:
                lines.append(line)
                if "ready: capturing" in line:
                    ready.set()

        threading.Thread(target=read_stderr, daemon=True).start()
        tail = b.EventTail(folder / "events.jsonl")
        sampler = b.ProcSampler(proc.pid, interval_s=0.5)
        try:
            if not ready.wait(180):
                raise SystemExit(f"live did not become ready: {''.join(lines)[-800:]}")
            print(f"launch to ready: {time.monotonic() - launched:.1f} s")
            bare = BareCapture("pulse")
            deadline = time.monotonic() + 30
            while not any(e["type"] == "signal" and e["t"] >= 1.0 for _, e in list(tail.events)):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit(f"no audio came through: {''.join(lines)[-800:]}")
                time.sleep(0.05)
            time.sleep(0.5)
            bare_before = bare.samples / bare.rate
            load = b.MachineLoad().start()
            sampler.sample()
            cpu0, t0 = sampler.last_cpu_s, time.monotonic()
            setup0 = b.own_cpu_s() + (b.proc_cpu_s(pulse.proc.pid) or 0.0)
            play_start = time.monotonic()
            subprocess.run(["paplay", f"--device={sink}", str(wav)], env=pulse.env, check=True,
                           timeout=play_s + 60)
            played = time.monotonic()
            sampler.sample()
            cpu1, t1 = sampler.last_cpu_s, time.monotonic()
            setup = b.own_cpu_s() + (b.proc_cpu_s(pulse.proc.pid) or 0.0) - setup0
            load.stop(cpu1 - cpu0 + setup)
            # let the last utterances reach the transcriber and come back (at most 20 s), then stop
            quiet_since = None
            while time.monotonic() - played < 20:
                health = [e for _, e in list(tail.events) if e["type"] == "health"]
                idle = health and health[-1]["t"] > 0 and health[-1]["asr_queue"] == 0
                quiet_since = (quiet_since or time.monotonic()) if idle else None
                if quiet_since and time.monotonic() - quiet_since > 1.5 and time.monotonic() - played > 2:
                    break
                time.sleep(0.1)
            bare.close()
            proc.send_signal(signal.SIGINT)
            proc.wait(120)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            sampler.stop()
            tail.stop()
        if proc.returncode != 0:
            raise SystemExit(f"live exited {proc.returncode}: {''.join(lines)[-800:]}")

    arrivals = tail.events
    events = [e for _, e in arrivals]
    offset, n_cal = calibrate(events, turns)
    # signal behind audio
    sig_lat = [a - (play_start + e["t"] - offset) for a, e in arrivals
               if e["type"] == "signal" and 0 <= e["t"] - offset <= play_s]
    # transcripts and lexical markers after utterance end
    tr_lat, compute, lex_lat, detail = [], [], [], []
    for a, e in arrivals:
        if e["type"] == "transcript" and e.get("final", True):
            end = utterance_end(turns, e["speaker"], e["start"] - offset, e["end"] - offset)
            if end is not None:
                tr_lat.append(a - (play_start + end))
                detail.append([e["speaker"], e["start"] - offset, e["end"] - offset, end, tr_lat[-1],
                               e.get("asr_compute_s"), e.get("asr_lag_s")])
                if e.get("asr_compute_s") is not None:
                    compute.append(e["asr_compute_s"])
        if e["type"] == "marker" and e.get("cue") == "lexical":
            end = utterance_end(turns, e["speaker"], e["start"] - offset, e["end"] - offset, cut=False)
            if end is not None:
                lex_lat.append(a - (play_start + end))
    # bare capture: the same clocks for plain 32 ms blocks
    bare_lat = []
    first_turn = min(turns, key=lambda t: t["start"])
    onset = bare.onset_s(after_s=bare_before)
    if onset is not None:
        b_offset = onset - first_turn["start"]
        bare_lat = [a - (play_start + n / bare.rate - b_offset) for a, n in bare.blocks
                    if 0 <= n / bare.rate - b_offset <= play_s]
    health = [e for e in events if e["type"] == "health"]
    last = health[-1] if health else {}
    cpu_play = (cpu1 - cpu0) / (t1 - t0)
    whole = sampler.samples
    cpu_all = (whole[-1][2] - whole[0][2]) / (whole[-1][0] - whole[0][0]) if len(whole) > 1 else float("nan")
    finals = sum(1 for e in events if e["type"] == "transcript" and e.get("final", True))

    print(f"clock offset (session - file time) {offset:.3f} s from {n_cal} speech onsets; "
          f"{finals} final transcripts ({len(tr_lat)} matched to truth turns), {len(sig_lat)} signals")
    print(f"playback: {load.describe()}; the harness, pulseaudio and paplay used {setup / (t1 - t0):.2f} cores")
    print(f"health at the end: overflows {last.get('overflows')}, asr skipped {last.get('asr_skipped')}, "
          f"asr errors {last.get('asr_errors')}; peak RSS of the live process {sampler.peak_mb:.0f} MB\n")
    rows = [
        ["signal behind audio", *stats(sig_lat)],
        ["  baseline: bare capture block behind audio", *stats(bare_lat)],
        ["transcript after utterance end", *stats(tr_lat)],
        ["  baseline: Whisper compute per utterance", *stats(compute)],
        ["lexical marker after utterance end", *stats(lex_lat)],
    ]
    print(b.table(["figure (seconds)", "n", "p50", "p95", "max"], rows))
    if args.detail:
        print("\nper final transcript (file time, s):")
        print(b.table(["speaker", "start", "end", "truth end", "after end", "Whisper s", "asr_lag_s"], detail))
    print()
    sig95, bare95, tr95, comp95 = (b.percentile(x, 95) for x in (sig_lat, bare_lat, tr_lat, compute))
    summary = [
        ["signal behind audio p95, s", sig95, bare95, sig95 / bare95 if bare_lat else float("nan"),
         f"<= {TARGET_SIGNAL_P95_S}", b.verdict(sig95, TARGET_SIGNAL_P95_S, at_most=True)],
        ["transcript after utterance end p95, s", tr95, comp95, tr95 / comp95 if compute else float("nan"),
         f"<= {TARGET_TRANSCRIPT_P95_S}", b.verdict(tr95, TARGET_TRANSCRIPT_P95_S, at_most=True)],
        ["CPU of the live process during playback, cores", cpu_play, "", "", "", ""],
        ["CPU of the live process, whole run, cores", cpu_all, "", "", "", ""],
    ]
    print(b.table(["figure", "measured", "baseline", "ratio", "target", "verdict"], summary))
    if load.loaded:
        print("\nmeasured UNDER LOAD: other processes used "
              f"{load.others_cores:.2f} of {os.cpu_count()} cores during playback")
    return {"sig95": sig95, "tr95": tr95, "bare95": bare95, "cpu_play": cpu_play}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a 60 s excerpt instead of the whole session")
    ap.add_argument("--session", default="demo_session", help="sample_audio session to play (default demo_session)")
    ap.add_argument("--start", type=float, help="excerpt start in s (default 0, --quick 35)")
    ap.add_argument("--length", type=float, help="excerpt length in s (default: to the end, --quick 60)")
    ap.add_argument("--detail", action="store_true", help="print every final transcript's latency")
    ap.add_argument("--devices", choices=("one", "two", "both"), default="both",
                    help="one capture device (stereo), two (microphone + call audio), or both runs (default)")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="a setting for the live process (TOML value, e.g. transcriber.beam_size=5); repeatable")
    args = ap.parse_args(argv)
    start_s = args.start if args.start is not None else (35.0 if args.quick else 0.0)
    length_s = args.length if args.length is not None else (60.0 if args.quick else None)
    turns, play_s = load_truth(args.session, start_s, length_s)
    print(b.machine_line())

    with tempfile.TemporaryDirectory(prefix="sm-live-") as tmp_name:
        tmp = Path(tmp_name)
        wav = tmp / "play.wav"
        write_excerpt(args.session, start_s, play_s, wav)
        print(f"playing {args.session} {start_s:.1f}-{start_s + play_s:.1f} s ({play_s:.0f} s, {len(turns)} turns)")
        modes = ["one", "two"] if args.devices == "both" else [args.devices]
        results = {}
        for mode in modes:
            print(f"\n== {'one capture device (stereo)' if mode == 'one' else 'two devices (microphone + call audio)'}")
            results[mode] = run_mode(mode, args, tmp, wav, turns, play_s)
    if len(results) == 2:
        print("\n== one device beside two devices")
        rows = [[name, results["one"][key], results["two"][key], target, b.verdict(results["two"][key], limit,
                                                                                 at_most=True)]
                for name, key, target, limit in (
                    ("signal behind audio p95, s", "sig95", f"<= {TARGET_SIGNAL_P95_S}", TARGET_SIGNAL_P95_S),
                    ("transcript after utterance end p95, s", "tr95", f"<= {TARGET_TRANSCRIPT_P95_S}",
                     TARGET_TRANSCRIPT_P95_S))]
        rows += [["bare capture block behind audio p95, s", results["one"]["bare95"], results["two"]["bare95"], "", ""],
                 ["CPU of the live process during playback, cores", results["one"]["cpu_play"],
                  results["two"]["cpu_play"], "", ""]]
        print(b.table(["figure", "one device", "two devices", "target", "verdict (two)"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
