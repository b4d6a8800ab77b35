"""What every audio source gives the session: the :class:`AudioSource` protocol.

A source yields blocks of shape ``(channels, n)``, float32 at
:data:`~session_monitor.audio.frames.SAMPLE_RATE`, in order and without gaps: the
session clock is counted from their samples. :class:`~session_monitor.audio.file_source.FileSource`
(a recording), :class:`~session_monitor.audio.microphone.MicrophoneSource` (a
capture device) and :class:`~session_monitor.audio.two_devices.TwoDeviceSource` (two, on
one clock) implement it; a test may pass any object that does.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import numpy as np

from session_monitor.audio.frames import SAMPLE_RATE

__all__ = ["AudioSource", "LimitedSource", "OneStream"]


class OneStream:
    """What a source of one stream (one file, one device) reports from its own counters:
    every channel's state is the stream's ``audio_ok``; ``clipped`` of ``samples_read`` at full scale."""

    channels: int
    audio_ok: bool
    clipped: int
    samples_read: int

    @property
    def channel_ok(self) -> tuple[bool, ...]:
        return (self.audio_ok,) * self.channels

    @property
    def clipped_fraction(self) -> float:
        return self.clipped / max(1, self.samples_read)


class AudioSource(Protocol):
    """A session's audio: a file replayed or a device captured.

    Attributes
    ----------
    name : str
        What the user named (a path, ``device:NAME``), for messages.
    channels : int
        Channels of every block.
    live : bool
        True for a capture device (it must be :meth:`open`-ed before :meth:`blocks`).
    overflows : int
        Blocks the source had to drop so far (capture overflow); 0 for a file.
    audio_ok : bool
        False while the device is lost (the blocks are then silence, to keep the clock).
    channel_ok : tuple[bool, ...]
        Per channel: False while that channel's device is lost (two devices, one channel
        each, lose one at a time); for one device every entry is ``audio_ok``.
    message : str
        A plain sentence on the source's state when it is not ok, else ``""``.
    clipped_fraction : float
        Share of the samples read so far at full scale (0..1).
    """

    name: str
    channels: int
    live: bool
    overflows: int
    audio_ok: bool
    channel_ok: tuple[bool, ...]
    message: str

    @property
    def clipped_fraction(self) -> float: ...

    def open(self) -> None: ...

    def blocks(self) -> Iterator[np.ndarray]: ...

    def close(self) -> None: ...


class LimitedSource:
    """A source that ends after ``duration_s`` of audio (``live --duration``)."""

    def __init__(self, source: AudioSource, duration_s: float) -> None:
        self._source = source
        self._samples = int(duration_s * SAMPLE_RATE)

    name = property(lambda self: self._source.name)
    channels = property(lambda self: self._source.channels)
    live = property(lambda self: self._source.live)
    overflows = property(lambda self: self._source.overflows)
    audio_ok = property(lambda self: self._source.audio_ok)
    channel_ok = property(lambda self: self._source.channel_ok)
    message = property(lambda self: self._source.message)
    clipped_fraction = property(lambda self: self._source.clipped_fraction)

    def open(self) -> None:
        self._source.open()

    def blocks(self) -> Iterator[np.ndarray]:
        done = 0
        for block in self._source.blocks():
            yield block
            done += block.shape[1]
            if done >= self._samples:
                return

    def close(self) -> None:
        self._source.close()
