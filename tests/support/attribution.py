"""Helpers for the attribution tests and benchmark: run VAD + attribution over a signal, score it."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from session_monitor.audio.frames import Frame
from session_monitor.events import Speech, SpeechOnset
from session_monitor.settings.loader import Settings
from session_monitor.speakers.attribution import MonoAttribution
from session_monitor.speakers.clustering import TwoSpeakers
from session_monitor.speakers.embedding_attribution import EmbeddingAttribution
from session_monitor.speakers.encoder import load_encoder
from session_monitor.speakers.voices import TwoVoices
from session_monitor.speech.activity import SpeechActivity, UtteranceReady
from session_monitor.speech.noise_floor import NoiseFloor

SR = 16_000
HOP_S = 0.01


@dataclass
class Attributed:
    speech: list[Speech]
    onsets: list[SpeechOnset]
    utterances: list[UtteranceReady]
    chunks: int


def attribute(samples: np.ndarray, settings: Settings, *, profile=None, block: int = 1536) -> Attributed:
    """VAD and attribution over a mono 16 kHz signal, as the pipeline runs them."""
    vad = SpeechActivity(settings.speech_activity, channel=0, speaker="unknown")
    noise = NoiseFloor.of_speech(settings.speech_activity)
    if settings.attribution.embedding == "ge2e":
        voices = TwoVoices(settings.attribution, enrolled=None if profile is None else profile.embedding)
        attr = EmbeddingAttribution(settings.attribution, noise=noise, voices=voices, encoder=load_encoder())
    else:
        if profile is not None:
            speakers = TwoSpeakers(enrolled=profile.stats, enrolled_threshold=profile.novelty_threshold)
        else:
            speakers = TwoSpeakers()
        attr = MonoAttribution(settings.attribution, noise=noise, speakers=speakers)
    out = []
    for i in range(0, len(samples), block):
        frame = Frame(i, 0, samples[i : i + block])
        out += attr.process(frame, vad.process(frame))
    out += attr.process(None, vad.flush())
    return Attributed([e for e in out if isinstance(e, Speech)], [e for e in out if isinstance(e, SpeechOnset)],
                      [e for e in out if isinstance(e, UtteranceReady)], attr.chunks)


def truth_frames(turns: list[tuple[float, float, str]], duration_s: float) -> np.ndarray:
    """Per 10 ms frame: the one speaker talking, '' for silence, '*' for overlap."""
    n = int(duration_s / HOP_S) + 1
    who = np.full(n, "", dtype=object)
    count = np.zeros(n, dtype=int)
    for start, end, speaker in turns:
        a, b = round(start / HOP_S), round(end / HOP_S)
        count[a:b] += 1
        who[a:b] = speaker
    who[count > 1] = "*"
    return who


def predicted_frames(speech: list[Speech], n: int) -> np.ndarray:
    who = np.full(n, "", dtype=object)
    for seg in speech:
        who[round(seg.start / HOP_S) : round(seg.end / HOP_S)] = seg.speaker
    return who


def frame_accuracy(speech: list[Speech], turns: list[tuple[float, float, str]], duration_s: float, *,
                   mapping: dict[str, str] | None = None) -> dict[str, float]:
    """Share of single-speaker frames attributed correctly.

    ``mapping`` maps true speaker names to roles; None tries both assignments of the
    two true speakers to therapist/patient and keeps the better (unsupervised).
    Returns ``accuracy`` over all single-speaker frames (a frame the VAD missed, or
    labelled ``unknown``, counts as wrong), ``accuracy_vad`` over those the VAD
    passed, ``coverage`` (share the VAD passed) and ``unknown`` (share labelled so).
    """
    truth = truth_frames(turns, duration_s)
    pred = predicted_frames(speech, len(truth))
    single = (truth != "") & (truth != "*")
    names = sorted({t[2] for t in turns})
    maps = [mapping] if mapping is not None else [
        dict(zip(names, roles)) for roles in itertools.permutations(("therapist", "patient"), len(names))]
    best = None
    for m in maps:
        want = np.array([m.get(x, x) for x in truth], dtype=object)
        ok = single & (pred == want)
        if best is None or ok.sum() > best[0].sum():
            best = (ok, m)
    ok, m = best
    passed = single & (pred != "")
    return {
        "accuracy": float(ok.sum() / max(1, single.sum())),
        "accuracy_vad": float(ok.sum() / max(1, passed.sum())),
        "coverage": float(passed.sum() / max(1, single.sum())),
        "unknown": float((single & (pred == "unknown")).sum() / max(1, single.sum())),
        "mapping": m,
    }
