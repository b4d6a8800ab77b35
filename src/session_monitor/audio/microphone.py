"""Microphone source: a sounddevice InputStream feeding a bounded queue.

The audio callback runs on PortAudio's thread and must never block: it only copies
the block into the queue (``put_nowait``) and counts overflows — PortAudio's own
input-overflow flag, and blocks dropped because the queue was full. Everything else
(resampling to 16 kHz, cutting pipeline blocks) happens on the reading side. Lost
blocks are replaced by silence of the same length, so the session clock (counted in
samples) stays aligned with the room.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import DeviceError
from .frames import SAMPLE_RATE

__all__ = ["MicrophoneSource", "list_devices", "find_device"]

logger = logging.getLogger(__name__)


def list_devices() -> list[dict[str, Any]]:
    """Capture devices: index, name, input channels, default rate, host API."""
    import sounddevice as sd

    apis = sd.query_hostapis()
    out = []
    for index, dev in enumerate(sd.query_devices()):
        if dev["max_input_channels"] > 0:
            out.append({
                "index": index, "name": dev["name"], "channels": int(dev["max_input_channels"]),
                "default_rate": float(dev["default_samplerate"]), "hostapi": apis[dev["hostapi"]]["name"],
            })
    return out


def _available(devices: list[dict[str, Any]]) -> str:
    if not devices:
        return "no capture devices are available"
    return "available: " + "; ".join(f"{d['index']}: {d['name']}" for d in devices)


def find_device(spec: str | int | None) -> dict[str, Any]:
    """A capture device by index, exact name, or unique part of its name (None: default)."""
    import sounddevice as sd

    devices = list_devices()
    if spec is None or spec == "":
        try:
            index = sd.default.device[0]
            if index is None or index < 0:
                index = sd.query_devices(kind="input")["index"]
        except Exception:
            raise DeviceError(f"no default capture device; give --device ({_available(devices)})") from None
        spec = int(index)
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        index = int(spec)
        for dev in devices:
            if dev["index"] == index:
                return dev
        raise DeviceError(f"capture device {index} not found; {_available(devices)}")
    exact = [d for d in devices if d["name"] == spec]
    if exact:
        return exact[0]
    partial = [d for d in devices if spec.lower() in d["name"].lower()]
    if len(partial) == 1:
        return partial[0]
    if len(partial) > 1:
        raise DeviceError(f"--device {spec!r} matches several devices; use its index ({_available(partial)})")
    raise DeviceError(f"capture device {spec!r} not found; {_available(devices)}")


class MicrophoneSource:
    """Live blocks ``(channels, n)`` float32 at 16 kHz from a capture device.

    Parameters
    ----------
    device : index or name (None: the system default)
    channels : channels to capture (1 or the number of roles)
    capture_rate : Hz, 0 for the device's default rate
    block_ms : pipeline block length at 16 kHz
    capture_block_ms : PortAudio callback block length
    queue_s : queue capacity in seconds; when full new blocks are dropped and counted
    """

    live = True

    def __init__(self, device: str | int | None, *, channels: int, capture_rate: int = 0, block_ms: int = 96,
                 capture_block_ms: int = 32, queue_s: float = 10.0) -> None:
        self.device = find_device(device)
        if channels > self.device["channels"]:
            raise DeviceError(
                f"device {self.device['name']!r} has {self.device['channels']} input channel(s), "
                f"{channels} needed; pick another device or fewer --roles"
            )
        self.channels = channels
        self.rate = int(capture_rate or self.device["default_rate"] or SAMPLE_RATE)
        self.name = f"device:{self.device['name']}"
        self.block = round(block_ms * SAMPLE_RATE / 1000)
        self.capture_block = max(1, round(capture_block_ms * self.rate / 1000))
        self._queue: queue.Queue[np.ndarray] = queue.Queue(maxsize=max(2, int(queue_s * 1000 / capture_block_ms)))
        self.overflows = 0
        self.dropped_samples = 0
        self.audio_ok = True
        self._stop = threading.Event()
        self._stream = None

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        if status and status.input_overflow:
            self.overflows += 1
        try:
            self._queue.put_nowait(indata.copy())
        except queue.Full:
            self.overflows += 1
            self.dropped_samples += frames

    def open(self) -> None:
        """Start capturing; raises DeviceError with the available devices if it cannot."""
        import sounddevice as sd

        try:
            sd.check_input_settings(device=self.device["index"], channels=self.channels, samplerate=self.rate,
                                    dtype="float32")
            self._stream = sd.InputStream(
                device=self.device["index"], channels=self.channels, samplerate=self.rate, dtype="float32",
                blocksize=self.capture_block, callback=self._callback,
            )
            self._stream.start()
        except Exception as exc:
            raise DeviceError(
                f"cannot capture from {self.device['name']!r} at {self.rate} Hz ({str(exc).splitlines()[0][:120]}); "
                f"{_available(list_devices())}"
            ) from None

    def stop(self) -> None:
        """Ask :meth:`blocks` to end (thread-safe)."""
        self._stop.set()

    def blocks(self) -> Iterator[np.ndarray]:
        import soxr

        if self._stream is None:
            self.open()
        resampler = None
        if self.rate != SAMPLE_RATE:
            resampler = soxr.ResampleStream(self.rate, SAMPLE_RATE, self.channels, dtype="float32")
        pending = np.zeros((0, self.channels), dtype=np.float32)
        dropped_seen = 0
        while not self._stop.is_set():
            try:
                data = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if self.dropped_samples > dropped_seen:  # keep the clock: silence for lost audio
                lost = self.dropped_samples - dropped_seen
                dropped_seen = self.dropped_samples
                data = np.concatenate([np.zeros((lost, self.channels), np.float32), data])
            if resampler is not None:
                data = resampler.resample_chunk(data)
            pending = np.concatenate([pending, data]) if len(pending) else data
            while len(pending) >= self.block:
                out, pending = pending[: self.block], pending[self.block :]
                yield np.ascontiguousarray(out.T)

    def close(self) -> None:
        self._stop.set()
        if self._stream is not None:
            try:
                self._stream.stop()
                self._stream.close()
            except Exception:  # closing a stream whose device vanished
                logger.debug("closing the input stream failed", exc_info=True)
            self._stream = None
