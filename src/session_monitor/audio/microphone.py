"""Microphone source: a sounddevice InputStream feeding a bounded queue.

The audio callback runs on PortAudio's thread and must never block: it only copies
the block into the queue (``put_nowait``) and counts overflows — PortAudio's own
input-overflow flag, and blocks dropped because the queue was full. Everything else
(resampling to 16 kHz, cutting pipeline blocks) happens on the reading side. Lost
blocks are replaced by silence of the same length, so the session clock (counted in
samples) stays aligned with the room.

A device that stops delivering (unplugged, its server gone) is noticed after
``LOST_AFTER_S`` without data: ``audio_ok`` turns False, the stream is closed and
reopened with exponential backoff (0.5 s doubling to 8 s), and meanwhile silence
paced by the wall clock keeps the session clock running, so the signal, the health
events and the dashboard go on. When the device answers again, capture resumes; when
it has not answered for ``give_up_s``, it is lost for good: :meth:`blocks` raises
:class:`~session_monitor.errors.DeviceError` (the session ends ``device_lost``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from session_monitor.audio.frames import SAMPLE_RATE
from session_monitor.audio.pulse_sources import PREFIX, find_pulse_device, source_env
from session_monitor.audio.source import OneStream
from session_monitor.errors import DeviceError, reason

__all__ = ["MicrophoneSource", "list_devices", "find_device", "lost_for_good", "LOST_AFTER_S"]

logger = logging.getLogger(__name__)

#: Seconds without audio after which the device counts as lost.
LOST_AFTER_S = 1.0
#: A freshly opened stream may take a while to deliver its first block (ALSA's pulse plugin: ~2 s).
_FIRST_DATA_S = 5.0
_BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0)


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


def lost_for_good(name: str, after_s: float) -> str:
    """The one line a session ends with when a device did not come back."""
    return (f"capture device {name!r} did not come back for {after_s:.0f} s; the session ended (its events and "
            "report are kept): check the device, then start a new session (audio.give_up_after_s)")


def _available(devices: list[dict[str, Any]]) -> str:
    if not devices:
        return "available: none (connect a microphone or start PulseAudio; `session-monitor devices` lists them)"
    from session_monitor.audio.pulse_sources import list_sources

    names = [f"{d['index']}: {d['name']}" for d in devices]
    if any(d["name"] == "pulse" for d in devices):
        names += [s.device for s in list_sources()]
    return "available: " + "; ".join(names)


def find_device(spec: str | int | None) -> dict[str, Any]:
    """A capture device by index, exact name, or unique part of its name (None: default).

    ``pulse:NAME`` is a PulseAudio/PipeWire source (see :mod:`session_monitor.audio.pulse_sources`).
    """
    import sounddevice as sd

    devices = list_devices()
    if isinstance(spec, str) and spec.startswith(PREFIX):
        return find_pulse_device(spec, devices)
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


class MicrophoneSource(OneStream):
    """Live blocks ``(channels, n)`` float32 at 16 kHz from a capture device.

    Parameters
    ----------
    device : index or name (None: the system default)
    channels : channels to capture (1 or the number of roles)
    capture_rate : Hz, 0 for the device's default rate
    block_ms : pipeline block length at 16 kHz
    capture_block_ms : PortAudio callback block length
    queue_s : queue capacity in seconds; when full new blocks are dropped and counted
    give_up_s : seconds a lost device is retried before it counts as lost for good (0: for ever)
    """

    live = True

    def __init__(self, device: str | int | None, *, channels: int, capture_rate: int = 0, block_ms: int = 96,
                 capture_block_ms: int = 32, queue_s: float = 10.0, give_up_s: float = 0.0) -> None:
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
        self.clipped = 0  # samples at full scale (|x| >= 0.999) as captured
        self.samples_read = 0
        self.audio_ok = True
        self.message = ""
        self.lost_count = 0
        self._stop = threading.Event()
        self._stream = None
        self._last_data = 0.0
        self._got_data = False
        self._last_emit = 0.0
        self._attempt = 0
        self._next_retry = 0.0
        self.give_up_s = give_up_s
        self._lost_since: float | None = None  # the first loss since audio last came (the give-up clock)

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
            with source_env(self.device.get("pulse_source")):
                sd.check_input_settings(device=self.device["index"], channels=self.channels, samplerate=self.rate,
                                        dtype="float32")
                stream = sd.InputStream(
                    device=self.device["index"], channels=self.channels, samplerate=self.rate, dtype="float32",
                    blocksize=self.capture_block, callback=self._callback,
                )
                stream.start()
        except Exception as exc:
            raise DeviceError(
                f"cannot capture from {self.device['name']!r} at {self.rate} Hz ({reason(exc, 120)}); "
                f"{_available(list_devices())}"
            ) from None
        self._stream = stream
        self._last_data = time.monotonic()
        self._got_data = False

    def stop(self) -> None:
        """Ask :meth:`blocks` to end (thread-safe)."""
        self._stop.set()

    def _lose(self, now: float) -> None:
        self.audio_ok = False
        self.lost_count += 1
        self.message = f"audio lost: {self.device['name']!r} stopped delivering; retrying"
        logger.warning("%s", self.message)
        self._close_stream()
        self._attempt = 0
        self._next_retry = now + _BACKOFF_S[0]
        if self._lost_since is None:  # a device that reopens but delivers nothing does not restart it
            self._lost_since = now

    def _retry(self, now: float) -> None:
        try:
            self.open()
        except DeviceError as exc:
            self._attempt += 1
            self._next_retry = now + _BACKOFF_S[min(self._attempt, len(_BACKOFF_S) - 1)]
            logger.info("reopening the capture device failed (%s); next try in %.1f s", exc,
                        self._next_retry - now)
            return
        logger.info("the capture device reopened; waiting for its audio")  # restored when audio comes

    def _silence_since(self, now: float) -> np.ndarray | None:
        """Silence (capture rate) covering the wall time since the last block, while lost."""
        n = int((now - self._last_emit) * self.rate)
        if n < self.capture_block:
            return None
        self._last_emit += n / self.rate
        return np.zeros((n, self.channels), np.float32)

    def _capture_blocks(self):  # type: ignore[no-untyped-def]
        """Capture-rate arrays: device data, lost-block silence, silence while the device is gone."""
        dropped_seen = 0
        self._last_emit = time.monotonic()
        while not self._stop.is_set():
            now = time.monotonic()
            if self._stream is None:
                if now >= self._next_retry:
                    self._retry(now)
                if (self._stream is None and self.give_up_s and self._lost_since is not None
                        and now - self._lost_since >= self.give_up_s):
                    raise DeviceError(lost_for_good(self.device["name"], self.give_up_s))
                silence = self._silence_since(now)
                if silence is not None:
                    yield silence
                if self._stream is None:
                    time.sleep(0.05)
                continue
            try:
                data = self._queue.get(timeout=0.1)
            except queue.Empty:
                inactive = not self._stream.active
                patience = LOST_AFTER_S if self._got_data else _FIRST_DATA_S
                if inactive or now - self._last_data > patience:
                    self._lose(now)
                continue
            self._last_data = now
            self._last_emit = now
            self._got_data = True
            self._lost_since = None
            if not self.audio_ok:
                self.audio_ok = True
                self.message = f"audio restored after {self.lost_count} loss(es)"
                logger.warning("%s", self.message)
            self.clipped += int(np.count_nonzero(np.abs(data) >= 0.999))
            self.samples_read += data.size
            if self.dropped_samples > dropped_seen:  # keep the clock: silence for lost audio
                lost = self.dropped_samples - dropped_seen
                dropped_seen = self.dropped_samples
                data = np.concatenate([np.zeros((lost, self.channels), np.float32), data])
            yield data

    def blocks(self) -> Iterator[np.ndarray]:
        import soxr

        if self._stream is None and self.audio_ok:
            self.open()
        resampler = None
        if self.rate != SAMPLE_RATE:
            resampler = soxr.ResampleStream(self.rate, SAMPLE_RATE, self.channels, dtype="float32")
        pending = np.zeros((0, self.channels), dtype=np.float32)
        for data in self._capture_blocks():
            if resampler is not None:
                data = resampler.resample_chunk(data)
            pending = np.concatenate([pending, data]) if len(pending) else data
            while len(pending) >= self.block:
                out, pending = pending[: self.block], pending[self.block :]
                yield np.ascontiguousarray(out.T)

    def _close_stream(self) -> None:
        if self._stream is not None:
            try:
                self._stream.abort()
                self._stream.close()
            except Exception:  # closing a stream whose device vanished
                logger.debug("closing the input stream failed", exc_info=True)
            self._stream = None
        while True:  # what is queued belongs to the old stream
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break

    def close(self) -> None:
        self._stop.set()
        self._close_stream()
