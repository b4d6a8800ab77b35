"""The session folder's files: ``session.json`` and the append-only ``events.jsonl``.

The folder is claimed first (:mod:`session_monitor.session.folder`); its files are
created with ``O_EXCL`` and ``O_NOFOLLOW``, so nothing of another run or behind a
symlink is ever appended to or overwritten. Session data is health information: the folder is created 0700 and its files 0600,
whatever the umask. ``events.jsonl`` is opened for append and flushed after every
line, so a crash loses at most the line being written. ``session.json`` is replaced
atomically (write a temporary file, then rename) and says how the session ended:
``complete`` (every block read was processed), ``aborted`` (a second signal cut the
ending short) and ``end_reason`` (see :mod:`session_monitor.session.ending`).
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import platform
from pathlib import Path
from typing import Any

from session_monitor.errors import SessionDirError
from session_monitor.events import Event, event_to_json
from session_monitor.quotes import without_words
from session_monitor.schema import show
from session_monitor.session.folder import SessionClaim, claim_session_dir, new_session_dir, open_private

__all__ = ["SessionStore", "new_session_dir", "prepare_session_dir"]


def prepare_session_dir(path: str | Path, *, force: bool = False) -> SessionClaim:
    """Claim ``path`` for this run (see :func:`~session_monitor.session.folder.claim_session_dir`)."""
    return claim_session_dir(path, force=force)


class SessionStore:
    """Writes one session folder. Subscribe :meth:`write` to the event bus.

    Parameters
    ----------
    folder : a folder this run claimed (:func:`prepare_session_dir`), or its claim
    store_transcript : False keeps no words: transcripts without text, explanations without
        their quotations (:func:`~session_monitor.quotes.without_words`)
    """

    def __init__(self, folder: Path | SessionClaim, *, store_transcript: bool = True) -> None:
        self.folder = Path(folder.folder if isinstance(folder, SessionClaim) else folder)
        self.store_transcript = store_transcript
        self.events_path = self.folder / "events.jsonl"
        self.meta_path = self.folder / "session.json"
        self.meta: dict[str, Any] = {}
        self.lines = 0
        try:
            self._fd = open_private(self.events_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND)
        except FileExistsError:
            raise SessionDirError(f"{show(self.events_path, limit=120)}: already exists; a session folder "
                                  "holds one run (claim a new folder)") from None
        except OSError as exc:
            raise SessionDirError(f"{show(self.events_path, limit=120)}: cannot be written ({exc.strerror})") from None
        self._closed = False

    def start(self, meta: dict[str, Any]) -> None:
        self.meta = {
            "id": self.folder.name,
            "started_at": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "ended_at": None,
            "complete": False,
            "aborted": False,
            "host": {"python": platform.python_version(), "platform": platform.platform()},
            **meta,
        }
        self._write_meta()

    def write(self, event: Event) -> None:
        """Append one event as a line; flushed to the OS before returning."""
        if self._closed:
            return
        if not self.store_transcript:
            event = without_words(event)
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

    def checkpoint(self, *, complete: bool, extra: dict[str, Any] | None = None) -> None:
        """Record how the session ended while the log stays open (for presses on the page afterwards)."""
        if not self._closed:
            os.fsync(self._fd)
        self._record_end(complete, extra)

    def finish(self, *, complete: bool, extra: dict[str, Any] | None = None) -> None:
        """Close the log and record how the session ended (``complete``, ``aborted``, ``end_reason``)."""
        if not self._closed:
            self._closed = True
            try:
                os.fsync(self._fd)
            finally:
                os.close(self._fd)
        self._record_end(complete, extra)

    @property
    def open(self) -> bool:
        """The log still takes events."""
        return not self._closed

    def discard(self) -> None:
        """Close and remove this run's files: a session that failed before its first event leaves nothing."""
        if not self._closed:
            self._closed = True
            os.close(self._fd)
        for path in (self.events_path, self.meta_path):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def _record_end(self, complete: bool, extra: dict[str, Any] | None) -> None:
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
            fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self.meta, f, indent=2, default=str)
                f.write("\n")
            os.replace(tmp, self.meta_path)
        except OSError as exc:
            raise SessionDirError(f"{self.meta_path}: cannot be written ({exc.strerror})") from None
