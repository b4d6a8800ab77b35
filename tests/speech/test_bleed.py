"""Bleed and dual mono, decided from both channels together, on real recordings.

``stereo_diarization.wav`` holds a different real speaker on each channel (they overlap
in the first 2.5 s, then only the left one speaks); the test mixes each channel's voice
into the other 6, 12 and 20 dB down and 0 or 3 ms late, as two lapel microphones in one
room hear each other. ``jfk.flac`` is one real voice saved on both channels.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import soxr

from session_monitor.settings.loader import load_settings
from session_monitor.speech.bleed import CHUNK, BleedDetector, DualMonoDetector, chunk_coherence
from support.audio import SR, noise, shared_file


def load_stereo(name: str) -> np.ndarray:
    y, sr = sf.read(shared_file(name), dtype="float32", always_2d=True)
    if sr != SR:
        y = soxr.resample(y, sr, SR)
    return np.ascontiguousarray(y.T, dtype=np.float32)


def with_bleed(clean: np.ndarray, down_db: float, delay_ms: float) -> np.ndarray:
    """Each channel plus the other's voice ``down_db`` quieter and ``delay_ms`` later."""
    g, d = 10 ** (-down_db / 20), int(round(delay_ms * SR / 1000))
    out = clean.copy()
    for c in (0, 1):
        out[c, d:] += g * clean[1 - c, : clean.shape[1] - d]
    return out


def chunk_levels(y: np.ndarray) -> np.ndarray:
    n = y.shape[1] // CHUNK
    return 10 * np.log10(np.mean(y[:, : n * CHUNK].reshape(2, n, CHUNK).astype(np.float64) ** 2, axis=2) + 1e-10)


def ownership(y: np.ndarray, *, block: int = 1600, settings=None) -> np.ndarray:
    det = BleedDetector(settings or load_settings().bleed)
    parts = [det.process(y[:, i : i + block]).own for i in range(0, y.shape[1], block)]
    return np.concatenate(parts, axis=1)


def test_a_delayed_copy_is_fully_explained_at_its_delay():
    x = noise(8 * CHUNK, db=-20, seed=3)
    delay = 37
    other = np.concatenate([np.zeros(delay, np.float32), x])[: len(x)]  # x 37 samples later...
    # ...judged the other way round: `x` is explained by nothing earlier, `other` by x's past
    lag = 80
    past = np.concatenate([np.zeros(lag, np.float32), x])
    rows = np.stack([past[i * CHUNK : i * CHUNK + CHUNK + lag] for i in range(1, 8)])
    chunks = other[CHUNK:].reshape(7, CHUNK)
    assert chunk_coherence(chunks, rows, lag) == pytest.approx(np.ones(7), abs=1e-6)
    unrelated = noise(7 * CHUNK, db=-20, seed=4).reshape(7, CHUNK)
    assert np.all(chunk_coherence(unrelated, rows, lag) < 0.05)


@pytest.mark.parametrize("down_db", [6, 12, 20])
@pytest.mark.parametrize("delay_ms", [0, 3])
def test_bleed_on_the_quiet_channel_is_not_its_own(down_db, delay_ms):
    clean = load_stereo("stereo_diarization.wav")
    level = chunk_levels(clean)
    own = ownership(with_bleed(clean, down_db, delay_ms))
    level = level[:, : own.shape[1]]
    left_alone = (level[0] > -45) & (level[1] < -55)  # only the left speaker talks
    assert left_alone.sum() > 50
    assert own[0][left_alone].mean() >= 0.99  # the speaker's own channel keeps every chunk
    assert 1 - own[1][left_alone].mean() >= 0.9  # tolerance: onsets/tails of the right voice


@pytest.mark.parametrize("down_db", [6, 12, 20])
@pytest.mark.parametrize("delay_ms", [0, 3])
def test_a_real_overlap_is_kept_under_bleed(down_db, delay_ms):
    clean = load_stereo("stereo_diarization.wav")
    level = chunk_levels(clean)
    own = ownership(with_bleed(clean, down_db, delay_ms))
    both = (level[0, : own.shape[1]] > -35) & (level[1, : own.shape[1]] > -35)  # both voices loud
    assert both.sum() > 30
    assert own[0][both].mean() >= 0.85 and own[1][both].mean() >= 0.85


def test_without_bleed_every_chunk_is_its_own():
    clean = load_stereo("stereo_diarization.wav")
    assert ownership(clean).mean() >= 0.99


def test_decisions_do_not_depend_on_block_size():
    y = with_bleed(load_stereo("stereo_diarization.wav"), 12, 3)
    a, b = ownership(y, block=512), ownership(y, block=1777)
    n = min(a.shape[1], b.shape[1])
    assert np.array_equal(a[:, :n], b[:, :n])


def test_disabled_detector_keeps_everything():
    from dataclasses import replace

    settings = replace(load_settings().bleed, enabled=False)
    assert ownership(with_bleed(load_stereo("stereo_diarization.wav"), 6, 0), settings=settings).all()


def dual_mono(y: np.ndarray, block: int = 1600):
    det = DualMonoDetector(load_settings().bleed)
    verdicts = [v for i in range(0, y.shape[1], block) if (v := det.process(y[:, i : i + block])) is not None]
    return verdicts, det


def test_jfk_saved_as_stereo_is_dual_mono_within_the_first_seconds():
    verdicts, det = dual_mono(load_stereo("jfk.flac"))
    assert len(verdicts) == 1 and verdicts[0].dual_mono
    assert verdicts[0].decided_at_s <= 6.0
    assert det.share_so_far() >= 0.95  # and throughout
    assert "same signal" in verdicts[0].hint


@pytest.mark.parametrize("down_db", [None, 6, 20])
def test_two_voices_are_not_dual_mono_even_with_bleed(down_db):
    clean = load_stereo("stereo_diarization.wav")
    y = clean if down_db is None else with_bleed(clean, down_db, 0)
    _, det = dual_mono(y)
    verdict = det.finish()
    assert not verdict.dual_mono and verdict.share < 0.2


def test_one_signal_quieter_on_one_side_is_bleed_not_dual_mono():
    jfk = load_stereo("jfk.flac")
    y = np.stack([jfk[0], 10 ** (-6 / 20) * jfk[1]])  # the same voice, 6 dB apart
    _, det = dual_mono(y)
    assert not det.finish().dual_mono
    own = ownership(y)
    assert own[0].mean() >= 0.99 and own[1].mean() <= 0.1
