"""Running ``session-monitor live`` as a user does, for tests that need a real device."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

#: A consent text: it grants monitoring only (no words kept, no audio), whatever it says.
CONSENT = "A. Patient and B. Therapist consented to monitoring and transcript on 2026-11-26"


def consent_file(folder: Path, *, transcript: bool = True, audio: bool = False) -> str:
    """A consent file in ``folder`` granting monitoring, and ``transcript``/``audio`` as given."""
    path = folder / f"consent-{int(transcript)}{int(audio)}.toml"
    path.write_text('who = ["patient: A. Patient", "therapist: B. Therapist"]\nwhen = 2026-11-26\n'
                    f"[covers]\nmonitoring = true\ntranscript = {str(transcript).lower()}\n"
                    f"audio = {str(audio).lower()}\n")
    return str(path)


class LiveRun:
    """``session-monitor live ARGS`` in the background; :meth:`wait_ready` blocks until it captures."""

    def __init__(self, *args: str, env: dict) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "session_monitor", "live", *args],
            stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
        )
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)
            if "ready: capturing" in line:
                self._ready.set()

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    def wait_ready(self, timeout: float = 120) -> None:
        if not self._ready.wait(timeout):
            self.proc.kill()
            raise AssertionError(f"live did not become ready: {self.stderr}")

    def wait(self, timeout: float = 120) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(5)
        return code
