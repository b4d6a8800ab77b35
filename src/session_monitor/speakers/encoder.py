"""A neural speaker embedding without torch: the GE2E voice encoder in numpy.

The encoder is the one that ships in the PyPI package Resemblyzer (Apache-2.0; Wan et al.
2018, "Generalized end-to-end loss for speaker verification", as trained by Resemble AI):
40 mel bands of the power spectrum (25 ms windows, 10 ms hop, *not* log), a 3-layer LSTM of
256 units, the last layer's final hidden state through a 256x256 linear layer and a ReLU,
normalized to unit length. Voices are compared by the cosine of their embeddings (a dot
product). ``scripts/convert_voice_encoder.py`` exported it once, weights unchanged, with the
mel filterbank in front, to ``voice_encoder/ge2e.onnx`` beside this module (with the
licence); this module computes the power spectrum in numpy and runs the graph with
onnxruntime on one thread. ``tests/speakers/test_encoder.py`` checks it against the original
(torch) encoder.

Speech is scaled to a fixed level before the spectrum (the mel input is not log, so the
embedding depends on the level; Resemblyzer normalizes to -30 dBFS likewise).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from session_monitor.errors import ConfigError

__all__ = ["DIM", "WEIGHTS", "VoiceEncoder", "load_encoder"]

logger = logging.getLogger(__name__)

WEIGHTS = Path(__file__).resolve().parent / "voice_encoder" / "ge2e.onnx"
DIM = 256
N_FFT = 400  # 25 ms at 16 kHz
HOP = 160  # 10 ms
#: Speech is scaled to this RMS level (dBFS) before the spectrum, as Resemblyzer's preprocessing.
TARGET_DBFS = -30.0
_FIX = "reinstall session-monitor, or run scripts/convert_voice_encoder.py to write it again"


class VoiceEncoder:
    """The GE2E encoder: 16 kHz samples -> a 256-d unit vector.

    Parameters
    ----------
    path : Path
        The ONNX graph (power spectrum ``(batch, frames, 201)`` -> embedding ``(batch, 256)``).
    """

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1  # a small LSTM: threads cost more than they give
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if [i.name for i in inputs] != ["power"] or inputs[0].shape[-1] != N_FFT // 2 + 1 or \
                outputs[0].shape[-1] != DIM:
            raise ValueError("unexpected inputs or outputs")
        self.window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)  # periodic

    def power(self, samples: np.ndarray) -> np.ndarray:
        """Power spectrum, ``(1 + len // 160, 201)`` frames (librosa's STFT: centred, zero-padded)."""
        x = np.pad(np.asarray(samples, dtype=np.float32), N_FFT // 2)
        n = 1 + (len(x) - N_FFT) // HOP
        frames = np.lib.stride_tricks.as_strided(x, (n, N_FFT), (x.strides[0] * HOP, x.strides[0]))
        spec = np.fft.rfft(frames * self.window, axis=1)
        return (spec.real ** 2 + spec.imag ** 2).astype(np.float32)

    def embed_power(self, power: np.ndarray) -> np.ndarray:
        """Embeddings of a batch of power spectra ``(batch, frames, 201)`` -> ``(batch, 256)``."""
        return self.session.run(None, {"power": np.ascontiguousarray(power, dtype=np.float32)})[0]

    def embed(self, samples: np.ndarray, *, normalize: bool = True) -> np.ndarray:
        """The unit-length embedding of 16 kHz mono speech (``normalize``: scaled to -30 dBFS first)."""
        x = np.asarray(samples, dtype=np.float32)
        if normalize:
            rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if len(x) else 0.0
            if rms > 1e-6:
                x = x * np.float32(10 ** (TARGET_DBFS / 20) / rms)
        return self.embed_power(self.power(x)[None])[0]


_lock = threading.Lock()
_cached: VoiceEncoder | None = None


def load_encoder(path: Path = WEIGHTS) -> VoiceEncoder:
    """The encoder of ``path`` (read once and kept); ConfigError naming the file when unusable."""
    global _cached
    with _lock:
        if _cached is not None and path == WEIGHTS:
            return _cached
        if not path.is_file():
            raise ConfigError(f"{path}: the speaker embedding's weights are missing; {_FIX}")
        try:
            encoder = VoiceEncoder(path)
        except Exception as exc:  # onnxruntime raises its own classes for a broken graph
            raise ConfigError(f"{path}: the speaker embedding's weights are unreadable "
                              f"({exc.__class__.__name__}); {_FIX}") from None
        if path == WEIGHTS:
            _cached = encoder
        return encoder
