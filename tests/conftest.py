"""Shared test helpers: real recordings from ../shared/data, speech from espeak-ng."""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
SAMPLE_AUDIO = ROOT / "sample_audio"
SR = 16_000


def shared_file(name: str) -> Path:
    """A file of ../shared/data, or skip the test cleanly where that folder is absent."""
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"{path} is absent (../shared/data is not beside this checkout)")
    return path


def needs(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.skip(f"{program} is not installed (.ci/run installs it)")
    return path


@functools.lru_cache(maxsize=None)
def _espeak_cached(text: str, voice: str, rate_wpm: int) -> np.ndarray:
    import librosa
    import soundfile as sf

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "u.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate_wpm), "-w", str(wav), text], check=True)
        y, sr = sf.read(wav, dtype="float32")
    y = librosa.resample(y, orig_sr=sr, target_sr=SR).astype(np.float32)
    y = 0.25 * y / np.max(np.abs(y))
    # trim to where 10 ms RMS reaches the energy floor (-50 dBFS): espeak's quiet decay
    # tails are not speech a listener would time
    hop = SR // 100
    n = len(y) // hop
    db = 10 * np.log10(np.mean(y[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(db >= -50.0)
    y = y[loud[0] * hop : (loud[-1] + 1) * hop]
    return y.astype(np.float32)


def espeak(text: str, *, voice: str = "en-us", rate_wpm: int = 160) -> np.ndarray:
    """Speech at 16 kHz, peak 0.25 (-12 dBFS), trimmed to its 10 ms frames above -50 dBFS."""
    needs("espeak-ng")
    return _espeak_cached(text, voice, rate_wpm).copy()


def noise(n: int, *, db: float = -70.0, seed: int = 0) -> np.ndarray:
    """White noise at ``db`` dBFS RMS: a quiet room, so nothing is digital silence."""
    rng = np.random.default_rng(seed)
    return (10 ** (db / 20) * rng.standard_normal(n)).astype(np.float32)


def frames(signal: np.ndarray, block: int = 1536):
    """Yield (start_sample, block) over a 1-D signal."""
    for i in range(0, len(signal), block):
        yield i, signal[i : i + block]


# -- a real browser: Debian's Chromium driven by Playwright (no browser download) -------

CHROMIUM = Path("/usr/bin/chromium")
#: without the background-networking flags Chromium keeps trying to reach the network
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium, or skip: CI installs it with `apt-get install -y chromium`."""
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is absent: apt-get install -y chromium")
    return str(CHROMIUM)


@pytest.fixture(scope="module")
def browser(chromium_path):
    """A headless Chromium for one test module (module scope: Playwright's sync API keeps
    its own event loop, which must not outlive the module into asyncio tests)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=chromium_path, args=CHROMIUM_ARGS, timeout=30_000
        )
        try:
            yield chromium
        finally:
            chromium.close()


_REPLAYS: dict[str, Path] = {}


@pytest.fixture(scope="session")
def replayed(tmp_path_factory):
    """``replayed(name)``: the session folder of one ``--speed max`` replay of
    ``sample_audio/NAME.flac`` with default settings, made once per test run and shared
    (a replay costs about a minute here)."""
    import subprocess
    import sys

    def get(name: str) -> Path:
        if name not in _REPLAYS:
            out = tmp_path_factory.mktemp("replay") / name
            flac = SAMPLE_AUDIO / f"{name}.flac"
            result = subprocess.run(
                [sys.executable, "-m", "session_monitor.cli", "replay", str(flac), "--session-dir", str(out),
                 "--no-view"], capture_output=True, text=True, timeout=900,
            )
            assert result.returncode == 0, result.stderr
            _REPLAYS[name] = out
        return _REPLAYS[name]

    return get


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


@pytest.fixture
def pulse(tmp_path_factory):
    """A private PulseAudio server with one null sink ``sm_test``; see :class:`PulseServer`."""
    needs("pulseaudio")
    needs("pactl")
    needs("paplay")
    server = PulseServer(tmp_path_factory.mktemp("pulse"))
    try:
        server.wait_ready()
        server.add_sink()
        yield server
    finally:
        server.close()
