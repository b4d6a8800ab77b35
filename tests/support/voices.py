"""Two-person conversations built from real voices (``../shared/data/voices``, LibriSpeech, CC BY 4.0).

Each of the 60 recordings is one person reading for 11-17 s. :func:`conversation` cuts two
people's recordings into turns of 1.5-5 s at their pauses (:func:`turns_of`) and lays the turns out alternately, A B A B
..., with natural gaps (0.2-1.5 s; one in five 2-4 s), each voice at its own level
(-26 dBFS +- 3 dB), on a quiet noise floor, mixed to one channel. The truth is each
turn's speech from its first to its last voiced 10 ms frame.

:data:`PAIRS` are the pairs the tests and the benchmark use: four woman-man, three
woman-woman and three man-man pairs, chosen by a fixed rule (speakers in the order of
SPEAKERS.tsv), so the same code always builds the same conversations.

For a run with an enrolment, ``hold_out_s`` keeps the last seconds of person A's reading
out of the conversation and returns them as the enrolment recording: the enrolment and
the session never share audio.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from support.audio import SHARED_DATA, SR

VOICES = SHARED_DATA / "voices"
_HOP = SR // 100
_RANGE_DB = 25.0  # a 10 ms frame is voiced within this of the reading's 95th-percentile level
_PAUSE_S = 0.15  # a pause to cut at: at least this long unvoiced
_MIN_TURN_S = 1.5
_MAX_TURN_S = 5.0


def speakers() -> list[tuple[str, str]]:
    """(file, sex) of every recording, in the order of SPEAKERS.tsv."""
    rows = (VOICES / "SPEAKERS.tsv").read_text().splitlines()[1:]
    return [(r.split("\t")[0], r.split("\t")[2]) for r in rows if r.strip()]


def _pairs() -> list[tuple[str, str]]:
    women = [f for f, s in speakers() if s == "F"]
    men = [f for f, s in speakers() if s == "M"]
    mixed = [(women[i], men[i]) for i in range(4)]
    same = [(women[4 + 2 * i], women[5 + 2 * i]) for i in range(3)] + [(men[4 + 2 * i], men[5 + 2 * i])
                                                                      for i in range(3)]
    return mixed + same


PAIRS: list[tuple[str, str]] = _pairs() if (VOICES / "SPEAKERS.tsv").is_file() else []


def _level_db(x: np.ndarray) -> np.ndarray:
    n = len(x) // _HOP
    frames = x[: n * _HOP].reshape(n, _HOP).astype(np.float64)
    return 10 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)


def turns_of(x: np.ndarray) -> list[tuple[int, int]]:
    """Sample ranges of one reading's turns, 1.5-5 s each: cut in its pauses, a turn still over
    5 s at its quietest 100 ms between words (some readers never pause for 0.15 s)."""
    db = _level_db(x)
    voiced = db > np.percentile(db, 95) - _RANGE_DB
    idx = np.flatnonzero(voiced)
    first, last = int(idx[0]), int(idx[-1]) + 1
    lo, hi = round(_MIN_TURN_S * 100), round(_MAX_TURN_S * 100)
    pauses, k = [], first  # runs of unvoiced frames inside [first, last)
    while k < last:
        j = k
        while j < last and not voiced[j]:
            j += 1
        if j - k >= round(_PAUSE_S * 100):
            pauses.append((k, j))
        k = j + 1
    cuts, start = [], first
    for a, b in pauses:
        if a - start >= lo and last - b >= lo:
            cuts.append((start, a))
            start = b
    cuts.append((start, last))
    smooth = np.convolve(db, np.ones(10) / 10, mode="same")
    turns: list[tuple[int, int]] = []
    while cuts:
        s, e = cuts.pop(0)
        if e - s > hi:
            m = s + lo + int(np.argmin(smooth[s + lo : e - lo]))
            cuts[:0] = [(s, m), (m, e)]
        else:
            turns.append((s * _HOP, e * _HOP))
    return turns


@dataclass
class Built:
    samples: np.ndarray  # mono, float32, 16 kHz
    truth: list[tuple[float, float, str]]  # (start s, end s, "A" | "B")
    enrolment: np.ndarray | None  # A's held-out speech, or None

    @property
    def duration_s(self) -> float:
        return len(self.samples) / SR


def read(name: str) -> np.ndarray:
    import soundfile as sf

    x, rate = sf.read(VOICES / name, dtype="float32")
    assert rate == SR, name
    return x


def conversation(a: str, b: str, *, seed: int = 0, hold_out_s: float = 0.0) -> Built:
    """Person ``a`` and person ``b`` taking turns (``a`` first); see the module notes."""
    rng = np.random.default_rng(seed)
    xa, xb = read(a), read(b)
    ta, tb = turns_of(xa), turns_of(xb)
    enrolment = None
    if hold_out_s > 0:  # A's last turns, at least hold_out_s of them, become the enrolment
        held: list[tuple[int, int]] = []
        while ta and sum(e - s for s, e in held) < hold_out_s * SR and len(ta) > 1:
            held.insert(0, ta.pop())
        enrolment = np.concatenate([xa[s:e] for s, e in held])
    gains = {}
    for name, x, turns in (("A", xa, ta), ("B", xb, tb)):
        speech = np.concatenate([x[s:e] for s, e in turns])
        rms_db = 10 * np.log10(np.mean(speech.astype(np.float64) ** 2) + 1e-12)
        gains[name] = 10 ** ((-26.0 + rng.uniform(-3, 3) - rms_db) / 20)
    order = []
    for k in range(max(len(ta), len(tb))):
        if k < len(ta):
            order.append(("A", xa, ta[k]))
        if k < len(tb):
            order.append(("B", xb, tb[k]))
    total = 0.5 + sum((e - s) / SR + 4.0 for _, _, (s, e) in order) + 1.0
    y = (rng.standard_normal(int(total * SR)) * 10 ** (-65 / 20)).astype(np.float32)
    t, truth = 0.5, []
    for name, x, (s, e) in order:
        piece = x[s:e] * gains[name]
        i = round(t * SR)
        y[i : i + len(piece)] += piece
        db = _level_db(piece)
        voiced = np.flatnonzero(db > np.percentile(db, 95) - _RANGE_DB)
        truth.append((t + voiced[0] * _HOP / SR, t + (voiced[-1] + 1) * _HOP / SR, name))
        gap = rng.uniform(2.0, 4.0) if rng.random() < 0.2 else rng.uniform(0.2, 1.5)
        t += len(piece) / SR + gap
    end = round((truth[-1][1] + 0.5) * SR)
    return Built(y[:end], truth, enrolment)
