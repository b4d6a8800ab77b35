"""A private PulseAudio server for tests: real capture devices from null sinks."""

from __future__ import annotations

from pathlib import Path


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

    def remove_sink(self) -> None:
        if self.module is not None:
            self.pactl("unload-module", self.module, check=False)
            self.module = None

    def play(self, wav: Path) -> None:
        import subprocess

        subprocess.run(["paplay", f"--device={self.sink}", str(wav)], env=self.env, check=True, timeout=60)

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except Exception:
            self.proc.kill()
        self.log.close()
