"""Two capture devices on a real PulseAudio server: two null sinks, their monitors captured at once.

A stereo recording is played into a combine sink that feeds its left channel to one
null sink (the therapist's microphone) and its right to the other (the call audio)
at the same moment. Clicks at known moments in both channels must come out of
:class:`TwoDeviceSource` on the same session sample, each in its own channel; a
device whose clock runs 500 ppm fast (opened at 16,008 Hz, taken for 16,000 Hz) must
be pulled onto the other's clock; a device that vanishes (its module unloaded) must
turn its channel to silence with a message naming it while the other goes on.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import soundfile as sf

from session_monitor.audio.pulse_sources import list_sources
from session_monitor.audio.two_devices import TwoDeviceSource
from session_monitor.errors import DeviceError
from support.pulse import read_until_given_up

pytestmark = [pytest.mark.audio_device]

SR = 16_000
#: the issue's bound on gaps between the two speakers, once the streams have settled (30 s).
#: Measured on this shared 2-core machine: 0-15 ms after the first 30 s; in the first 30 s a fresh
#: PulseAudio stream's delivery latency moves by up to a few blocks, and the alignment with it:
#: up to ~40 ms (START_TOLERANCE_S, the end-to-end test's 50 ms gap bound)
TOLERANCE_S = 0.030
START_TOLERANCE_S = 0.050


def clicks_wav(path, *, at_s: list[float], total_s: float, tones_hz=(440.0, 1000.0)) -> None:
    """Stereo: a quiet tone per channel (tells the channels apart) and 4 ms clicks at ``at_s`` in both."""
    t = np.arange(int(total_s * SR)) / SR
    y = np.stack([0.05 * np.sin(2 * np.pi * f * t) for f in tones_hz], axis=1).astype(np.float32)
    for a in at_s:
        i = int(a * SR)
        y[i : i + SR // 250] = 0.9
    sf.write(path, y, SR)


class Capture:
    """A TwoDeviceSource read on a thread, as the pipeline reads it."""

    def __init__(self, source: TwoDeviceSource) -> None:
        self.source = source
        self.blocks: list[np.ndarray] = []
        self.states: list[tuple[int, list[bool], str]] = []
        source.open()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        n = 0
        for block in self.source.blocks():
            self.blocks.append(block)
            n += block.shape[1]
            self.states.append((n, list(self.source.channel_ok), self.source.message))

    def wait_samples(self, n: int, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while sum(b.shape[1] for b in self.blocks) < n and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self) -> np.ndarray:
        self.source.stop()
        self.thread.join(10)
        assert not self.thread.is_alive()
        self.source.close()
        return np.concatenate(self.blocks, axis=1)


def onsets(y: np.ndarray) -> np.ndarray:
    """Samples where a click starts (crossing 0.5 after at least 0.5 s below it)."""
    above = np.flatnonzero(np.abs(y) > 0.5)
    if not len(above):
        return above
    return above[np.concatenate([[True], np.diff(above) > SR // 2])]


def dominant_hz(y: np.ndarray) -> float:
    return float(np.fft.rfftfreq(len(y), 1 / SR)[np.argmax(np.abs(np.fft.rfft(y)))])


@pytest.fixture
def pair(pulse):
    mic, call = pulse.add_call_pair()
    return pulse, [f"pulse:{mic}", f"pulse:{call}"]


def test_devices_lists_the_monitor_sources(pair):
    """``session-monitor devices`` names the call-audio sources as --device takes them."""
    import subprocess
    import sys

    pulse, _ = pair
    done = subprocess.run([sys.executable, "-m", "session_monitor", "devices"], capture_output=True, text=True,
                          env=pulse.env, timeout=60)
    assert done.returncode == 0, done.stderr
    calls = done.stdout.split("call audio")[1]
    assert "pulse:sm_mic.monitor" in calls and "pulse:sm_call.monitor" in calls
    sources = {s.name: s for s in _sources(pulse)}
    assert sources["sm_call.monitor"].monitor and sources["sm_call.monitor"].channels == 1


def _sources(pulse):
    import os

    old = os.environ.get("PULSE_SERVER")
    os.environ["PULSE_SERVER"] = pulse.env["PULSE_SERVER"]
    try:
        return list_sources()
    finally:
        if old is None:
            os.environ.pop("PULSE_SERVER")
        else:
            os.environ["PULSE_SERVER"] = old


def _env(monkeypatch, pulse) -> None:
    for key in ("PULSE_SERVER", "PULSE_SOURCE"):
        monkeypatch.setenv(key, pulse.env[key])


def test_clicks_land_on_the_same_session_sample(pair, tmp_path, monkeypatch):
    pulse, devices = pair
    _env(monkeypatch, pulse)
    at_s = [1.0, 3.0, 5.0, 7.0, 9.0]
    wav = tmp_path / "clicks.wav"
    clicks_wav(wav, at_s=at_s, total_s=10.0)
    capture = Capture(TwoDeviceSource(devices, capture_rate=SR))
    time.sleep(0.5)
    pulse.play(wav, sink="sm_pair")
    time.sleep(0.5)
    y = capture.stop()
    # each channel its own device (the drift correction may bend a pitch by up to max_drift_ppm, 0.5 %)
    assert dominant_hz(y[0]) == pytest.approx(440, rel=0.01) and dominant_hz(y[1]) == pytest.approx(1000, rel=0.01)
    a, b = onsets(y[0]), onsets(y[1])
    assert len(a) == len(b) == len(at_s), (a, b)
    assert np.max(np.abs(a - b)) / SR <= START_TOLERANCE_S, (a - b) / SR
    assert np.diff(a) / SR == pytest.approx(np.diff(at_s), abs=0.002)  # the session clock is the device's own


@pytest.mark.slow
def test_a_fast_device_clock_is_pulled_onto_the_other(pair, tmp_path, monkeypatch):
    """Channel 1 opened at 16,008 Hz but taken for 16,000 Hz: 500 ppm fast, 30 ms behind after 60 s
    uncorrected."""
    pulse, devices = pair
    _env(monkeypatch, pulse)
    at_s = [1.0 + 5 * k for k in range(13)]
    wav = tmp_path / "clicks.wav"
    clicks_wav(wav, at_s=at_s, total_s=at_s[-1] + 1.0)
    source = TwoDeviceSource(devices, capture_rate=SR, nominal_rates=[SR, SR])
    source._captures[1].rate = 16_008  # the device delivers 16,008 samples a second of real time
    capture = Capture(source)
    time.sleep(0.5)
    pulse.play(wav, sink="sm_pair")
    time.sleep(0.5)
    y = capture.stop()
    a, b = onsets(y[0]), onsets(y[1])
    assert len(a) == len(b) == len(at_s), (a, b)
    skew_s = (b - a) / SR
    settled = np.array(at_s) > 30.0
    assert np.max(np.abs(skew_s)) <= START_TOLERANCE_S, skew_s
    assert np.max(np.abs(skew_s[settled])) <= TOLERANCE_S, skew_s
    # in 60 s the uncorrected drift (30 ms at the end) is of the order of the jitter, so what shows
    # the drift measured is the rate ratio below; the simulated hour in test_stream_clock.py shows it
    # corrected over a long span
    ratio = source.aligner.channels[1].clock.rate / source.aligner.channels[0].clock.rate
    # measured in 60 s: at least 40 % of the 500 ppm (the fit is weighed against drift_prior_ppm
    # while it is young), never more than it plus 300 ppm
    assert 1.0002 <= ratio <= 1.0008, ratio


def test_a_vanished_device_silences_its_channel_only(pair, tmp_path, monkeypatch):
    pulse, devices = pair
    _env(monkeypatch, pulse)
    wav = tmp_path / "clicks.wav"
    clicks_wav(wav, at_s=[1.0, 5.0, 7.0], total_s=8.0)
    capture = Capture(TwoDeviceSource(devices, capture_rate=SR))
    time.sleep(0.5)
    player = threading.Thread(target=pulse.play, args=(wav,), kwargs={"sink": "sm_pair"})
    player.start()
    time.sleep(3.0)
    pulse.remove_sink("sm_call")
    player.join(30)
    time.sleep(1.5)
    y = capture.stop()
    lost = [s for s in capture.states if not s[1][1]]
    assert lost, capture.states[-1]
    assert all(s[1][0] for s in capture.states)  # the microphone never counted as lost
    assert "channel 1" in lost[0][2] and "sm_call.monitor" in lost[0][2]
    a, b = onsets(y[0]), onsets(y[1])
    assert len(a) == 3 and len(b) == 1  # the microphone heard all three clicks, the call only the first
    assert abs(int(a[0]) - int(b[0])) / SR <= START_TOLERANCE_S


def test_both_devices_gone_for_good_end_the_capture_with_one_line(pair, monkeypatch):
    """One device gone: the other goes on (above). Both gone for ``give_up_s``: lost for good."""
    pulse, devices = pair
    _env(monkeypatch, pulse)
    source = TwoDeviceSource(devices, capture_rate=SR, give_up_s=2.0)
    blocks = source.blocks()
    try:
        next(blocks)
        pulse.remove_sink("sm_mic")
        pulse.remove_sink("sm_call")
        t0 = time.monotonic()
        with pytest.raises(DeviceError, match="did not come back for 2 s") as lost:
            while time.monotonic() - t0 < 20:
                next(blocks)
        assert "sm_mic.monitor" in str(lost.value) and "sm_call.monitor" in str(lost.value)
        assert 2.0 <= time.monotonic() - t0 <= 2.0 + 1.0 + 2.0  # noticed after ~1 s, then 2 s
    finally:
        source.close()


def test_devices_that_reopen_but_never_deliver_are_given_up(pair, monkeypatch):
    """Both sinks suspended: each reopen succeeds but delivers nothing. The give-up clock runs from
    a device's first loss until its audio comes again (each loss used to restart it: never given
    up), and a channel is not called restored before its audio comes."""
    pulse, devices = pair
    _env(monkeypatch, pulse)
    source = TwoDeviceSource(devices, capture_rate=SR, give_up_s=2.0)
    blocks = source.blocks()
    try:
        next(blocks)
        with pulse.suspended("sm_mic", "sm_call"):
            elapsed, said = read_until_given_up(blocks, lambda: source.message, match="did not come back for 2 s")
    finally:
        source.close()
    assert elapsed <= 1.0 + 2.0 + 5.0 + 2.0, elapsed  # noticed, 2 s, a reopen's 5 s wait for audio
    assert not [m for m in said if m and "restored" in m], set(said)


def test_the_same_device_twice_is_refused(pair, monkeypatch):
    pulse, devices = pair
    _env(monkeypatch, pulse)
    with pytest.raises(DeviceError, match="twice"):
        TwoDeviceSource([devices[1], devices[1]])


def test_an_unknown_source_names_the_available_ones(pair, monkeypatch):
    pulse, _ = pair
    _env(monkeypatch, pulse)
    with pytest.raises(DeviceError, match="pulse:sm_call.monitor"):
        TwoDeviceSource(["pulse:sm_mic.monitor", "pulse:no_such_call.monitor"])


def test_live_refuses_bad_device_lists_in_one_line(pair, tmp_path):
    """Consent first, then the devices: each refusal one line, exit 2, no session folder."""
    from support.cli import refused, run_cli
    from support.live_run import CONSENT

    pulse, devices = pair
    out = tmp_path / "s"
    base = ["live", "--session-dir", str(out), "--no-view"]
    refused(run_cli(*base, "--device", devices[0], "--device", devices[1], env=pulse.env), "consent")
    refused(run_cli(*base, "--consent", CONSENT, "--device", devices[0], "--device", devices[1], "--device", "0",
                    env=pulse.env), "--device given 3 times")
    refused(run_cli(*base, "--consent", CONSENT, "--device", devices[0], "--device", "pulse:gone.monitor",
                    env=pulse.env), "pulse:sm_call.monitor")
    refused(run_cli(*base, "--consent", CONSENT, "--device", devices[0], "--device", devices[1],
                    "--roles", "therapist", env=pulse.env), "--roles")
    assert not out.exists()
