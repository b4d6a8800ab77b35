"""PulseAudio/PipeWire sources, the call audio among them, as capture devices.

A video call's audio (the patient's voice) plays to an output device; its *monitor*
source records what that device plays. PortAudio (as Debian ships it) reaches
PulseAudio and PipeWire only through ALSA's ``pulse`` device, which records from the
server's default source, or from the source named in ``PULSE_SOURCE`` when the
stream is opened (libpulse reads it for every new connection). So a source is
named ``pulse:NAME`` on the command line, listed by ``session-monitor devices``,
and opened with ``PULSE_SOURCE=NAME`` set for that one open (:func:`source_env`),
under a lock, so two streams on two sources can be opened from one process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from session_monitor.errors import DeviceError

__all__ = ["PulseSource", "PREFIX", "list_sources", "find_pulse_device", "source_env"]

logger = logging.getLogger(__name__)

#: ``--device pulse:NAME`` names a PulseAudio/PipeWire source
PREFIX = "pulse:"
_ENV_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class PulseSource:
    """One source of the sound server: ``monitor`` is True for an output's monitor (call audio)."""

    name: str
    description: str
    channels: int
    rate_hz: int
    monitor: bool

    @property
    def device(self) -> str:
        """What to give ``--device``."""
        return PREFIX + self.name


def _pactl(*args: str) -> str | None:
    if shutil.which("pactl") is None:
        return None
    try:
        done = subprocess.run(["pactl", *args], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout if done.returncode == 0 else None


def _spec(text: str) -> tuple[int, int]:
    """(channels, rate) from a sample specification such as ``s16le 2ch 48000Hz``."""
    channels, rate = 2, 48_000
    for part in text.split():
        if part.endswith("ch") and part[:-2].isdigit():
            channels = int(part[:-2])
        elif part.endswith("Hz") and part[:-2].isdigit():
            rate = int(part[:-2])
    return channels, rate


def list_sources() -> list[PulseSource]:
    """The sound server's sources (empty when no PulseAudio/PipeWire server or no ``pactl``)."""
    out = _pactl("--format=json", "list", "sources")
    sources = []
    if out:
        try:
            for s in json.loads(out):
                channels, rate = _spec(s.get("sample_specification", ""))
                monitor = bool(s.get("monitor_source")) or s["name"].endswith(".monitor")
                sources.append(PulseSource(s["name"], s.get("description", s["name"]), channels, rate, monitor))
            return sources
        except (ValueError, KeyError, TypeError):
            logger.debug("pactl's JSON was not understood; using its short listing", exc_info=True)
    out = _pactl("list", "short", "sources") or ""
    for line in out.splitlines():
        fields = line.split("\t")
        if len(fields) >= 4:
            channels, rate = _spec(fields[3])
            sources.append(PulseSource(fields[1], fields[1], channels, rate, fields[1].endswith(".monitor")))
    return sources


def _listing(sources: list[PulseSource]) -> str:
    if not sources:
        return "no PulseAudio/PipeWire sources found (is the sound server running? is pactl installed?)"
    return "sources: " + "; ".join(s.device for s in sources)


def find_pulse_device(spec: str, portaudio_devices: list[dict[str, Any]]) -> dict[str, Any]:
    """The capture device for ``pulse:NAME`` (exact source name, or a unique part of name or description).

    ``portaudio_devices`` are PortAudio's capture devices; the ALSA ``pulse`` device among them is opened.
    """
    wanted = spec[len(PREFIX):]
    sources = list_sources()
    match = [s for s in sources if s.name == wanted]
    if not match:
        match = [s for s in sources if wanted.lower() in s.name.lower() or wanted.lower() in s.description.lower()]
    if len(match) > 1:
        raise DeviceError(f"--device {spec!r} matches several sources; give the full name ({_listing(match)})")
    if not match or not wanted:
        raise DeviceError(f"PulseAudio/PipeWire source {wanted!r} not found; {_listing(sources)}")
    pulse = [d for d in portaudio_devices if d["name"] == "pulse"]
    if not pulse:
        raise DeviceError(f"{spec!r}: PortAudio has no ALSA 'pulse' device; install libasound2-plugins "
                          "(pipewire-alsa on PipeWire)")
    source = match[0]
    return dict(pulse[0], name=source.device, channels=source.channels, default_rate=float(source.rate_hz),
                hostapi=f"{pulse[0]['hostapi']} via PulseAudio", pulse_source=source.name,
                description=source.description)


@contextlib.contextmanager
def source_env(source: str | None) -> Iterator[None]:
    """``PULSE_SOURCE=source`` while a stream is opened (nothing when ``source`` is None)."""
    if source is None:
        yield
        return
    with _ENV_LOCK:
        before = os.environ.get("PULSE_SOURCE")
        os.environ["PULSE_SOURCE"] = source
        try:
            yield
        finally:
            if before is None:
                os.environ.pop("PULSE_SOURCE", None)
            else:
                os.environ["PULSE_SOURCE"] = before


class SourceWatch:
    """Notices when named sources leave the sound server, polling ``pactl`` every ``every_s`` seconds.

    When a device goes (unplugged, its module unloaded), PulseAudio and PipeWire move its
    streams to another source rather than end them: a capture on the call audio would go
    on recording, say, the room microphone. Polling the server's source list tells a
    vanished source from a quiet one.
    """

    def __init__(self, names: list[str], *, every_s: float = 1.0) -> None:
        self.names = [n for n in names if n]
        self.every_s = every_s
        self._missing: frozenset[str] = frozenset()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.names and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="pulse-source-watch", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            present = {s.name for s in list_sources()}
            if present:  # an empty answer is a failed poll, not every device gone
                self._missing = frozenset(n for n in self.names if n not in present)

    def missing(self, name: str | None) -> bool:
        """True when ``name`` was absent at the last poll."""
        return name in self._missing

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
