"""Consent records: who consented to what, and when. ``live`` refuses to start without one.

Consent is parsed, never guessed. ``--consent`` takes either

- a **file** (TOML, or JSON when it ends in ``.json``) with this schema
  (:data:`CONSENT_SCHEMA`)::

      who = ["patient: A. B.", "therapist: C. D."]   # the people who consented (or one name)
      when = 2026-11-26T10:00:00                     # ISO date or date-time
      recorded_by = "C. D."                          # optional
      note = "signed form in the practice file"      # optional

      [covers]            # each an explicit yes/no
      monitoring = true   # must be true: it is what a live session does
      transcript = true   # the transcript's words may be kept (else no text, quotations as ‘…’)
      audio = false       # the session audio may be stored (audio.flac)

  (``covers = ["monitoring", "transcript"]``, a list of what is granted, is read the
  same way: a scope not listed is not granted); or
- a **text** (``--consent "A. B. consented to monitoring on 2026-11-26"``), kept
  verbatim, which grants **monitoring only**, whatever it says: a text is not parsed
  for "audio" (``"NO audio recording"`` mentions audio too). Audio storage needs an
  explicit ``audio = true`` in a file.

An argument that looks like a path (no spaces, or ending in ``.toml``/``.json``) but
names no file is an error, not a text: a typo never becomes a consent.

The record goes into ``session.json`` with ``granted``: a yes/no for each of
:data:`SCOPES`. Audio is stored only when the settings ask for it
(``session.store_audio``) and the record grants ``audio``; the words are kept only when
``privacy.store_transcript`` is on and the record grants ``transcript``
(:attr:`~session_monitor.session.runner.SessionRun.keeps_words`).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
from pathlib import Path
from typing import Any

from session_monitor.errors import InputError
from session_monitor.schema import (
    Bool,
    Date,
    Field,
    List,
    Relation,
    Str,
    Table,
    Union,
    read_document,
    show,
)

__all__ = ["SCOPES", "CONSENT_SCHEMA", "load_consent", "covers", "granted"]

logger = logging.getLogger(__name__)

#: What a consent can cover.
SCOPES = ("monitoring", "transcript", "audio")

_HOW = ("use --consent FILE (TOML with who, when and [covers] monitoring/transcript/audio = true/false) or "
        "--consent \"NAME consented to monitoring on YYYY-MM-DD\"")
_TEXT_MIN_CHARS = 10
_TEXT_MAX_CHARS = 2000

_NAME = Str(nonempty=True, max_len=200, hint="a name such as 'patient: A. B.'")
_COVERS_TABLE = Table(
    {scope: Field(Bool(), doc=f"{scope} granted (true) or not (false)") for scope in SCOPES},
    relations=(Relation(("monitoring",), lambda v: v["monitoring"], "monitoring must be true for a live session"),),
    name="a [covers] table with monitoring, transcript and audio = true/false",
)
_COVERS_LIST = List(Str(choices=SCOPES), min_len=1, unique=True)

#: The schema of a consent file (see the module docstring).
CONSENT_SCHEMA = Table(
    {
        "who": Field(Union((_NAME, List(_NAME, min_len=1, max_len=50))), doc="who consented"),
        "when": Field(Date(), doc="when consent was given"),
        "covers": Field(Union((_COVERS_TABLE, _COVERS_LIST)), doc="what the consent grants"),
        "recorded_by": Field(Str(nonempty=True, max_len=200), required=False, doc="who recorded it"),
        "note": Field(Str(max_len=_TEXT_MAX_CHARS), required=False, doc="free text"),
    },
    name="a table with who, when and covers",
)


def load_consent(arg: str | None) -> dict[str, Any]:
    """The consent record for ``--consent ARG``.

    Returns
    -------
    dict
        ``kind`` (``"file"`` or ``"text"``), ``granted`` (scope -> bool), ``covers``
        (the granted scopes, in :data:`SCOPES` order) and the file's fields or the text.

    Raises
    ------
    InputError
        No consent, a file that is missing or invalid, a text too short to say anything.
    """
    if arg is None or not arg.strip():
        raise InputError(f"live sessions need a consent record; {_HOW}")
    path = Path(arg)
    if _is_file(path):
        return _from_file(path)
    if _looks_like_path(arg):
        raise InputError(f"--consent {show(arg)}: no such consent file; check the path, or {_HOW}")
    return _from_text(arg)


def granted(consent: dict[str, Any] | None) -> dict[str, bool]:
    """Scope -> granted, for a record from :func:`load_consent` (nothing granted without one)."""
    given = (consent or {}).get("granted") or {}
    return {scope: given.get(scope) is True for scope in SCOPES}


def covers(consent: dict[str, Any] | None, scope: str) -> bool:
    """True only when ``consent`` explicitly grants ``scope``."""
    return granted(consent).get(scope, False)


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long, an embedded NUL
        return False


def _looks_like_path(arg: str) -> bool:
    text = arg.strip()
    return (not any(c.isspace() for c in text)
            or Path(text).suffix.lower() in (".toml", ".json")
            or text.startswith(("/", "./", "../", "~")))


def _from_text(text: str) -> dict[str, Any]:
    text = " ".join(text.split())
    if len(text) < _TEXT_MIN_CHARS:
        raise InputError(f"--consent {show(text)!r} is too short to say who consented to what; {_HOW}")
    if len(text) > _TEXT_MAX_CHARS:
        raise InputError(f"--consent text is longer than {_TEXT_MAX_CHARS} characters; put it in a consent file")
    logger.info("a consent text grants monitoring only; a consent file can grant transcript and audio")
    grants = {scope: scope == "monitoring" for scope in SCOPES}
    return {"kind": "text", "text": text, "granted": grants, "covers": ["monitoring"],
            "recorded_at": _dt.datetime.now().astimezone().isoformat(timespec="seconds")}


def _from_file(path: Path) -> dict[str, Any]:
    fmt = "json" if path.suffix.lower() == ".json" else "toml"
    record = read_document(path, CONSENT_SCHEMA, what="consent record", fmt=fmt,
                           label=f"--consent {show(path, limit=120)}")
    covers_value = record["covers"]
    if isinstance(covers_value, dict):
        grants = {scope: covers_value[scope] for scope in SCOPES}
    else:
        grants = {scope: scope in covers_value for scope in SCOPES}
        if not grants["monitoring"]:
            raise InputError(f"--consent {show(path, limit=120)}: covers must include monitoring for a live session")
    who = [record["who"]] if isinstance(record["who"], str) else list(record["who"])
    return {"kind": "file", "file": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "who": who, "when": record["when"], "granted": grants,
            "covers": [scope for scope in SCOPES if grants[scope]],
            "recorded_by": record["recorded_by"], "note": record["note"]}
