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
import typing
from pathlib import Path
from typing import Any

from session_monitor.errors import ConfigError
from session_monitor.schema import (
    Field,
    Relation,
    Table,
    distinct,
    less,
    load_document,
    not_above,
    show,
    table_for_dataclass,
    validate,
)
from session_monitor.settings import sections as settings_sections
from session_monitor.settings.sections import *  # noqa: F403 - the sections are this module's API too
from session_monitor.settings.sections import NOT_SECTIONS, ClinicianProfile, Settings

__all__ = [*settings_sections.__all__, "load_settings", "clinician_file", "default_config_path", "config_dir",
           "RELATIONS", "SCHEMAS"]

SPEAKERS = ("therapist", "patient", "unknown")


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
    return load_document(path, what="settings file", fmt="toml", error=ConfigError)


def _known_roles(values: dict[str, Any]) -> bool:
    return all(r in SPEAKERS for r in values["stereo"])


#: Rules between the fields of one section, checked on the merged settings (defaults, then each file).
RELATIONS: dict[str, tuple[Relation, ...]] = {
    "prosody": (less("fmin_hz", "fmax_hz"), not_above("hop_ms", "frame_ms")),
    "speech_activity": (not_above("neg_threshold", "threshold"),
                        not_above("min_pause_ms", "utterance_end_ms")),
    "roles": (Relation(("stereo",), _known_roles, "stereo may name only therapist, patient or unknown"),
              distinct("stereo", ignore=("unknown",))),
    "fusion": (less("alert_off", "alert_on", why="hysteresis"),
               less("therapist_max_score", "alert_on", why="therapist contributions never alert alone")),
    "evidence": (not_above("baseline_min_n", "baseline_n"),),
    "attribution": (not_above("min_chunk_s", "chunk_s"), not_above("enrol_min_s", "enrol_max_s")),
}

#: The schema of each section: one field per dataclass field, with its type and range.
SCHEMAS: dict[str, Table] = {
    name: table_for_dataclass(cls, relations=RELATIONS.get(name, ())) for name, cls in _SECTIONS.items()
}


def _merge(path: Path, data: dict[str, Any], into: dict[str, dict[str, Any]], *, complete: bool) -> None:
    for section, values in data.items():
        if section not in _SECTIONS:
            raise ConfigError(
                f"{show(path, limit=120)}: unknown section [{show(section, limit=40)}]; known sections: "
                f"{', '.join(_SECTIONS)}"
            )
        if not isinstance(values, dict):
            raise ConfigError(f"{show(path, limit=120)}: {section} must be a [{section}] table")
        schema = SCHEMAS[section]
        partial = Table({k: Field(schema.field(k).spec, required=False) for k in schema.fields},
                        name=f"a [{section}] table")  # a file overrides any subset; relations on the whole
        checked = validate(partial, values, source=path, at=section, error=ConfigError)
        into.setdefault(section, {}).update({k: checked[k] for k in values})
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
    _check_relations(merged, "<command line>" if overrides else sources[-1])
    sections = {name: cls(**merged[name]) for name, cls in _SECTIONS.items()}
    return Settings(**sections, sources=tuple(sources), digest=digest.hexdigest()[:16], clinician=profile)


def _check_relations(merged: dict[str, dict[str, Any]], source: str) -> None:
    """Each section's :data:`RELATIONS` over the merged values; the last file read is named."""
    for section, schema in SCHEMAS.items():
        validate(schema, merged[section], source=source, at=section, error=ConfigError)
