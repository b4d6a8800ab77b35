"""Frames: the unit of audio inside the pipeline (float32, mono, 16 kHz)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Frame", "SAMPLE_RATE"]

#: The pipeline's sample rate; every source resamples to it.
SAMPLE_RATE = 16_000


@dataclass(frozen=True, slots=True)
class Frame:
    """``samples`` (shape ``(n,)``, float32, 16 kHz) of one channel from ``start_sample``.

    ``start_sample`` counts from the start of the session: it is the session clock.
    """

    start_sample: int
    channel: int
    samples: np.ndarray

    @property
    def start_s(self) -> float:
        return self.start_sample / SAMPLE_RATE

    @property
    def end_sample(self) -> int:
        return self.start_sample + len(self.samples)

    @property
    def end_s(self) -> float:
        return self.end_sample / SAMPLE_RATE
