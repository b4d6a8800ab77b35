"""A private PulseAudio server for tests: real capture devices from null sinks."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


class PulseServer:
    """A private PulseAudio server (its own socket, no default modules) for one test.

    Without the default script there is no fallback device and no stream rescue, so
    unloading the null sink really takes the capture device away. Programs reach it
    through :attr:`env` (``PULSE_SERVER``, and ``PULSE_SOURCE`` = the sink's monitor,
    used by ALSA's pulse plugin, which sounddevice opens as device ``pulse``).
    """

    def __init__(self, folder: Path) -> None:
        import os
        import subprocess

        self.folder = folder
        self.socket = folder / "native"
        self.sink = "sm_test"
        self.module: str | None = None
        self.modules: dict[str, str] = {}  # sink name -> module index, for sinks beyond the first
        self.env = dict(os.environ, PULSE_SERVER=f"unix:{self.socket}", PULSE_SOURCE=f"{self.sink}.monitor")
        self.env.pop("PULSE_SINK", None)
        self.log = open(folder / "pulseaudio.log", "w")
        self.proc = subprocess.Popen(
            ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit", "--use-pid-file=no",
             "-L", f"module-native-protocol-unix socket={self.socket} auth-anonymous=1"],
            stdout=self.log, stderr=subprocess.STDOUT, env=self.env,
        )

    def pactl(self, *args: str, check: bool = True) -> str:
        import subprocess

        return subprocess.run(["pactl", *args], capture_output=True, text=True, env=self.env, check=check,
                              timeout=10).stdout.strip()

    def wait_ready(self) -> None:
        import subprocess
        import time

        for _ in range(100):
            if subprocess.run(["pactl", "info"], capture_output=True, env=self.env).returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"PulseAudio did not start: {(self.folder / 'pulseaudio.log').read_text()[-500:]}")

    def add_sink(self) -> None:
        self.module = self.pactl("load-module", "module-null-sink", f"sink_name={self.sink}", "rate=48000",
                                 "channels=2")

    def remove_sink(self, name: str | None = None) -> None:
        """Unload the first null sink, or the sink ``name``: its monitor source vanishes with it."""
        if name is not None:
            module = self.modules.pop(name, None)
            if module is not None:
                self.pactl("unload-module", module, check=False)
            return
        if self.module is not None:
            self.pactl("unload-module", self.module, check=False)
            self.module = None

    def add_null_sink(self, name: str, *, channel_map: str) -> str:
        """A second (third...) null sink, mono on ``channel_map`` (e.g. ``front-right``); its monitor is
        the capture source ``NAME.monitor``."""
        self.modules[name] = self.pactl("load-module", "module-null-sink", f"sink_name={name}", "rate=48000",
                                        "channels=1", f"channel_map={channel_map}",
                                        f"sink_properties=device.description={name}")
        return f"{name}.monitor"

    def add_call_pair(self) -> tuple[str, str]:
        """Two separate null sinks, ``sm_mic`` and ``sm_call`` (the therapist's microphone and the call
        audio of a telehealth session), and a stereo sink ``sm_pair`` feeding its left channel to the
        first and its right to the second at the same moment (PulseAudio's combine sink keeps the two in
        step). Returns the two monitor sources, in channel order."""
        mic = self.add_null_sink("sm_mic", channel_map="front-left")
        call = self.add_null_sink("sm_call", channel_map="front-right")
        self.modules["sm_pair"] = self.pactl("load-module", "module-combine-sink", "sink_name=sm_pair",
                                             "slaves=sm_mic,sm_call", "channels=2",
                                             "channel_map=front-left,front-right")
        return mic, call

    def play(self, wav: Path, *, sink: str | None = None) -> None:
        import subprocess

        subprocess.run(["paplay", f"--device={sink or self.sink}", str(wav)], env=self.env, check=True,
                       timeout=600)

    @contextmanager
    def suspended(self, *sinks: str) -> Iterator[None]:
        """``sinks`` suspended (``pactl suspend-sink``) inside the block: their monitors stall, and
        a capture stream reopened on one opens but delivers nothing. Resumed on the way out."""
        try:
            for sink in sinks:
                self.pactl("suspend-sink", sink, "1")
            yield
        finally:
            for sink in sinks:
                self.pactl("suspend-sink", sink, "0", check=False)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except Exception:
            self.proc.kill()
        self.log.close()


def read_until_given_up(blocks: Iterator, seen: Callable[[], object], *, match: str,
                        limit_s: float = 30.0) -> tuple[float, list]:
    """Read ``blocks`` until the source gives up with a DeviceError matching ``match``; return
    the seconds it took and what ``seen()`` said after each block. Fails after ``limit_s``."""
    from session_monitor.errors import DeviceError

    said = []
    t0 = time.monotonic()
    with pytest.raises(DeviceError, match=match):
        while time.monotonic() - t0 < limit_s:
            next(blocks)
            said.append(seen())
    return time.monotonic() - t0, said
