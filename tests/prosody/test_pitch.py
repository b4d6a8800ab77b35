"""The package's numpy YIN against librosa.yin, and prosody with either tracker.

librosa is the reference here: ``session_monitor.prosody.pitch`` implements the YIN of
``librosa.yin`` (0.11, ``center=False``) so the audio path need not import librosa.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import soundfile as sf

from session_monitor.audio.frames import Frame
from session_monitor.prosody.pitch import periodicity, yin_frames
from session_monitor.prosody.tracker import ProsodyTracker
from session_monitor.settings.loader import load_settings
from support.audio import SHARED_DATA, SR, espeak, frames, noise

FRAME, HOP = 1024, 160


def _both(y: np.ndarray, threshold: float = 0.2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import librosa

    ref = librosa.yin(y, fmin=65, fmax=400, sr=SR, frame_length=FRAME, hop_length=HOP, center=False,
                      trough_threshold=threshold)
    framed = np.lib.stride_tricks.sliding_window_view(y, FRAME)[::HOP]
    ours = yin_frames(framed, sr=SR, fmin=65, fmax=400, threshold=threshold)
    return ref, ours, periodicity(y, ours, sr=SR, hop=HOP, frame_length=FRAME)


def _semitones(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 12 * np.abs(np.log2(a / b))


@pytest.mark.parametrize("freq_hz", [70.0, 123.4, 200.0, 390.0])
def test_tones_match_librosa_and_the_true_pitch(freq_hz):
    t = np.arange(SR) / SR
    y = (0.1 * np.sin(2 * np.pi * freq_hz * t) + 0.03 * np.sin(2 * np.pi * 2 * freq_hz * t)).astype(np.float32)
    ref, ours, corr = _both(y)
    assert _semitones(ours, ref).max() < 0.001  # the same algorithm: differences are rounding only
    assert np.median(ours) == pytest.approx(freq_hz, rel=0.01)  # YIN with parabolic interpolation
    assert np.all(corr > 0.9)  # a steady tone is periodic


def test_real_speech_matches_librosa_frame_by_frame():
    """jfk.flac (44.1 kHz, resampled to 16 kHz): every frame, voiced or not, within 0.01 semitone."""
    import soxr

    y, sr = sf.read(SHARED_DATA / "jfk.flac", dtype="float32")
    y = soxr.resample(y if y.ndim == 1 else y[:, 0], sr, SR).astype(np.float32)
    ref, ours, corr = _both(y)
    assert len(ref) == len(ours) > 1000
    assert _semitones(ours, ref).max() < 0.01
    voiced = corr >= 0.5
    assert 0.3 < voiced.mean() < 0.8  # a speech file is partly voiced


def test_voicing_measure_is_the_normalised_correlation_at_the_period():
    """periodicity() on the signal against the definition, frame by frame in plain numpy:
    r(T) / sqrt(E_head E_tail) over the frame's first half and the same length T later."""
    import soxr

    y, sr = sf.read(SHARED_DATA / "jfk.flac", dtype="float32")
    y = soxr.resample(y if y.ndim == 1 else y[:, 0], sr, SR).astype(np.float32)
    framed = np.lib.stride_tricks.sliding_window_view(y, FRAME)[::HOP]
    f0 = yin_frames(framed, sr=SR, fmin=65, fmax=400, threshold=0.2)
    corr = periodicity(y, f0, sr=SR, hop=HOP, frame_length=FRAME)
    half = FRAME // 2
    for i in range(0, len(framed), 7):
        x = framed[i].astype(np.float64)
        lag = int(np.clip(round(SR / f0[i]), 1, FRAME - half))
        head, tail = x[:half], x[lag : lag + half]
        want = head @ tail / np.sqrt((head @ head) * (tail @ tail) + 1e-10)
        assert corr[i] == pytest.approx(want, abs=1e-9)


def test_noise_is_aperiodic():
    _, _, corr = _both(noise(SR, db=-30))
    assert np.median(corr) < 0.3


def test_prosody_is_the_same_with_either_tracker():
    speech = espeak("we went to the market on monday and it rained all day", rate_wpm=150)
    y = np.concatenate([noise(SR // 2), speech + noise(len(speech), seed=1), noise(SR // 2, seed=2)])
    out = {}
    for pitch in ("yin", "librosa"):
        settings = load_settings().prosody
        tracker = ProsodyTracker(replace(settings, pitch=pitch), speaker="patient")
        out[pitch] = [e for start, block in frames(y) for e in tracker.process(Frame(start, 0, block), speaking=True)]
    a, b = out["yin"], out["librosa"]
    assert len(a) == len(b) > 30
    assert [e.f0_hz is None for e in a] == [e.f0_hz is None for e in b]
    for x, z in zip(a, b):
        assert x.intensity_db == z.intensity_db
        if x.f0_hz is not None:
            assert x.f0_hz == pytest.approx(z.f0_hz, rel=1e-4)


def test_no_pitch_is_computed_while_nobody_speaks():
    """F0 on a block where the VAD hears nobody would be discarded: it is not computed."""
    calls = []

    class Counting(ProsodyTracker):
        def _analyse(self, buf, n_hops, with_f0):
            calls.append(with_f0)
            return super()._analyse(buf, n_hops, with_f0)

    tracker = Counting(load_settings().prosody, speaker="patient")
    t = np.arange(2 * SR) / SR
    y = (0.1 * np.sin(2 * np.pi * 150 * t)).astype(np.float32)
    events = [e for start, block in frames(y) for e in tracker.process(Frame(start, 0, block), speaking=start >= SR)]
    assert calls.count(False) > 5 and calls.count(True) > 5
    assert all(e.f0_hz is None for e in events if e.t < 0.9)
    assert all(e.f0_hz == pytest.approx(150, rel=0.01) for e in events if e.t > 1.2)
