"""Clinician profiles on disk: ``configs/clinicians/NAME.toml``, written by ``tune``.

A profile overrides a subset of ``configs/default.toml`` (docs/tuning.md). ``tune``
writes only the [fusion] keys it searched whose fitted value differs from the
settings beneath the profile (the defaults, plus ``--config``); every other key of
an existing profile is kept as it was. An existing profile is replaced only with
``--force``, and then a copy of it is kept beside it (``NAME.toml.YYYYmmdd-HHMMSS.bak``).
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from session_monitor.errors import ConfigError, InputError
from session_monitor.schema import load_document
from session_monitor.settings.loader import FusionSettings

__all__ = ["profile_data", "read_profile", "render_profile", "write_profile"]


def read_profile(path: Path) -> dict[str, Any]:
    """The tables of an existing profile (empty when there is none)."""
    if not path.is_file():
        return {}
    return load_document(path, what="clinician profile", fmt="toml", error=ConfigError)


def profile_data(existing: dict[str, Any], fitted: FusionSettings, below: FusionSettings,
                 keys: tuple[str, ...]) -> dict[str, Any]:
    """``existing`` with each of ``keys`` set to its fitted value, or removed where that equals the
    value beneath the profile (``below``)."""
    data = copy.deepcopy(existing)
    fusion = data.setdefault("fusion", {})
    for key in keys:
        value = getattr(fitted, key)
        if value == getattr(below, key):
            fusion.pop(key, None)
        else:
            fusion[key] = value
    if not fusion:
        del data["fusion"]
    return data


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)  # shortest text that reads back as the same number
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)  # a TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise ConfigError(f"cannot write {v!r} to a profile")


def render_profile(data: dict[str, Any], header: list[str]) -> str:
    """TOML text: ``header`` as comment lines, then one table per section."""
    lines = [f"# {h}".rstrip() for h in header]
    for section, values in data.items():
        lines += ["", f"[{section}]"] + [f"{key} = {_value(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def write_profile(path: Path, text: str, *, force: bool) -> Path | None:
    """Write ``text`` to ``path`` atomically; returns the backup of the profile it replaced.

    Raises
    ------
    InputError
        ``path`` exists and ``force`` is false.
    """
    backup = None
    if path.exists():
        if not force:
            raise InputError(f"{path} exists; add --force to replace it (a backup is kept) or use --dry-run")
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        backup = path.with_name(f"{path.name}.{stamp}.bak")
        shutil.copy2(path, backup)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError(f"{path}: cannot be written ({exc.strerror}); check the folder's permissions") from None
    return backup
