"""Whether a session of a batch is already done: the input's digest and the settings' digest.

A session folder written by a batch records, in its ``session.json``, the ``batch`` key
made by :func:`run_key`: the SHA-256 of the recording's bytes, the settings digest
(:attr:`Settings.digest`, which covers the default config, ``--config`` and the
clinician profile) and the channel roles. A rerun skips a folder whose session is
complete with the same key, and replays any other (an interrupted session is replaced).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from session_monitor.errors import InputError

__all__ = ["file_digest", "is_done", "run_key"]

_CHUNK = 1 << 20


def file_digest(path: str | Path) -> str:
    """SHA-256 (hex) of a file's bytes, read in 1 MiB chunks.

    Raises
    ------
    InputError
        The file cannot be read.
    """
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc.strerror}); check the file and its permissions") from None
    return digest.hexdigest()


def run_key(input_sha256: str, settings_digest: str, roles: tuple[str, ...] | None) -> dict[str, Any]:
    """What makes two runs of one recording the same run (recorded as ``batch`` in session.json)."""
    return {"input_sha256": input_sha256, "settings_digest": settings_digest,
            "roles": list(roles) if roles is not None else None}


def is_done(folder: str | Path, key: dict[str, Any]) -> bool:
    """True when ``folder`` holds a complete session of the same run: session.json says
    ``complete``, its ``batch`` key equals ``key``, and events.jsonl and report.html exist."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / "session.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (isinstance(meta, dict) and meta.get("complete") is True and meta.get("batch") == key
            and (folder / "events.jsonl").is_file() and (folder / "report.html").is_file())
