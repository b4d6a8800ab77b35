"""Fixtures shared by every test: a real browser, a real audio server, replayed demo sessions.

Plain helpers live in the ``support`` package (tests/support/).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from support.audio import SAMPLE_AUDIO, needs
from support.pulse import PulseServer

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
                [sys.executable, "-m", "session_monitor", "replay", str(flac), "--session-dir", str(out),
                 "--no-view"], capture_output=True, text=True, timeout=900,
            )
            assert result.returncode == 0, result.stderr
            _REPLAYS[name] = out
        return _REPLAYS[name]

    return get


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
