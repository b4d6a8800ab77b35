"""Two capture devices on one session clock: the therapist's microphone and the call audio.

In a telehealth session the two voices arrive on two devices: the therapist's
microphone, and the patient's voice in what the call plays (on PulseAudio/PipeWire,
the *monitor* of the output device, ``pulse:NAME.monitor``). Each device becomes one
channel, in the order given, so ``--roles`` maps them to speakers as for a stereo
file. Each runs on its own clock and starts at its own moment:
:class:`~session_monitor.audio.stream_clock.ClockAligner` measures each stream's rate
against the other from their sample counts, aligns their starts and resamples the
drift away.

Each stream's callback only copies its block and enqueues it with its arrival time
(one bounded queue for both; when full, blocks are dropped, counted, and replaced by
silence of the same length). A device that stops delivering (unplugged, its module
unloaded, its server gone) is noticed after ``LOST_AFTER_S``: that channel reads as
silence, its :attr:`TwoDeviceSource.channel_ok` turns False with a message naming
it, and it is reopened with backoff (0.5 s doubling to 8 s) while the other channel
goes on. When it answers again, its new stream is aligned afresh. When both have been
gone for ``give_up_s``, :meth:`blocks` raises :class:`~session_monitor.errors.DeviceError`
(lost for good: the session ends ``device_lost``).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from session_monitor.audio.frames import SAMPLE_RATE
from session_monitor.audio.microphone import LOST_AFTER_S, find_device, list_devices, lost_for_good
from session_monitor.audio.pulse_sources import SourceWatch, source_env
from session_monitor.audio.stream_clock import ClockAligner
from session_monitor.errors import DeviceError, reason
from session_monitor.settings.sections import TwoDeviceSettings

__all__ = ["TwoDeviceSource"]

logger = logging.getLogger(__name__)

_FIRST_DATA_S = 5.0  # a fresh stream may take a while to deliver its first block (ALSA's pulse plugin: ~2 s)
_BACKOFF_S = (0.5, 1.0, 2.0, 4.0, 8.0)


class _Capture:
    """One device's input stream, feeding the shared queue with ``(channel, generation, samples, t)``."""

    def __init__(self, channel: int, device: dict[str, Any], rate: int, block: int,
                 out: queue.Queue[tuple[int, int, np.ndarray, float]]) -> None:
        self.channel = channel
        self.device = device
        self.rate = rate
        self.block = block
        self._out = out
        self.generation = 0
        self.stream: Any = None
        self.overflows = 0
        self.dropped_samples = 0
        self.dropped_seen = 0
        self.last_data = 0.0
        self.got_data = False
        self.attempt = 0
        self.next_retry = 0.0
        self.lost_count = 0
        self.lost_since: float | None = None  # the first loss since audio last came (the give-up clock)

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        if status and status.input_overflow:
            self.overflows += 1
        try:
            self._out.put_nowait((self.channel, self.generation, indata[:, 0].copy(), time.monotonic()))
        except queue.Full:
            self.overflows += 1
            self.dropped_samples += frames

    def open(self) -> None:
        import sounddevice as sd

        self.generation += 1
        name = self.device["name"]
        try:
            with source_env(self.device.get("pulse_source")):
                sd.check_input_settings(device=self.device["index"], channels=1, samplerate=self.rate,
                                        dtype="float32")
                stream = sd.InputStream(device=self.device["index"], channels=1, samplerate=self.rate,
                                        dtype="float32", blocksize=self.block, callback=self._callback)
                stream.start()
        except Exception as exc:
            raise DeviceError(
                f"cannot capture from {name!r} at {self.rate} Hz ({reason(exc, 120)}); "
                f"available: {'; '.join(str(d['index']) + ': ' + d['name'] for d in list_devices()) or 'none'}"
            ) from None
        self.stream = stream
        self.last_data = time.monotonic()
        self.got_data = False
        self.dropped_seen = self.dropped_samples

    def close(self) -> None:
        if self.stream is not None:
            try:
                self.stream.abort()
                self.stream.close()
            except Exception:  # closing a stream whose device vanished
                logger.debug("closing the input stream of %r failed", self.device["name"], exc_info=True)
            self.stream = None


class TwoDeviceSource:
    """Live blocks ``(2, n)`` float32 at 16 kHz from two capture devices, one channel each.

    Parameters
    ----------
    devices : two devices (index, name, part of a name, or ``pulse:SOURCE``), in channel order
    capture_rate : Hz to open both at, 0 for each device's default rate
    block_ms : pipeline block length at 16 kHz
    capture_block_ms : PortAudio callback block length
    queue_s : capacity of the shared queue in seconds of both streams; when full new blocks are dropped
    alignment : the ``[two_devices]`` section: how the two clocks are put on one
    nominal_rates : Hz each device's clock is taken to run at (None: the rates opened at). Only a test
        sets one apart from the rate opened at: a device whose clock runs fast or slow by that much.
    give_up_s : seconds both devices may be gone before they count as lost for good (0: for ever)
    """

    live = True

    def __init__(self, devices: Sequence[str | int | None], *, capture_rate: int = 0, block_ms: int = 96,
                 capture_block_ms: int = 32, queue_s: float = 10.0,
                 alignment: TwoDeviceSettings | None = None,
                 nominal_rates: Sequence[float] | None = None, give_up_s: float = 0.0) -> None:
        if len(devices) != 2:
            raise DeviceError(f"two capture devices are needed, {len(devices)} given; give --device twice")
        found = [find_device(d) for d in devices]
        if found[0]["name"] == found[1]["name"] and found[0].get("pulse_source") == found[1].get("pulse_source"):
            raise DeviceError(f"--device names {found[0]['name']!r} twice; give two different devices "
                              "(`session-monitor devices` lists them)")
        self.devices = found
        self.channels = 2
        self.name = "devices:" + " + ".join(d["name"] for d in found)
        self.block = round(block_ms * SAMPLE_RATE / 1000)
        self._queue: queue.Queue[tuple[int, int, np.ndarray, float]] = queue.Queue(
            maxsize=max(4, int(2 * queue_s * 1000 / capture_block_ms)))
        rates = [int(capture_rate or d["default_rate"] or SAMPLE_RATE) for d in found]
        self.native_rate = rates[0]
        self._captures = [_Capture(c, d, r, max(1, round(capture_block_ms * r / 1000)), self._queue)
                          for c, (d, r) in enumerate(zip(found, rates))]
        self.aligner = ClockAligner(nominal_rates or rates, block=self.block, settings=alignment)
        self._channel_ok = [True, True]
        self._clipped = 0
        self._samples = 0
        self.channel_messages = ["", ""]
        self.message = ""
        self._watch_sources = SourceWatch([d.get("pulse_source") for d in found])
        self._stop = threading.Event()
        self._opened = False
        self.give_up_s = give_up_s

    # -- what the pipeline reads -------------------------------------------------------------

    @property
    def audio_ok(self) -> bool:
        """True while both devices deliver."""
        return all(self._channel_ok)

    @property
    def channel_ok(self) -> tuple[bool, ...]:
        """Per channel (device): True while it delivers."""
        return tuple(self._channel_ok)

    @property
    def clipped_fraction(self) -> float:
        """Share (0..1) of the samples yielded so far at full scale."""
        return self._clipped / max(1, self._samples)

    @property
    def overflows(self) -> int:
        """Blocks lost on either device (PortAudio overflows and blocks dropped from the full queue)."""
        return sum(c.overflows for c in self._captures)

    @property
    def lost_count(self) -> int:
        return sum(c.lost_count for c in self._captures)

    # -- capture ------------------------------------------------------------------------------

    def open(self) -> None:
        """Start both streams; raises DeviceError (and opens neither) if either cannot start."""
        try:
            for capture in self._captures:
                capture.open()
        except DeviceError:
            for capture in self._captures:
                capture.close()
            raise
        self._watch_sources.start()
        self._opened = True

    def stop(self) -> None:
        """Ask :meth:`blocks` to end (thread-safe)."""
        self._stop.set()

    def _say(self, channel: int, ok: bool, message: str) -> None:
        self._channel_ok[channel] = ok
        self.channel_messages[channel] = message
        self.message = message
        logger.warning("%s", message)

    def _lose(self, capture: _Capture, now: float, why: str) -> None:
        capture.close()
        capture.lost_count += 1
        capture.attempt = 0
        capture.next_retry = now + _BACKOFF_S[0]
        if capture.lost_since is None:  # a device that reopens but delivers nothing does not restart it
            capture.lost_since = now
        self.aligner.down(capture.channel)
        self._say(capture.channel, False,
                  f"audio lost on channel {capture.channel}: {capture.device['name']!r} {why}; retrying")

    def _retry(self, capture: _Capture, now: float) -> None:
        try:
            if self._watch_sources.missing(capture.device.get("pulse_source")):
                raise DeviceError(f"{capture.device['name']!r} is not on the sound server")
            capture.open()
        except DeviceError as exc:
            capture.attempt += 1
            capture.next_retry = now + _BACKOFF_S[min(capture.attempt, len(_BACKOFF_S) - 1)]
            logger.info("reopening %r failed (%s); next try in %.1f s", capture.device["name"], exc,
                        capture.next_retry - now)
            return
        self.aligner.restart(capture.channel)
        logger.info("%r reopened; waiting for its audio", capture.device["name"])  # restored when audio comes

    def _take(self, item: tuple[int, int, np.ndarray, float]) -> None:
        channel, generation, samples, t = item
        capture = self._captures[channel]
        if generation != capture.generation or capture.stream is None:
            return  # queued by a stream closed since
        if capture.dropped_samples > capture.dropped_seen:  # keep the clock: silence for lost audio
            lost = capture.dropped_samples - capture.dropped_seen
            capture.dropped_seen = capture.dropped_samples
            self.aligner.push(channel, np.zeros(lost, np.float32), None)
        self.aligner.push(channel, samples, t)
        capture.last_data = time.monotonic()
        capture.got_data = True
        capture.lost_since = None
        if not self._channel_ok[channel]:
            self._say(channel, True, f"audio restored on channel {channel} after {capture.lost_count} loss(es)")

    def _watch(self, now: float) -> None:
        for capture in self._captures:
            if capture.stream is None:
                if now >= capture.next_retry:
                    self._retry(capture, now)
                continue
            patience = LOST_AFTER_S if capture.got_data else _FIRST_DATA_S
            if self._watch_sources.missing(capture.device.get("pulse_source")):
                self._lose(capture, now, "left the sound server")  # its stream was moved elsewhere
            elif not capture.stream.active:
                self._lose(capture, now, "stopped")
            elif now - capture.last_data > patience:
                self._lose(capture, now, "stopped delivering")
        gone = [c for c in self._captures if c.stream is None]
        if self.give_up_s and len(gone) == 2 and all(c.lost_since is not None and now - c.lost_since >= self.give_up_s
                                                     for c in gone):
            raise DeviceError(lost_for_good(" and ".join(c.device["name"] for c in gone), self.give_up_s))

    def blocks(self) -> Iterator[np.ndarray]:
        """Aligned blocks ``(2, block)`` until :meth:`stop` or :meth:`close`."""
        if not self._opened:
            self.open()
        while not self._stop.is_set():
            try:
                self._take(self._queue.get(timeout=0.05))
                while True:
                    self._take(self._queue.get_nowait())
            except queue.Empty:
                pass
            now = time.monotonic()
            self._watch(now)
            ready, stalled = self.aligner.pop(now)
            for channel in stalled:
                self._lose(self._captures[channel], now, "fell behind the other device")
            for block in ready:
                self._clipped += int(np.count_nonzero(np.abs(block) >= 0.999))
                self._samples += block.size
                yield block

    def close(self) -> None:
        self._stop.set()
        self._watch_sources.close()
        for capture in self._captures:
            capture.close()
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
