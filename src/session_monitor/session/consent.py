"""Consent records: who consented to what, and when. ``live`` refuses to start without one.

``--consent`` takes either a file (TOML or JSON) or a one-line text.

A file names ``who`` (the people who consented), ``when`` (an ISO date or date-time)
and ``covers``, a list drawn from :data:`SCOPES`; ``recorded_by`` and ``note`` are
optional::

    who = ["patient: A. B.", "therapist: C. D."]
    when = "2026-11-26T10:00"
    covers = ["monitoring", "transcript"]

A text (``--consent "A. B. consented to monitoring and transcript on 2026-11-26"``)
is kept verbatim; it covers what it names of :data:`SCOPES` (``monitoring`` always:
giving consent to be monitored is what the text is for).

The record goes into ``session.json``. Audio is stored only when the settings ask
for it (``session.store_audio``) and the consent covers ``audio``.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import tomllib
from pathlib import Path
from typing import Any

from session_monitor.errors import InputError

__all__ = ["SCOPES", "load_consent", "covers"]

#: What a consent can cover.
SCOPES = ("monitoring", "transcript", "audio")

_HOW = ("use --consent FILE (TOML with who, when, covers) or "
        "--consent \"NAME consented to monitoring on YYYY-MM-DD\"")


def load_consent(arg: str | None) -> dict[str, Any]:
    """The consent record for ``--consent ARG``; raises InputError when absent or invalid."""
    if arg is None or not arg.strip():
        raise InputError(f"live sessions need a consent record; {_HOW}")
    path = Path(arg)
    if path.suffix.lower() in (".toml", ".json") or path.is_file():
        return _from_file(path)
    return _from_text(arg)


def covers(consent: dict[str, Any] | None, scope: str) -> bool:
    return bool(consent) and scope in consent.get("covers", ())


def _from_text(text: str) -> dict[str, Any]:
    text = " ".join(text.split())
    if len(text) < 10:
        raise InputError(f"--consent {text!r} is too short to say who consented to what; {_HOW}")
    lowered = text.lower()
    scopes = ["monitoring"] + [s for s in SCOPES[1:] if re.search(rf"\b{s}\b", lowered)]
    return {"kind": "text", "text": text, "covers": scopes,
            "recorded_at": _dt.datetime.now().astimezone().isoformat(timespec="seconds")}


def _from_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputError(f"--consent {path}: no such file; {_HOW}")
    try:
        raw = path.read_text(encoding="utf-8")
        data = json.loads(raw) if path.suffix.lower() == ".json" else tomllib.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"--consent {path}: not valid {path.suffix.lstrip('.').upper() or 'TOML'} "
                         f"({str(exc).splitlines()[0][:100]})") from None
    if not isinstance(data, dict):
        raise InputError(f"--consent {path}: must be a table with who, when and covers")
    who = data.get("who")
    if isinstance(who, str):
        who = [who]
    if not who or not all(isinstance(w, str) and w.strip() for w in who):
        raise InputError(f"--consent {path}: 'who' must name the people who consented")
    when = data.get("when")
    if isinstance(when, (_dt.date, _dt.datetime)):
        when = when.isoformat()
    try:
        _dt.datetime.fromisoformat(str(when))
    except ValueError:
        raise InputError(f"--consent {path}: 'when' = {when!r} is not an ISO date such as 2026-11-26") from None
    scopes = data.get("covers")
    if not isinstance(scopes, list) or not scopes or any(s not in SCOPES for s in scopes):
        raise InputError(f"--consent {path}: 'covers' must list some of {', '.join(SCOPES)}")
    if "monitoring" not in scopes:
        raise InputError(f"--consent {path}: 'covers' must include monitoring for a live session")
    unknown = set(data) - {"who", "when", "covers", "recorded_by", "note"}
    if unknown:
        raise InputError(f"--consent {path}: unknown key {sorted(unknown)[0]!r}; use who, when, covers, "
                         "recorded_by, note")
    return {"kind": "file", "file": str(path), "who": who, "when": str(when), "covers": scopes,
            "recorded_by": data.get("recorded_by"), "note": data.get("note")}
