"""What a batch replays: audio files, folders searched for recordings, and CSV manifests.

A manifest is a CSV file with a header. ``path`` is required; ``roles`` (speaker of each
channel, e.g. ``therapist,patient`` quoted, or ``therapist;patient``), ``clinician`` (a
profile name, ``configs/clinicians/NAME.toml``) and ``annotations`` (a truth JSON or
CSV of annotated ruptures, docs/annotations.md) are optional. Relative paths are read
against the manifest's own folder.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from session_monitor.errors import InputError

__all__ = ["AUDIO_SUFFIXES", "ROLES", "Recording", "collect_recordings", "parse_roles", "read_manifest"]

#: suffixes a folder is searched for (soundfile's formats and PyAV's common containers)
AUDIO_SUFFIXES = frozenset({
    ".wav", ".flac", ".ogg", ".oga", ".opus", ".aiff", ".aif", ".au", ".w64", ".caf", ".rf64",
    ".mp3", ".m4a", ".mp4", ".aac", ".wma", ".webm", ".mkv", ".mov",
})
ROLES = ("therapist", "patient", "unknown")
_COLUMNS = ("path", "roles", "clinician", "annotations")


@dataclass(frozen=True)
class Recording:
    """One recording of a batch.

    Parameters
    ----------
    path : the recording, as the user named it (the session records this string as its source)
    name : the session folder's name under ``--out``, unique in the batch
    roles : speaker of each channel, or None for the settings' default
    clinician : profile name, or None for the batch's ``--clinician``
    annotations : annotated ruptures for the evaluation columns, or None
    """

    path: str
    name: str = ""
    roles: tuple[str, ...] | None = None
    clinician: str | None = None
    annotations: str | None = None


def parse_roles(text: str, *, where: str) -> tuple[str, ...]:
    """``therapist,patient`` (or ``;``-separated) as a tuple; ``where`` names the source in errors."""
    roles = tuple(r.strip().lower() for r in text.replace(";", ",").split(",") if r.strip())
    for role in roles:
        if role not in ROLES:
            raise InputError(f"{where}: role {role!r} is not therapist, patient or unknown")
    named = [r for r in roles if r != "unknown"]
    if len(set(named)) != len(named):
        raise InputError(f"{where}: each of therapist and patient may appear once in roles")
    if not roles:
        raise InputError(f"{where}: roles is empty; leave the column blank for the default")
    return roles


def read_manifest(path: str | Path) -> list[Recording]:
    """The rows of a CSV manifest as recordings (names not yet assigned).

    Raises
    ------
    InputError
        The file cannot be read, lacks a ``path`` column, has an unknown column or a bad row.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot be read as a UTF-8 CSV manifest ({exc})") from None
    reader = csv.DictReader(io.StringIO(text))
    header = [(h or "").strip().lower() for h in reader.fieldnames or []]
    if "path" not in header:
        raise InputError(f"{path}: a manifest needs a header with a 'path' column (and optional roles, "
                         "clinician, annotations)")
    unknown = [h for h in header if h not in _COLUMNS]
    if unknown:
        raise InputError(f"{path}: unknown manifest column {unknown[0]!r}; use {', '.join(_COLUMNS)}")
    base = path.parent
    out = []
    for row in reader:
        where = f"{path} line {reader.line_num}"
        if None in row:
            raise InputError(f"{where}: more values than the header; quote a roles value that holds a comma")
        values = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
        if not values.get("path"):
            raise InputError(f"{where}: the path is empty; give the recording's path")

        def resolve(value: str) -> str:
            p = Path(value).expanduser()
            return str(p if p.is_absolute() else base / p)

        annotations = values.get("annotations") or None
        out.append(Recording(
            path=resolve(values["path"]),
            roles=parse_roles(values["roles"], where=where) if values.get("roles") else None,
            clinician=values.get("clinician") or None,
            annotations=resolve(annotations) if annotations else None,
        ))
    if not out:
        raise InputError(f"{path}: the manifest has no rows; add one line per recording")
    return out


def _folder(path: Path) -> list[Recording]:
    found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
                   and not any(part.startswith(".") for part in p.relative_to(path).parts))
    if not found:
        raise InputError(f"{path}: the folder holds no recordings ({', '.join(sorted(AUDIO_SUFFIXES))})")
    return [Recording(path=str(p)) for p in found]


def _unique_names(recordings: Sequence[Recording]) -> list[Recording]:
    """Folder names from the file stems; a stem used twice gets a short hash of its path."""
    stems = [Path(r.path).stem or "session" for r in recordings]
    out = []
    for rec, stem in zip(recordings, stems, strict=True):
        name = stem
        if stems.count(stem) > 1:
            name = f"{stem}-{hashlib.sha256(str(Path(rec.path).resolve()).encode()).hexdigest()[:8]}"
        out.append(Recording(rec.path, name, rec.roles, rec.clinician, rec.annotations))
    return out


def collect_recordings(inputs: Sequence[str]) -> list[Recording]:
    """Recordings named by ``inputs``: files, folders (searched recursively) and ``.csv`` manifests.

    A path named on the command line must exist (else :class:`InputError`); a file that
    exists but cannot be decoded is left for its session to fail alone. A recording named
    twice is replayed once.

    Raises
    ------
    InputError
        An input is missing, a folder holds no recordings, or a manifest is malformed.
    """
    if not inputs:
        raise InputError("batch: give at least one recording, folder or CSV manifest")
    found: list[Recording] = []
    for item in inputs:
        path = Path(item)
        if not path.exists():
            raise InputError(f"{item}: no such file or folder; check the path")
        if path.is_dir():
            found.extend(_folder(path))
        elif path.suffix.lower() == ".csv":
            found.extend(read_manifest(path))
        else:
            found.append(Recording(path=str(item)))
    seen: set[str] = set()
    unique = []
    for rec in found:
        key = str(Path(rec.path).resolve())
        if key not in seen:
            seen.add(key)
            unique.append(rec)
    return _unique_names(unique)
