#!/usr/bin/env python3
"""Render AnnoMI transcripts to two-voice stereo audio with espeak-ng, for end-to-end evaluation.

Each transcript becomes ``DIR/annomi_<id>.flac`` (16 kHz, stereo: therapist on the left
channel, client on the right, two different espeak-ng voices) and
``DIR/annomi_<id>.truth.json`` (every utterance's speaker, start/end in seconds, text and
expert labels, and the session's MI quality). Turns follow the transcript's order with a
fixed gap between them (the transcript's own timestamps are too coarse to time speech).

Rendered audio is derived from AnnoMI: keep it out of git (default folder
``/tmp/annomi_renders``)::

    python scripts/render_annomi.py [--csv PATH] [--out DIR] [--high N] [--transcripts 1,2,...]

By default all low-quality transcripts and the first ``--high`` (20) high-quality ones
are rendered (``--pick shortest``: the 20 with fewest utterances, to keep a replay short). Needs espeak-ng (``scripts/setup.sh`` installs it).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

sys.path.insert(0, str(Path(__file__).resolve().parent))

from annomi import DEFAULT_CSV, Utterance, load  # noqa: E402

SR = 16_000
VOICES = {"therapist": ("en-us+m3", 165), "client": ("en-gb+f3", 160)}
GAP_S = 0.45  # silence between turns: a normal exchange, not a troubled one
PEAK = 0.3


def speak(text: str, voice: str, rate: int, tmp: Path) -> np.ndarray:
    wav = tmp / "u.wav"
    # text on stdin: an utterance may begin with "-", which espeak-ng would read as an option
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-w", str(wav), "--stdin"], input=text.encode(),
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    y, sr = sf.read(wav, dtype="float32")
    if y.ndim > 1:
        y = y.mean(axis=1)
    y = soxr.resample(y, sr, SR).astype(np.float32)
    peak = float(np.max(np.abs(y))) if len(y) else 0.0
    if peak > 0:
        y *= PEAK / peak
    loud = np.flatnonzero(np.abs(y) > 0.003)
    return y[loud[0]:loud[-1] + 1] if len(loud) else y[:0]


def render(utts: list[Utterance], tmp: Path) -> tuple[np.ndarray, list[dict]]:
    """Stereo samples (n, 2) and the truth rows of one transcript."""
    pieces: list[tuple[int, int, np.ndarray]] = []
    truth: list[dict] = []
    pos = int(0.5 * SR)
    for u in utts:
        if not u.text.strip():
            continue
        voice, rate = VOICES[u.speaker]
        y = speak(u.text, voice, rate, tmp)
        if not len(y):
            continue
        ch = 0 if u.speaker == "therapist" else 1
        pieces.append((pos, ch, y))
        truth.append({"utterance": u.index, "speaker": "therapist" if ch == 0 else "patient",
                      "start": round(pos / SR, 3), "end": round((pos + len(y)) / SR, 3), "text": u.text,
                      "labels": {k: v for k, v in u.labels.items() if v}})
        pos += len(y) + int(GAP_S * SR)
    out = np.zeros((pos + SR, 2), dtype=np.float32)
    rng = np.random.default_rng(0)
    out += (10 ** (-65 / 20) * rng.standard_normal(out.shape)).astype(np.float32)  # a quiet room
    for start, ch, y in pieces:
        out[start:start + len(y), ch] += y
    return out, truth


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    ap.add_argument("--out", type=Path, default=Path("/tmp/annomi_renders"))
    ap.add_argument("--high", type=int, default=20, help="high-quality transcripts to render")
    ap.add_argument("--pick", choices=("first", "shortest"), default="first",
                    help="which high-quality ones: the first N by id, or the N with fewest utterances")
    ap.add_argument("--transcripts", default="", help="comma-separated ids instead of the default set")
    args = ap.parse_args(argv)
    if shutil.which("espeak-ng") is None:
        print("error: espeak-ng is not installed; run scripts/setup.sh", file=sys.stderr)
        return 2
    try:
        utts = load(args.csv)
    except Exception as exc:  # InputError: one line
        print(f"error: {exc}", file=sys.stderr)
        return 2
    by_t: dict[int, list[Utterance]] = {}
    for u in utts:
        by_t.setdefault(u.transcript, []).append(u)
    if args.transcripts:
        chosen = [int(x) for x in args.transcripts.split(",")]
    else:
        low = [t for t, us in sorted(by_t.items()) if us[0].quality == "low"]
        high = [t for t, us in sorted(by_t.items()) if us[0].quality == "high"]
        if args.pick == "shortest":
            high = sorted(high, key=lambda t: (len(by_t[t]), t))
        high = sorted(high[:args.high])
        chosen = low + high
    args.out.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.TemporaryDirectory() as tmp:
        for t in chosen:
            audio, truth = render(by_t[t], Path(tmp))
            flac = args.out / f"annomi_{t}.flac"
            sf.write(flac, audio, SR, subtype="PCM_16")
            meta = {"transcript": t, "mi_quality": by_t[t][0].quality, "topic": by_t[t][0].topic,
                    "channels": ["therapist", "patient"], "utterances": truth}
            (args.out / f"annomi_{t}.truth.json").write_text(json.dumps(meta, indent=1) + "\n")
            print(f"{flac}: {len(audio) / SR:.0f} s, {len(truth)} utterances, {meta['mi_quality']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
