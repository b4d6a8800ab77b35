"""What the pipeline takes and gives: its audio source and analyzer interfaces, its run statistics."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from session_monitor.events import Event

__all__ = ["Analyzer", "AudioSource", "RunStats"]


class AudioSource(Protocol):
    name: str
    channels: int
    live: bool
    overflows: int
    audio_ok: bool

    def blocks(self) -> Iterable[np.ndarray]: ...

    def close(self) -> None: ...


class Analyzer(Protocol):
    """A stage over the event stream (e.g. the rupture model)."""

    def on_event(self, event: Event) -> list[Event]: ...

    def tick(self, t: float) -> list[Event]: ...

    def finish(self, t: float) -> list[Event]: ...


@dataclass
class RunStats:
    audio_s: float = 0.0
    wall_s: float = 0.0
    events: int = 0
    transcripts: int = 0
    speech_segments: int = 0
    completed: bool = False
    input: dict = field(default_factory=dict)  # what the input checks found (session.json "input")

    @property
    def rtf(self) -> float:
        """Audio seconds per wall second (higher is faster)."""
        return self.audio_s / self.wall_s if self.wall_s > 0 else 0.0
