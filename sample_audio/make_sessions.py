#!/usr/bin/env python3
"""Render the scripted demo therapy sessions in sample_audio/.

Each session is a TOML script in ``sample_audio/scripts/NAME.toml`` (a list of
turns plus the annotated rupture / repair / reflective-silence episodes).  This
script synthesizes every turn with espeak-ng, lays the turns out on a 16 kHz
stereo timeline (LEFT = therapist, RIGHT = patient), adds a quiet seeded noise
floor and writes

    NAME.flac        16 kHz, 2 channels, 16-bit FLAC
    NAME.truth.json  the ground truth: transcript, ruptures, repairs, ...

The output is deterministic: running it twice gives byte-identical files (with
the same espeak-ng, numpy and soundfile/libsndfile versions).

Usage:
    python sample_audio/make_sessions.py [--out DIR] [NAME ...]   (default: all)

Only the standard library, numpy and soundfile are used; espeak-ng is called as
a subprocess.  Exit status: 0 on success, 2 on bad input or missing espeak-ng.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

HERE = Path(__file__).resolve().parent
SCRIPTS_DIR = HERE / "scripts"

SAMPLE_RATE = 16000
CHANNELS = ("therapist", "patient")  # LEFT, RIGHT
BASE_PEAK_DBFS = -12.0  # every utterance is normalized to this peak, then gain_db
NOISE_DBFS = -65.0  # RMS of the white noise floor added to both channels
# The noise is drawn on a grid of NOISE_STEP LSBs (a 12-bit noise floor): still
# white and at NOISE_DBFS RMS, but FLAC stores the speech-free stretches with 4
# "wasted bits" fewer per sample, which keeps the files about half the size.
NOISE_STEP = 16
TRIM_THRESHOLD = 1e-3  # |x| relative to the utterance peak; below it is "silence"
FLAC_COMPRESSION_LEVEL = 1.0  # soundfile's 0..1 scale (libFLAC level 8)
ESPEAK_VERSION = "1.51"  # version the committed recordings were rendered with

# Per-speaker voice and baseline prosody; a script may override them in
# [speakers.therapist] / [speakers.patient].
DEFAULT_SPEAKERS = {
    "therapist": {"voice": "en-gb+f2", "rate_wpm": 160, "pitch": 50},
    "patient": {"voice": "en-us+m3", "rate_wpm": 165, "pitch": 40},
}

RUPTURE_MARKERS = {
    "withdrawal": (
        "denial",
        "minimal_response",
        "abstract_communication",
        "avoidant_storytelling",
        "deferential_appeasing",
        "content_affect_split",
        "self_criticism_hopelessness",
    ),
    "confrontation": (
        "complaint_about_therapist",
        "rejecting_intervention",
        "complaint_about_activities",
        "complaint_about_parameters",
        "complaint_about_progress",
        "defending_self",
        "controlling_pressuring",
    ),
}
REPAIR_MARKERS = (
    "clarifying",
    "changing_task",
    "giving_rationale",
    "meta_communication",
    "acknowledging_own_part",
    "validating",
)

TOP_KEYS = {"heldout", "seed", "tail_s", "speakers", "turns", "ruptures", "repairs",
            "reflective_silences"}
TURN_KEYS = {"id", "speaker", "text", "gap_before_s", "rate_wpm", "pitch", "gain_db"}
SPEAKER_KEYS = {"voice", "rate_wpm", "pitch"}
RUPTURE_KEYS = {"kind", "marker", "start", "end", "note"}
REPAIR_KEYS = {"marker", "start", "end", "note"}
SILENCE_KEYS = {"start", "end", "note"}
ANCHORS = ("gap", "start", "end")


class ScriptError(Exception):
    """A problem with a session script or the environment (exit status 2)."""


@dataclass
class Turn:
    id: str | None
    speaker: str
    text: str
    gap_before_s: float
    voice: str
    rate_wpm: int
    pitch: int
    gain_db: float
    start: int = 0  # samples
    end: int = 0  # samples (exclusive)
    gap_start: int | None = None  # previous turn's end, when gap_before_s >= 0


# --------------------------------------------------------------------------- #
# Synthesis
# --------------------------------------------------------------------------- #


def espeak(text: str, voice: str, rate_wpm: int, pitch: int, tmpdir: Path) -> tuple[np.ndarray, int]:
    """Synthesize ``text`` with espeak-ng; float64 mono samples and their rate."""
    wav = tmpdir / "utt.wav"
    cmd = ["espeak-ng", "-v", voice, "-s", str(rate_wpm), "-p", str(pitch), "-z",
           "-w", str(wav), "--stdin"]
    proc = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True, check=False)
    if proc.returncode != 0 or not wav.exists():
        msg = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ScriptError(f"espeak-ng failed on {text!r}: {msg[-1] if msg else proc.returncode}")
    data, sr = sf.read(str(wav), dtype="int16", always_2d=False)
    wav.unlink()
    if data.ndim != 1:
        data = data[:, 0]
    return data.astype(np.float64) / 32768.0, sr


def trim(x: np.ndarray, rel_threshold: float = TRIM_THRESHOLD) -> np.ndarray:
    """Cut leading/trailing samples with |x| <= rel_threshold * peak."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak <= 0.0:
        return x[:0]
    idx = np.flatnonzero(np.abs(x) > rel_threshold * peak)
    return x[idx[0] : idx[-1] + 1]


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited FFT resampling (exact rational ratio, zero-padded, tapered)."""
    if sr_in == sr_out:
        return x.copy()
    g = math.gcd(sr_in, sr_out)
    up, down = sr_out // g, sr_in // g
    pad = 4096
    n = x.size + 2 * pad
    n = -(-n // down) * down  # a multiple of `down`, so the output length is exact
    xp = np.zeros(n)
    xp[pad : pad + x.size] = x
    m = n // down * up
    spec = np.fft.rfft(xp)
    nyq_out = min(sr_in, sr_out) / 2.0
    freqs = np.fft.rfftfreq(n, 1.0 / sr_in)
    # raised-cosine taper over the top 12.5 % of the output band (less ringing)
    f0 = 0.875 * nyq_out
    taper = np.ones_like(freqs)
    band = (freqs > f0) & (freqs < nyq_out)
    taper[band] = 0.5 * (1.0 + np.cos(np.pi * (freqs[band] - f0) / (nyq_out - f0)))
    taper[freqs >= nyq_out] = 0.0
    spec *= taper
    out_spec = np.zeros(m // 2 + 1, dtype=complex)
    k = min(spec.size, out_spec.size)
    out_spec[:k] = spec[:k]
    y = np.fft.irfft(out_spec, m) * (m / n)
    start = pad * up // down
    return y[start : start + x.size * up // down + 1]


def render_turn(turn: Turn, tmpdir: Path, cache: dict) -> np.ndarray:
    key = (turn.text, turn.voice, turn.rate_wpm, turn.pitch)
    if key not in cache:
        raw, sr = espeak(turn.text, turn.voice, turn.rate_wpm, turn.pitch, tmpdir)
        x = resample(trim(raw), sr, SAMPLE_RATE)
        x = trim(x)
        if x.size == 0:
            raise ScriptError(f"espeak-ng produced no audio for {turn.text!r}")
        cache[key] = x / np.max(np.abs(x))
    return cache[key] * 10.0 ** ((BASE_PEAK_DBFS + turn.gain_db) / 20.0)


# --------------------------------------------------------------------------- #
# Script loading
# --------------------------------------------------------------------------- #


def _check_keys(where: str, table: dict, allowed: set, required: set) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ScriptError(f"{where}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(allowed))})")
    missing = sorted(required - set(table))
    if missing:
        raise ScriptError(f"{where}: missing key(s) {', '.join(missing)}")


def _num(where: str, value, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise ScriptError(f"{where}: must be a number in [{lo}, {hi}], got {value!r}")
    return float(value)


def load_script(path: Path) -> dict:
    name = path.stem
    try:
        with path.open("rb") as fh:
            doc = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ScriptError(f"{path}: {exc}") from None
    _check_keys(str(path), doc, TOP_KEYS, {"turns"})

    speakers = {s: dict(v) for s, v in DEFAULT_SPEAKERS.items()}
    for spk, over in doc.get("speakers", {}).items():
        if spk not in speakers:
            raise ScriptError(f"{path}: speakers.{spk}: speaker must be one of {', '.join(CHANNELS)}")
        _check_keys(f"{path}: speakers.{spk}", over, SPEAKER_KEYS, set())
        speakers[spk].update(over)

    turns: list[Turn] = []
    ids: dict[str, int] = {}
    for i, t in enumerate(doc["turns"]):
        where = f"{path}: turns[{i}]"
        _check_keys(where, t, TURN_KEYS, {"speaker", "text", "gap_before_s"})
        spk = t["speaker"]
        if spk not in speakers:
            raise ScriptError(f"{where}.speaker: must be one of {', '.join(CHANNELS)}, got {spk!r}")
        text = t["text"]
        if not isinstance(text, str) or not text.strip():
            raise ScriptError(f"{where}.text: must be a non-empty string")
        prof = speakers[spk]
        turn = Turn(
            id=t.get("id"),
            speaker=spk,
            text=" ".join(text.split()),
            gap_before_s=_num(f"{where}.gap_before_s", t["gap_before_s"], -5.0, 30.0),
            voice=prof["voice"],
            rate_wpm=int(_num(f"{where}.rate_wpm", t.get("rate_wpm", prof["rate_wpm"]), 80, 450)),
            pitch=int(_num(f"{where}.pitch", t.get("pitch", prof["pitch"]), 0, 99)),
            gain_db=_num(f"{where}.gain_db", t.get("gain_db", 0.0), -30.0, 12.0),
        )
        if i == 0 and turn.gap_before_s < 0:
            raise ScriptError(f"{where}.gap_before_s: the first turn cannot overlap")
        if turn.id is not None:
            if turn.id in ids:
                raise ScriptError(f"{where}.id: duplicate id {turn.id!r}")
            ids[turn.id] = i
        turns.append(turn)
    if not turns:
        raise ScriptError(f"{path}: no turns")

    heldout = doc.get("heldout", False)
    if not isinstance(heldout, bool):
        raise ScriptError(f"{path}: heldout must be true or false")
    return {
        "name": name,
        "path": path,
        "heldout": heldout,
        "seed": int(_num(f"{path}: seed", doc.get("seed", 0), 0, 2**32 - 1)),
        "tail_s": _num(f"{path}: tail_s", doc.get("tail_s", 1.5), 0.0, 10.0),
        "turns": turns,
        "ids": ids,
        "ruptures": doc.get("ruptures", []),
        "repairs": doc.get("repairs", []),
        "reflective_silences": doc.get("reflective_silences", []),
    }


def resolve_anchor(script: dict, where: str, ref) -> int:
    """'ID.gap' | 'ID.start' | 'ID.end' -> sample index."""
    if not isinstance(ref, str) or ref.count(".") != 1:
        raise ScriptError(f"{where}: anchor must look like 'TURN_ID.gap|start|end', got {ref!r}")
    tid, anchor = ref.split(".")
    if tid not in script["ids"] or anchor not in ANCHORS:
        raise ScriptError(f"{where}: unknown turn id or anchor in {ref!r}")
    turn = script["turns"][script["ids"][tid]]
    if anchor == "gap":
        if turn.gap_start is None:
            raise ScriptError(f"{where}: {ref!r}: turn {tid} overlaps its predecessor, it has no gap")
        return turn.gap_start
    return turn.start if anchor == "start" else turn.end


def annotations(script: dict, key: str, keys: set, required: set) -> list[dict]:
    out = []
    for i, ann in enumerate(script[key]):
        where = f"{script['path']}: {key}[{i}]"
        _check_keys(where, ann, keys, required)
        start = resolve_anchor(script, f"{where}.start", ann["start"])
        end = resolve_anchor(script, f"{where}.end", ann["end"])
        if end <= start:
            raise ScriptError(f"{where}: end {ann['end']} is not after start {ann['start']}")
        item: dict = {"start": start / SAMPLE_RATE, "end": end / SAMPLE_RATE}
        if key == "ruptures":
            kind = ann["kind"]
            if kind not in RUPTURE_MARKERS:
                raise ScriptError(f"{where}.kind: must be one of {', '.join(RUPTURE_MARKERS)}, got {kind!r}")
            if ann["marker"] not in RUPTURE_MARKERS[kind]:
                raise ScriptError(f"{where}.marker: must be one of {', '.join(RUPTURE_MARKERS[kind])}, got {ann['marker']!r}")
            item["kind"] = kind
        if key == "repairs" and ann["marker"] not in REPAIR_MARKERS:
            raise ScriptError(f"{where}.marker: must be one of {', '.join(REPAIR_MARKERS)}, got {ann['marker']!r}")
        if "marker" in ann:
            item["marker"] = ann["marker"]
        item["note"] = str(ann.get("note", ""))
        out.append(item)
    return out


# --------------------------------------------------------------------------- #
# Rendering
# --------------------------------------------------------------------------- #


def render(script: dict, tmpdir: Path, cache: dict) -> tuple[np.ndarray, dict]:
    turns: list[Turn] = script["turns"]
    audio = []
    prev_end = 0
    for i, turn in enumerate(turns):
        x = render_turn(turn, tmpdir, cache)
        turn.start = prev_end + round(turn.gap_before_s * SAMPLE_RATE)
        turn.end = turn.start + x.size
        turn.gap_start = prev_end if turn.gap_before_s >= 0 else None
        if turn.start < 0:
            raise ScriptError(f"{script['path']}: turns[{i}] starts before the session")
        for j in range(i):  # one speaker never overlaps itself
            other = turns[j]
            if other.speaker == turn.speaker and other.end > turn.start:
                raise ScriptError(f"{script['path']}: turns[{i}] overlaps the same speaker's turns[{j}]")
        audio.append(x)
        prev_end = turn.end

    n = max(t.end for t in turns) + round(script["tail_s"] * SAMPLE_RATE)
    speech = np.zeros((n, 2))
    for turn, x in zip(turns, audio):
        speech[turn.start : turn.end, CHANNELS.index(turn.speaker)] += x
    # white noise in LSBs, on a NOISE_STEP grid; its RMS (incl. the grid's
    # rounding, NOISE_STEP**2 / 12) is NOISE_DBFS
    rms = 10.0 ** (NOISE_DBFS / 20.0) * 32768.0
    sigma = math.sqrt(rms**2 - NOISE_STEP**2 / 12.0)
    rng = np.random.default_rng(script["seed"])
    noise = np.round(rng.standard_normal((n, 2)) * (sigma / NOISE_STEP)) * NOISE_STEP
    pcm = np.clip(np.round(speech * 32768.0) + noise, -32768, 32767).astype(np.int16)

    truth = {
        "session": script["name"],
        "heldout": script["heldout"],
        "duration_s": n / SAMPLE_RATE,
        "sample_rate": SAMPLE_RATE,
        "channels": list(CHANNELS),
        "ruptures": annotations(script, "ruptures", RUPTURE_KEYS, {"kind", "marker", "start", "end"}),
        "repairs": annotations(script, "repairs", REPAIR_KEYS, {"marker", "start", "end"}),
        "reflective_silences": annotations(script, "reflective_silences", SILENCE_KEYS, {"start", "end"}),
        "transcript": [
            {"speaker": t.speaker, "start": t.start / SAMPLE_RATE, "end": t.end / SAMPLE_RATE, "text": t.text}
            for t in sorted(turns, key=lambda t: (t.start, CHANNELS.index(t.speaker)))
        ],
    }
    return pcm, truth


def write_session(script: dict, out_dir: Path, tmpdir: Path, cache: dict) -> dict:
    pcm, truth = render(script, tmpdir, cache)
    name = script["name"]
    flac = out_dir / f"{name}.flac"
    tmp_flac = out_dir / f".{name}.flac.tmp"
    sf.write(str(tmp_flac), pcm, SAMPLE_RATE, format="FLAC", subtype="PCM_16",
             compression_level=FLAC_COMPRESSION_LEVEL)
    os.replace(tmp_flac, flac)
    (out_dir / f"{name}.truth.json").write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    return truth


def espeak_version() -> str:
    out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=False).stdout
    parts = out.split()
    return parts[parts.index("text-to-speech:") + 1] if "text-to-speech:" in parts else out.strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Render the scripted sessions in sample_audio/scripts/ "
                                             "to NAME.flac + NAME.truth.json.")
    ap.add_argument("names", nargs="*", metavar="NAME", help="sessions to render (default: all)")
    ap.add_argument("--out", type=Path, default=HERE, metavar="DIR",
                    help="output folder (default: sample_audio/)")
    args = ap.parse_args(argv)
    prog = "make_sessions.py"
    try:
        if shutil.which("espeak-ng") is None:
            raise ScriptError("espeak-ng not found on PATH (install it, e.g. apt-get install espeak-ng)")
        available = sorted(p.stem for p in SCRIPTS_DIR.glob("*.toml"))
        names = args.names or available
        unknown = [n for n in names if n not in available]
        if unknown:
            raise ScriptError(f"no script for {', '.join(unknown)} in {SCRIPTS_DIR} "
                              f"(available: {', '.join(available)})")
        if args.out.exists() and not args.out.is_dir():
            raise ScriptError(f"--out {args.out}: not a folder")
        args.out.mkdir(parents=True, exist_ok=True)
        version = espeak_version()
        if version != ESPEAK_VERSION:
            print(f"{prog}: warning: espeak-ng {version}, the committed files used {ESPEAK_VERSION}; "
                  "audio will differ", file=sys.stderr)
        scripts = [load_script(SCRIPTS_DIR / f"{n}.toml") for n in names]
        cache: dict = {}
        with tempfile.TemporaryDirectory(prefix="make_sessions.") as tmp:
            for script in scripts:
                truth = write_session(script, args.out, Path(tmp), cache)
                kinds = ", ".join(f"{r['kind']} {r['start']:.1f}-{r['end']:.1f}s" for r in truth["ruptures"])
                print(f"{script['name']}: {truth['duration_s']:.1f} s, {len(truth['transcript'])} turns, "
                      f"ruptures: {kinds or 'none'}")
    except ScriptError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
