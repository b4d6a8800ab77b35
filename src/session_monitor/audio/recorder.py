"""Session audio to ``audio.flac`` (0600) — only when settings ask and consent covers it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from session_monitor.audio.frames import SAMPLE_RATE
from session_monitor.errors import SessionDirError

__all__ = ["AudioRecorder"]


class AudioRecorder:
    """Appends pipeline blocks (``(channels, n)`` float32, 16 kHz) to a private FLAC file."""

    def __init__(self, folder: Path, channels: int) -> None:
        import soundfile as sf

        self.path = Path(folder) / "audio.flac"
        try:
            # O_EXCL|O_NOFOLLOW: the folder was claimed empty; a planted link is never followed
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            os.fchmod(fd, 0o600)
            self._file = os.fdopen(fd, "wb")
            self._sf = sf.SoundFile(self._file, "w", samplerate=SAMPLE_RATE, channels=channels, format="FLAC",
                                    subtype="PCM_16")
        except OSError as exc:
            raise SessionDirError(f"{self.path}: cannot be written ({exc.strerror})") from None

    def __call__(self, block: np.ndarray) -> None:
        try:
            self._sf.write(np.clip(block.T, -1.0, 1.0))
        except Exception as exc:
            raise SessionDirError(f"{self.path}: cannot write audio ({exc}); events so far are kept") from None

    def close(self) -> None:
        try:
            self._sf.close()
        finally:
            self._file.close()
