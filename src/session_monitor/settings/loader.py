"""Validated, typed settings loaded from TOML.

``configs/default.toml`` holds every setting with a comment and is the single
source of defaults; a ``--config`` file or a clinician profile
(``configs/clinicians/NAME.toml``) overrides any subset. Each section is a frozen
dataclass (:mod:`session_monitor.settings.sections`); a stage takes its own section,
never the whole tree.

Every error is one line naming the file, the key and what is allowed, e.g.
``configs/clinicians/ana.toml: fusion.alert_on=1.4 is out of range; use 0..1``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tomllib
import typing
from pathlib import Path
from typing import Any

from session_monitor.errors import ConfigError
from session_monitor.settings import sections as settings_sections
from session_monitor.settings.sections import *  # noqa: F403 - the sections are this module's API too
from session_monitor.settings.sections import NOT_SECTIONS, ClinicianProfile, Settings

__all__ = [*settings_sections.__all__, "load_settings", "clinician_file", "default_config_path", "config_dir"]


_SECTIONS: dict[str, type] = {
    f.name: typing.get_type_hints(Settings)[f.name]
    for f in dataclasses.fields(Settings)
    if f.name not in NOT_SECTIONS
}


def config_dir() -> Path:
    """The folder holding ``default.toml`` and ``clinicians/``.

    ``./configs`` when the current folder has one with a default.toml (a checkout),
    else the copy shipped inside the package, else the source tree's.
    """
    here = Path.cwd() / "configs"
    if (here / "default.toml").is_file():
        return here
    shipped = Path(__file__).resolve().parents[1] / "configs"
    if (shipped / "default.toml").is_file():
        return shipped
    return Path(__file__).resolve().parents[3] / "configs"


def default_config_path() -> Path:
    return config_dir() / "default.toml"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such settings file; check the path") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a TOML settings file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: is not UTF-8 text; save it as a UTF-8 TOML file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc}); fix the syntax") from None


def _type_name(tp: Any) -> str:
    if typing.get_origin(tp) is tuple:
        return "a list of " + _type_name(typing.get_args(tp)[0]) + "s"
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


def _coerce(path: Path, key: str, value: Any, tp: Any, meta: dict[str, Any]) -> Any:
    """Check ``value`` against type ``tp`` and the field's range; return it typed."""

    raw = value

    def bad_type() -> ConfigError:
        return ConfigError(f"{path}: {key}={value!r} has the wrong type; use {_type_name(tp)}")

    if typing.get_origin(tp) is tuple:
        if not isinstance(value, list):
            raise bad_type()
        item_tp = typing.get_args(tp)[0]
        return tuple(_coerce(path, key, v, item_tp, {}) for v in value)
    if tp is bool:
        if not isinstance(value, bool):
            raise bad_type()
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad_type()
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad_type()
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise ConfigError(f"{path}: {key}={value} is not a finite number")
    elif tp is str:
        if not isinstance(value, str):
            raise bad_type()
    lo, hi, choices = meta.get("lo"), meta.get("hi"), meta.get("choices") or ()
    if choices and value not in choices:
        raise ConfigError(f"{path}: {key}={value!r} is not allowed; use one of {', '.join(choices)}")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ConfigError(f"{path}: {key}={raw} is out of range; use {lo:g}..{hi:g}")
    return value


def _merge(path: Path, data: dict[str, Any], into: dict[str, dict[str, Any]], *, complete: bool) -> None:
    for section, values in data.items():
        if section not in _SECTIONS:
            raise ConfigError(
                f"{path}: unknown section [{section}]; known sections: {', '.join(_SECTIONS)}"
            )
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: {section} must be a [{section}] table")
        cls = _SECTIONS[section]
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key, value in values.items():
            if key not in fields:
                raise ConfigError(
                    f"{path}: unknown key {section}.{key}; known keys: {', '.join(fields)}"
                )
            into.setdefault(section, {})[key] = _coerce(
                path, f"{section}.{key}", value, hints[key], dict(fields[key].metadata)
            )
    if complete:
        for section, cls in _SECTIONS.items():
            missing = [f.name for f in dataclasses.fields(cls) if f.name not in into.get(section, {})]
            if missing:
                raise ConfigError(f"{path}: [{section}] lacks {', '.join(missing)}; every setting needs a default")


def clinician_file(name: str) -> Path:
    """``configs/clinicians/NAME.toml``, whether it exists or not; the name must be a plain file stem."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ConfigError(f"--clinician {name!r}: use a plain name such as 'ana' (no path)")
    return config_dir() / "clinicians" / f"{name}.toml"


def clinician_path(name: str) -> Path:
    """``configs/clinicians/NAME.toml``, which must exist; the name must be a plain file stem."""
    path = clinician_file(name)
    if not path.is_file():
        known = sorted(p.stem for p in (config_dir() / "clinicians").glob("*.toml"))
        hint = f"known: {', '.join(known)}" if known else "none exist yet"
        raise ConfigError(f"clinician profile {path} not found ({hint}); create it or check the name")
    return path


def load_settings(
    config: str | Path | None = None,
    *,
    clinician: str | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> Settings:
    """Defaults, then ``config``, then the clinician profile, then ``overrides``.

    Raises
    ------
    ConfigError
        One line naming the file, the key and the allowed values.
    """
    merged: dict[str, dict[str, Any]] = {}
    default = default_config_path()
    _merge(default, _read_toml(default), merged, complete=True)
    sources = [str(default)]
    digest = hashlib.sha256(default.read_bytes())
    extra: list[Path] = []
    if config is not None:
        extra.append(Path(config))
    profile_file = clinician_path(clinician) if clinician is not None else None
    if profile_file is not None:
        extra.append(profile_file)
    profile = None
    for path in extra:
        _merge(path, _read_toml(path), merged, complete=False)
        sources.append(str(path))
        data = path.read_bytes()
        digest.update(data)
        if path is profile_file:
            profile = ClinicianProfile(str(clinician), str(path), hashlib.sha256(data).hexdigest())
    if overrides:
        _merge(Path("<command line>"), overrides, merged, complete=False)
        digest.update(repr(sorted((s, sorted(v.items())) for s, v in overrides.items())).encode())
    sections = {name: cls(**merged[name]) for name, cls in _SECTIONS.items()}
    settings = Settings(**sections, sources=tuple(sources), digest=digest.hexdigest()[:16], clinician=profile)
    _check_consistency(settings)
    return settings


def _check_consistency(s: Settings) -> None:
    src = s.sources[-1]
    if s.prosody.fmin_hz >= s.prosody.fmax_hz:
        raise ConfigError(f"{src}: prosody.fmin_hz must be below prosody.fmax_hz")
    if s.speech_activity.neg_threshold > s.speech_activity.threshold:
        raise ConfigError(f"{src}: speech_activity.neg_threshold must not exceed speech_activity.threshold")
    if s.speech_activity.utterance_end_ms < s.speech_activity.min_pause_ms:
        raise ConfigError(f"{src}: speech_activity.utterance_end_ms must be >= speech_activity.min_pause_ms")
    for role in s.roles.stereo:
        if role not in ("therapist", "patient", "unknown"):
            raise ConfigError(f"{src}: roles.stereo has {role!r}; use therapist, patient or unknown")
    if s.fusion.alert_off >= s.fusion.alert_on:
        raise ConfigError(f"{src}: fusion.alert_off must be below fusion.alert_on (hysteresis)")
