"""Reading a session's ``events.jsonl`` back: what the report, evaluation and tuning start from.

Writing it is the session store's job (:class:`session_monitor.session.store.SessionStore`);
reading needs nothing but this module, so tools over finished sessions do not depend on
the running session's code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from session_monitor.errors import SessionDirError

__all__ = ["read_events"]


def read_events(folder: str | Path) -> list[dict[str, Any]]:
    """Events of a session folder as dicts; a torn last line (crash) is skipped."""
    path = Path(folder) / "events.jsonl"
    if not path.is_file():
        raise SessionDirError(f"{folder}: has no events.jsonl; give a session folder written by session-monitor")
    out = []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    for i, line in enumerate(lines):
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:
                break
            raise SessionDirError(f"{path}: line {i + 1} is not valid JSON; the file was edited or damaged") from None
    return out
