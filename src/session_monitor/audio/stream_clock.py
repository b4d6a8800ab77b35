"""One session clock for several capture streams, each running on its own device clock.

Two devices never sample at quite the same rate (a 16 kHz microphone may deliver
16,008 samples a second: 500 ppm, 1.8 s an hour) and never start at the same moment.
Each stream's sample count is fitted against the host's monotonic clock at the
moments its blocks arrive (:class:`StreamClock`): the slope is the stream's true
rate, the lower envelope of arrival time against count its capture moment (a block
cannot arrive before it was captured; later arrivals are scheduling jitter). The
ratio of two fitted rates is the rate of one stream measured against the other, the
difference of their envelopes the offset of their starts; the host clock cancels
out. :class:`ClockAligner` maps every stream onto the first stream's samples (the
session clock) and resamples the drift away by cubic interpolation, with the step
steered so that each stream's position follows its fit (see ``slew_time_s``), so
that the gaps between two speakers on two devices stay right over a long session.

A stream that goes down gives zeros from then on and no longer holds the output
back; one that delivers but falls behind by more than ``stall_s`` is reported as
stalled, so the caller can close and reopen it while the other stream goes on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from session_monitor.audio.frames import SAMPLE_RATE
from session_monitor.settings.sections import TwoDeviceSettings

__all__ = ["StreamClock", "ClockAligner"]


class StreamClock:
    """The capture moment of each sample of one stream, from its block arrivals.

    Parameters
    ----------
    nominal_rate : Hz the device claims
    settings : fit memory, envelope window, error threshold, clip

    Notes
    -----
    A fresh stream's delivery latency settles over its first seconds (PulseAudio's
    record buffer shrinks: arrivals jump ~25 ms earlier), which would bias any early
    slope; so the first ``settle_s`` keep the nominal rate. After that the rate is a
    weighted least-squares slope of count against arrival time with exponential
    forgetting (``clock_memory_s``), shrunk towards the nominal rate by
    its standard error against a prior of ``drift_prior_ppm`` (a Gaussian prior on the
    device's error: early, noisy fits count little). The offset is the minimum of
    ``t - n / rate`` over the last ``envelope_s`` of arrivals (or its
    ``envelope_percentile``, once there are a few dozen, where that is above 0: it follows
    a stream's usual latency rather than its best, which differs between two streams).
    """

    def __init__(self, nominal_rate: float, settings: TwoDeviceSettings) -> None:
        self.nominal_rate = float(nominal_rate)
        self.settings = settings
        self._t_first: float | None = None
        self._t_ref: float | None = None
        self._n_ref = 0
        self._fitted = 0
        self._t_prev = 0.0
        self._sums = np.zeros(6)  # W, Sx, Sy, Sxx, Sxy, Syy; x = t - t_ref, y = n - n_ref - nominal * x
        self._t = np.zeros(256)  # arrival times and counts of the envelope window, from index _head
        self._n = np.zeros(256)
        self._head = 0
        self._size = 0
        self._rate = self.nominal_rate
        self._offset: float | None = None
        self.observations = 0

    @property
    def ready(self) -> bool:
        """True once a block has arrived (the clock can place samples)."""
        return self.observations > 0

    @property
    def rate(self) -> float:
        """Samples per second of host time (the fitted rate, or the nominal one until it is known)."""
        return self._rate

    def observe(self, t: float, count: int) -> None:
        """``count`` samples (native rate) had arrived by host time ``t`` (seconds, monotonic)."""
        self.observations += 1
        if self._t_first is None:
            self._t_first = t
        self._remember(t, count)
        self._offset = None
        if t - self._t_first < self.settings.settle_s:
            return
        if self._t_ref is None:
            self._t_ref = self._t_prev = t
            self._n_ref = count
        decay = math.exp(-max(0.0, t - self._t_prev) / self.settings.clock_memory_s)
        self._t_prev = t
        x = t - self._t_ref
        y = (count - self._n_ref) - self.nominal_rate * x
        self._sums *= decay
        self._sums += (1.0, x, y, x * x, x * y, y * y)
        self._fitted += 1
        self._rate = self._fit_rate()

    def _remember(self, t: float, count: int) -> None:
        if self._size == len(self._t):
            live = slice(self._head, self._size)
            keep = self._size - self._head
            if keep * 2 > len(self._t):  # grow; otherwise compact in place
                self._t = np.concatenate([self._t, np.zeros(len(self._t))])
                self._n = np.concatenate([self._n, np.zeros(len(self._n))])
            self._t[:keep], self._n[:keep] = self._t[live].copy(), self._n[live].copy()
            self._head, self._size = 0, keep
        self._t[self._size] = t
        self._n[self._size] = count
        self._size += 1
        cutoff = t - self.settings.envelope_s
        while self._t[self._head] < cutoff:
            self._head += 1

    def _fit_rate(self) -> float:
        w, sx, sy, sxx, sxy, syy = self._sums
        if self._fitted < 50 or w < 3:
            return self.nominal_rate
        vxx = sxx - sx * sx / w
        if vxx <= 0:
            return self.nominal_rate
        vxy = sxy - sx * sy / w
        slope = vxy / vxx
        rss = max(0.0, (syy - sy * sy / w) - slope * vxy)
        var = rss / (w - 2) / vxx
        prior = (self.settings.drift_prior_ppm * 1e-6 * self.nominal_rate) ** 2
        slope *= prior / (prior + var)
        clip = self.settings.max_drift_ppm * 1e-6 * self.nominal_rate
        return self.nominal_rate + min(max(slope, -clip), clip)

    @property
    def offset(self) -> float:
        """Host time (s) at which sample 0 was captured: the lower envelope of the arrivals (a low percentile)."""
        if self._offset is None:
            if not self._size:
                raise RuntimeError("no block has arrived yet")
            t, n = self._t[self._head : self._size], self._n[self._head : self._size]
            lateness = t - n / self._rate
            q = self.settings.envelope_percentile
            self._offset = float(np.min(lateness) if q <= 0 or len(lateness) < 20 else np.percentile(lateness, q))
        return self._offset

    def time_of(self, n: float) -> float:
        """Host time (s) at which native sample ``n`` was captured."""
        return self.offset + n / self._rate

    def index_at(self, t: float) -> float:
        """Native sample index (fractional) captured at host time ``t``."""
        return (t - self.offset) * self._rate


class _Channel:
    """One stream's current segment (from an open to a loss): its clock, resampler and buffer."""

    def __init__(self, nominal_rate: float, settings: TwoDeviceSettings, segment: int) -> None:
        import soxr

        self.segment = segment
        self.clock = StreamClock(nominal_rate, settings)
        self.ratio = nominal_rate / SAMPLE_RATE  # native samples per 16 kHz sample
        self.resampler = None
        if nominal_rate != SAMPLE_RATE:  # delay-compensated: output index m is native time m * ratio
            self.resampler = soxr.ResampleStream(nominal_rate, SAMPLE_RATE, 1, dtype="float32")
        self.native = 0  # native samples received
        self.buf = np.zeros(0, np.float32)  # 16 kHz samples from index buf_start
        self.buf_start = 0
        self.pos: float | None = None  # 16 kHz index of the next output sample
        self.live = True

    @property
    def end(self) -> int:
        return self.buf_start + len(self.buf)

    def index_at(self, t: float) -> float:
        """16 kHz index of this segment captured at host time ``t``."""
        return self.clock.index_at(t) / self.ratio


@dataclass(frozen=True, slots=True)
class _FrozenClock:
    offset: float
    rate_16k: float  # 16 kHz session samples per host second


class ClockAligner:
    """Blocks ``(channels, block)`` at 16 kHz on one session clock from separately clocked streams.

    The session clock is the first stream that delivers (normally channel 0): its
    samples are copied unchanged; every other stream is interpolated at the
    positions its clock fit maps the session samples to. When the clock's stream
    goes down, the clock goes on at its last fitted rate against host time.

    Parameters
    ----------
    nominal_rates : Hz each stream's device claims, one per channel
    block : samples per output block (16 kHz)
    settings : the ``[two_devices]`` section (defaults: configs/default.toml)
    """

    def __init__(self, nominal_rates: Sequence[float], *, block: int,
                 settings: TwoDeviceSettings | None = None) -> None:
        if settings is None:
            from session_monitor.settings.loader import load_settings

            settings = load_settings().two_devices
        self.settings = settings
        self.block = block
        self.nominal_rates = [float(r) for r in nominal_rates]
        self._segments = [0] * len(self.nominal_rates)
        self.channels = [_Channel(r, self.settings, 0) for r in self.nominal_rates]
        self._master: tuple[int, int] | _FrozenClock | None = None  # (channel, segment) or frozen
        self.position = 0  # session samples emitted
        self.dropped_samples = [0] * len(self.nominal_rates)

    # -- input --------------------------------------------------------------------------------

    def push(self, channel: int, samples: np.ndarray, t: float | None) -> None:
        """Native-rate ``samples`` (shape ``(n,)``) of ``channel``, all arrived by host time ``t``.

        ``t`` None: samples that stand in for lost ones (silence), not a clock observation.
        """
        ch = self.channels[channel]
        if not ch.live:
            return
        ch.native += len(samples)
        if t is not None:
            ch.clock.observe(t, ch.native)
        data = samples.astype(np.float32, copy=False)
        if ch.resampler is not None:
            data = ch.resampler.resample_chunk(data.reshape(-1, 1))[:, 0]
        ch.buf = np.concatenate([ch.buf, data]) if len(ch.buf) else data.copy()
        excess = len(ch.buf) - int(self.settings.max_buffer_s * SAMPLE_RATE)
        if excess > 0:  # bounded: the oldest held audio goes (read as silence if still wanted)
            ch.buf = ch.buf[excess:]
            ch.buf_start += excess
            self.dropped_samples[channel] += excess

    def down(self, channel: int) -> None:
        """``channel``'s stream stopped: zeros from now on, until :meth:`restart`."""
        self._freeze_if_master(channel)
        self.channels[channel].live = False

    def restart(self, channel: int) -> None:
        """A new stream for ``channel`` begins (its own clock: a new start moment and rate)."""
        self._freeze_if_master(channel)
        self._segments[channel] += 1
        self.channels[channel] = _Channel(self.nominal_rates[channel], self.settings, self._segments[channel])

    def _freeze_if_master(self, channel: int) -> None:
        if isinstance(self._master, tuple) and self._master[0] == channel:
            ch = self.channels[channel]
            if ch.clock.ready:
                self._master = _FrozenClock(ch.clock.time_of(0), ch.clock.rate / ch.ratio)

    # -- the session clock --------------------------------------------------------------------

    def session_time(self, s: float) -> float:
        """Host time (s) of session sample ``s``; needs the clock chosen (after the first block)."""
        m = self._master
        if isinstance(m, _FrozenClock):
            return m.offset + s / m.rate_16k
        assert m is not None
        ch = self.channels[m[0]]
        return ch.clock.time_of(s * ch.ratio)

    def _choose_master(self, now: float) -> bool:
        live = [c for c, ch in enumerate(self.channels) if ch.live]
        if any(not self.channels[c].clock.ready for c in live):
            return False  # wait for every live stream's first block (the caller gives up on a silent one)
        if live:
            self._master = (live[0], self.channels[live[0]].segment)
        else:  # nothing delivers: the host clock paces silence
            self._master = _FrozenClock(now, float(SAMPLE_RATE))
        return True

    # -- output -------------------------------------------------------------------------------

    def pop(self, now: float) -> tuple[list[np.ndarray], list[int]]:
        """Blocks ready by host time ``now``, and the channels found stalled (now treated as down)."""
        out: list[np.ndarray] = []
        stalled: list[int] = []
        if self._master is None and not self._choose_master(now):
            return out, stalled
        while True:
            s0 = self.position
            t_end = self.session_time(s0 + self.block)
            plans: list[tuple[float, float] | None] = []
            ready = True
            for c, ch in enumerate(self.channels):
                if not ch.live or not ch.clock.ready:
                    plans.append(None)
                    continue
                plan = self._plan(c, ch, s0, t_end)
                if math.floor(plan[0] + plan[1] * (self.block - 1)) + 2 >= ch.end:
                    if now - t_end > self.settings.stall_s:
                        stalled.append(c)
                        self.down(c)
                        plans.append(None)
                        continue
                    ready = False
                plans.append(plan)
            if not ready:
                return out, stalled
            if all(p is None for p in plans) and now < t_end:
                return out, stalled  # only silence: paced by the host clock
            block = np.zeros((len(self.channels), self.block), np.float32)
            for c, plan in enumerate(plans):
                if plan is not None:
                    block[c] = self._take(self.channels[c], *plan)
            self.position = s0 + self.block
            out.append(block)

    def _plan(self, c: int, ch: _Channel, s0: int, t_end: float) -> tuple[float, float]:
        """Start position and step (16 kHz samples of the stream per session sample) for one block."""
        if self._master == (c, ch.segment):
            if ch.pos is None:
                ch.pos = float(s0)
            return ch.pos, 1.0  # the clock's own stream: copied sample for sample
        target_start = ch.index_at(self.session_time(s0))
        target_end = ch.index_at(t_end)
        if ch.pos is None or abs(target_start - ch.pos) > self.settings.realign_s * SAMPLE_RATE:
            ch.pos = target_start  # start moments aligned; a large error is jumped, not slewed for seconds
        rho = (target_end - target_start) / self.block
        error = target_end - (ch.pos + rho * self.block)
        gain = min(1.0, self.block / (self.settings.slew_time_s * SAMPLE_RATE))
        step = rho + gain * error / self.block
        cap = self.settings.max_drift_ppm * 1e-6
        return ch.pos, min(max(step, rho - cap), rho + cap)

    def _take(self, ch: _Channel, pos: float, step: float) -> np.ndarray:
        n = self.block
        ch.pos = pos + step * n
        if step == 1.0 and pos == math.floor(pos):
            out = _gather(ch, np.arange(int(pos), int(pos) + n))
        else:
            p = pos + step * np.arange(n)
            i = np.floor(p).astype(np.int64)
            f = (p - i).astype(np.float32)
            first = int(i[0]) - 1
            near = _gather(ch, np.arange(first, int(i[-1]) + 3))
            j = i - first
            y0, y1, y2, y3 = near[j - 1], near[j], near[j + 1], near[j + 2]
            # Catmull-Rom cubic: flat to ~6 kHz at 16 kHz, unlike linear interpolation
            out = y1 + 0.5 * f * (y2 - y0 + f * (2 * y0 - 5 * y1 + 4 * y2 - y3 + f * (3 * (y1 - y2) + y3 - y0)))
        keep = max(0, math.floor(ch.pos) - 2 - ch.buf_start)
        if keep:
            ch.buf = ch.buf[keep:]
            ch.buf_start += keep
        return out.astype(np.float32, copy=False)


def _gather(ch: _Channel, idx: np.ndarray) -> np.ndarray:
    """Samples at 16 kHz indices ``idx``; zeros before the segment's start or outside what is held."""
    rel = idx - ch.buf_start
    ok = (rel >= 0) & (rel < len(ch.buf)) & (idx >= 0)
    out = np.zeros(len(idx), np.float32)
    out[ok] = ch.buf[rel[ok]]
    return out
