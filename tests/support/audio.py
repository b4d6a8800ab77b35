"""Test audio: real recordings from ../shared/data, speech from espeak-ng, quiet-room noise."""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = ROOT.parent / "shared" / "data"
SAMPLE_AUDIO = ROOT / "sample_audio"
SR = 16_000


def shared_file(name: str) -> Path:
    """A file of ../shared/data, or skip the test cleanly where that folder is absent."""
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"{path} is absent (../shared/data is not beside this checkout)")
    return path


def needs(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.skip(f"{program} is not installed (.ci/run installs it)")
    return path


@functools.lru_cache(maxsize=None)
def _espeak_cached(text: str, voice: str, rate_wpm: int) -> np.ndarray:
    import librosa
    import soundfile as sf

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "u.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate_wpm), "-w", str(wav), text], check=True)
        y, sr = sf.read(wav, dtype="float32")
    y = librosa.resample(y, orig_sr=sr, target_sr=SR).astype(np.float32)
    y = 0.25 * y / np.max(np.abs(y))
    # trim to where 10 ms RMS reaches the energy floor (-50 dBFS): espeak's quiet decay
    # tails are not speech a listener would time
    hop = SR // 100
    n = len(y) // hop
    db = 10 * np.log10(np.mean(y[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(db >= -50.0)
    y = y[loud[0] * hop : (loud[-1] + 1) * hop]
    return y.astype(np.float32)


def espeak(text: str, *, voice: str = "en-us", rate_wpm: int = 160) -> np.ndarray:
    """Speech at 16 kHz, peak 0.25 (-12 dBFS), trimmed to its 10 ms frames above -50 dBFS."""
    needs("espeak-ng")
    return _espeak_cached(text, voice, rate_wpm).copy()


def noise(n: int, *, db: float = -70.0, seed: int = 0) -> np.ndarray:
    """White noise at ``db`` dBFS RMS: a quiet room, so nothing is digital silence."""
    rng = np.random.default_rng(seed)
    return (10 ** (db / 20) * rng.standard_normal(n)).astype(np.float32)


def frames(signal: np.ndarray, block: int = 1536):
    """Yield (start_sample, block) over a 1-D signal."""
    for i in range(0, len(signal), block):
        yield i, signal[i : i + block]


def place(total_s: float, pieces: list[tuple[float, np.ndarray]], *, seed: int = 0) -> np.ndarray:
    """``total_s`` seconds of quiet-room noise with each ``(at_s, speech)`` added at ``at_s`` seconds."""
    y = noise(int(total_s * SR), seed=seed)
    for at_s, speech in pieces:
        i = int(round(at_s * SR))
        y[i : i + len(speech)] += speech
    return y
