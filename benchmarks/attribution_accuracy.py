"""Who-speaks accuracy of the mono attribution on real voices (the issue-16 targets), in one run.

- ``conversation_2speakers.wav`` (a real telephone call, RTTM truth) at chunk_s 0.9-1.2;
- the conversations built from ``../shared/data/voices`` (tests/support/voices.py): ten
  pairs, without an enrolment and with person A enrolled from held-out speech;
- ``stereo_diarization.wav``: its two channels (a real voice each) one after the other, mixed to
  mono, at chunk_s 0.9-1.2;
- ``jfk.flac``: one voice (share of its speech given to the second voice);
- the 60 readings of ``../shared/data/voices`` alone, each one person for 11-17 s: how many
  get a second voice, and the mean share of speech given to it (the one-voice target on
  more than one recording);
- the sample sessions (``sample_audio``, two espeak-ng voices) mixed to mono, without an
  enrolment and with the therapist enrolled from another session's therapist channel.

Accuracy: share of single-speaker 10 ms frames that the VAD passed whose speaker is right
(the better role assignment without an enrolment; A = therapist with one).

Usage: python benchmarks/attribution_accuracy.py [--embedding mfcc|ge2e] [--chunk-s S] [--set KEY=VALUE]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

#: Seconds of person A's reading held out of a built conversation for the enrolment.
HOLD_OUT_S = 6.0


def _rttm(path: Path) -> list[tuple[float, float, str]]:
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    return [(float(r[3]), float(r[3]) + float(r[4]), r[7]) for r in rows]


def call(overrides: dict) -> float:
    import soundfile as sf

    from session_monitor.settings.loader import load_settings
    from support.attribution import attribute, frame_accuracy
    from support.audio import SHARED_DATA

    wav = SHARED_DATA / "conversation_2speakers.wav"
    y, _ = sf.read(wav, dtype="float32")
    result = attribute(y, load_settings(overrides=overrides))
    return frame_accuracy(result.speech, _rttm(wav.with_suffix(".rttm")), len(y) / 16000)["accuracy_vad"]


def stereo_diarization(overrides: dict) -> float:
    """stereo_diarization.wav's channels one after the other (0.8 s apart), mixed to mono; truth from
    each channel's own VAD (as tests/speakers/test_attribution.py)."""
    import soundfile as sf

    from session_monitor.settings.loader import load_settings
    from support.attribution import attribute, frame_accuracy
    from support.audio import SHARED_DATA

    y, _ = sf.read(SHARED_DATA / "stereo_diarization.wav", dtype="float32")
    gap = np.zeros(int(0.8 * 16000), dtype=np.float32)
    turns = np.stack([np.concatenate([y[:, 0], gap, np.zeros_like(y[:, 1])]),
                      np.concatenate([np.zeros_like(y[:, 0]), gap, y[:, 1]])], axis=1)
    truth = [(seg.start, seg.end, name) for c, name in enumerate(("left", "right"))
             for seg in attribute(np.ascontiguousarray(turns[:, c]), load_settings()).speech]
    mono = turns.mean(axis=1)
    return frame_accuracy(attribute(mono, load_settings(overrides=overrides)).speech, truth,
                          len(mono) / 16000)["accuracy_vad"]


def jfk_second_voice_share(overrides: dict) -> float:
    import soundfile as sf
    import soxr

    from session_monitor.settings.loader import load_settings
    from support.attribution import attribute
    from support.audio import SHARED_DATA

    y, rate = sf.read(SHARED_DATA / "jfk.flac", dtype="float32")
    y = soxr.resample(y.mean(axis=1), rate, 16000).astype(np.float32)
    speech = attribute(y, load_settings(overrides=overrides)).speech
    total = sum(s.end - s.start for s in speech)
    first = speech[0].speaker if speech else None
    return sum(s.end - s.start for s in speech if s.speaker not in (first, "unknown")) / max(total, 1e-9)


def one_voice_readings(overrides: dict) -> tuple[int, int, float]:
    """Each reading of shared/data/voices alone (one person): readings given a second voice, readings,
    mean share of speech given to it."""
    import soundfile as sf

    from session_monitor.settings.loader import load_settings
    from support.attribution import attribute
    from support.voices import VOICES, speakers

    settings = load_settings(overrides=overrides)
    shares = []
    for name, _ in speakers():
        y, _ = sf.read(VOICES / name, dtype="float32")
        speech = attribute(y if y.ndim == 1 else y.mean(axis=1), settings).speech
        total = sum(s.end - s.start for s in speech)
        first = speech[0].speaker if speech else None
        shares.append(sum(s.end - s.start for s in speech if s.speaker not in (first, "unknown")) / max(total, 1e-9))
    return sum(x > 0 for x in shares), len(shares), float(np.mean(shares))


def sample_sessions(overrides: dict, *, enrolled: bool = False) -> list[tuple[str, float]]:
    """The sample sessions (two espeak-ng voices) mixed to mono; ``enrolled``: the therapist enrolled
    from another session's therapist channel (calm_reflective's; demo_session's for calm_reflective)."""
    import json

    import soundfile as sf

    from session_monitor.settings.loader import load_settings
    from session_monitor.speakers.enrollment import enrol
    from support.attribution import attribute, frame_accuracy

    settings = load_settings(overrides=overrides)
    out = []
    for truth_path in sorted((ROOT / "sample_audio").glob("*.truth.json")):
        truth = json.loads(truth_path.read_text())
        audio = truth_path.with_name(truth_path.name.replace(".truth.json", ".flac"))
        if not audio.is_file():
            continue
        y, rate = sf.read(audio, dtype="float32", always_2d=True)
        turns = [(t["start"], t["end"], t["speaker"]) for t in truth["transcript"]]
        profile, mapping = None, None
        if enrolled:
            other = "demo_session" if audio.stem == "calm_reflective" else "calm_reflective"
            therapist, _ = sf.read(ROOT / "sample_audio" / f"{other}.flac", dtype="float32")
            profile, mapping = enrol(therapist[:, 0], settings), {"therapist": "therapist", "patient": "patient"}
        result = attribute(y.mean(axis=1), settings, profile=profile)
        out.append((audio.stem, frame_accuracy(result.speech, turns, len(y) / rate, mapping=mapping)["accuracy_vad"]))
    return out


def pairs(overrides: dict, *, enrolled: bool) -> list[tuple[str, float]]:
    from session_monitor.settings.loader import load_settings
    from session_monitor.speakers.enrollment import enrol
    from support.attribution import attribute, frame_accuracy
    from support.voices import PAIRS, conversation, speakers

    sex = dict(speakers())
    settings = load_settings(overrides=overrides)
    out = []
    for k, (a, b) in enumerate(PAIRS):
        built = conversation(a, b, seed=k, hold_out_s=HOLD_OUT_S if enrolled else 0.0)
        profile = None
        mapping = None
        if enrolled:
            enrol_settings = load_settings(overrides={**overrides, "attribution": {
                **overrides.get("attribution", {}), "enrol_min_s": 5.0}})
            profile = enrol(built.enrolment, enrol_settings)
            mapping = {"A": "therapist", "B": "patient"}
        result = attribute(built.samples, settings, profile=profile)
        acc = frame_accuracy(result.speech, built.truth, built.duration_s, mapping=mapping)["accuracy_vad"]
        out.append((f"{sex[a]}{sex[b]} {a.split('-')[0]}+{b.split('-')[0]}", acc))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--embedding", choices=("mfcc", "ge2e"), action="append",
                    help="only these voice features (default: both, mfcc first)")
    ap.add_argument("--chunk-s", type=float, default=None, help="only this chunk length for the call")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="an attribution setting, e.g. new_voice_similarity=0.7")
    args = ap.parse_args()
    extra = {k: float(v) for k, v in (item.split("=", 1) for item in args.set)}
    lengths = [args.chunk_s] if args.chunk_s else [0.9, 1.0, 1.1, 1.2]
    for embedding in args.embedding or ["mfcc", "ge2e"]:
        base = {"attribution": {**extra, "embedding": embedding}}
        print(f"== attribution.embedding = {embedding}", flush=True)
        for cs in lengths:
            print(f"call chunk_s {cs}: {call({'attribution': {**base['attribution'], 'chunk_s': cs}}):.3f}",
                  flush=True)
        sd = [stereo_diarization({"attribution": {**base["attribution"], "chunk_s": cs}}) for cs in lengths]
        print("stereo_diarization in turns, mono, chunk_s " + " / ".join(map(str, lengths)) + ": "
              + " / ".join(f"{a:.3f}" for a in sd), flush=True)
        print(f"jfk: share given to a second voice {jfk_second_voice_share(base):.3f}", flush=True)
        split, n, share = one_voice_readings(base)
        print(f"one-voice readings: {split} of {n} given a second voice, mean share {share:.3f}", flush=True)
        for enrolled in (False, True):
            rows = sample_sessions(base, enrolled=enrolled)
            label = ", therapist enrolled from another session" if enrolled else ""
            print(f"sample sessions mixed to mono{label}: mean {np.mean([a for _, a in rows]):.3f}  "
                  + "  ".join(f"{n} {a:.2f}" for n, a in rows), flush=True)
        for enrolled in (False, True):
            rows = pairs(base, enrolled=enrolled)
            accs = np.array([acc for _, acc in rows])
            label = "with enrolment" if enrolled else "without enrolment"
            print(f"voices pairs {label}: mean {accs.mean():.3f} worst {accs.min():.3f}  "
                  + "  ".join(f"{n} {a:.2f}" for n, a in rows), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
