"""The session folder: ``session.json`` and the append-only ``events.jsonl``.

Session data is health information: the folder is created 0700 and its files 0600,
whatever the umask. ``events.jsonl`` is opened for append and flushed after every
line, so a crash loses at most the line being written. ``session.json`` is replaced
atomically (write a temporary file, then rename) and says whether the session
ended cleanly (``complete``).
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import platform
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from session_monitor.errors import SessionDirError
from session_monitor.events import Event, Transcript, event_to_json

__all__ = ["SessionStore", "new_session_dir", "prepare_session_dir"]


def new_session_dir(root: str | Path) -> Path:
    """A fresh folder name under ``root``: ``YYYYmmdd-HHMMSS-xxxx``."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(root) / f"{stamp}-{uuid.uuid4().hex[:4]}"


def prepare_session_dir(path: str | Path, *, force: bool = False) -> Path:
    """Create ``path`` (0700). An existing non-empty folder is refused unless ``force``.

    With ``force`` the old ``events.jsonl``/``session.json`` are replaced; other files
    in the folder are left alone.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise SessionDirError(f"--session-dir {path}: is a file, not a folder; choose another path")
    if path.is_dir() and any(path.iterdir()) and not force:
        raise SessionDirError(f"--session-dir {path}: folder exists and is not empty; choose a new folder or add --force")
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(path, 0o700)
    except OSError as exc:
        raise SessionDirError(f"--session-dir {path}: cannot create folder ({exc.strerror}); choose a writable place") from None
    if not os.access(path, os.W_OK):
        raise SessionDirError(f"--session-dir {path}: folder is not writable; choose a writable place")
    return path


def _open_private(path: Path, flags: int) -> int:
    fd = os.open(path, flags | os.O_CLOEXEC, 0o600)
    os.fchmod(fd, 0o600)
    return fd


class SessionStore:
    """Writes one session folder. Subscribe :meth:`write` to the event bus.

    Parameters
    ----------
    folder : an existing folder from :func:`prepare_session_dir`
    store_transcript : False drops words from transcript events (privacy setting)
    """

    def __init__(self, folder: Path, *, store_transcript: bool = True) -> None:
        self.folder = Path(folder)
        self.store_transcript = store_transcript
        self.events_path = self.folder / "events.jsonl"
        self.meta_path = self.folder / "session.json"
        self.meta: dict[str, Any] = {}
        self.lines = 0
        try:
            self._fd = _open_private(self.events_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND)
        except OSError as exc:
            raise SessionDirError(f"{self.events_path}: cannot be written ({exc.strerror})") from None
        self._closed = False

    def start(self, meta: dict[str, Any]) -> None:
        self.meta = {
            "id": self.folder.name,
            "started_at": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "ended_at": None,
            "complete": False,
            "host": {"python": platform.python_version(), "platform": platform.platform()},
            **meta,
        }
        self._write_meta()

    def write(self, event: Event) -> None:
        """Append one event as a line; flushed to the OS before returning."""
        if self._closed:
            return
        if not self.store_transcript and isinstance(event, Transcript):
            event = replace(event, text="", words=())
        data = (event_to_json(event) + "\n").encode("utf-8")
        try:
            written = os.write(self._fd, data)
            while written < len(data):
                written += os.write(self._fd, data[written:])
        except OSError as exc:
            self._closed = True
            os.close(self._fd)
            reason = "disk full" if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT) else exc.strerror
            raise SessionDirError(
                f"{self.events_path}: cannot write ({reason}); the {self.lines} events written so far are kept"
            ) from None
        self.lines += 1

    def finish(self, *, complete: bool, extra: dict[str, Any] | None = None) -> None:
        """Close the log and record how the session ended."""
        if not self._closed:
            self._closed = True
            os.fsync(self._fd)
            os.close(self._fd)
        self.meta.update(extra or {})
        self.meta["ended_at"] = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
        self.meta["complete"] = complete
        self.meta["events"] = self.lines
        try:
            self._write_meta()
        except SessionDirError:
            pass  # the events are what matters; they are already on disk

    def _write_meta(self) -> None:
        tmp = self.meta_path.with_suffix(".json.tmp")
        try:
            fd = _open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self.meta, f, indent=2, default=str)
                f.write("\n")
            os.replace(tmp, self.meta_path)
        except OSError as exc:
            raise SessionDirError(f"{self.meta_path}: cannot be written ({exc.strerror})") from None
