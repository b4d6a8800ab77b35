"""Reading input files: one-line errors for every way reading or checking can fail."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from session_monitor.errors import InputError, SessionMonitorError
from session_monitor.schema.specs import Problem, Spec, show

__all__ = ["validate", "load_document", "read_document", "iter_jsonl", "MAX_DOCUMENT_BYTES"]

#: Largest file :func:`load_document` reads (bytes); every input the program reads by hand is far smaller.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024


def validate(spec: Spec, value: Any, *, source: str | os.PathLike[str], at: str = "",
             error: type[SessionMonitorError] = InputError) -> Any:
    """``value`` checked against ``spec``; the first problem raises ``error`` as one line.

    ``source`` names the file in the message (a path, or e.g. ``"<command line>"``);
    ``at`` is the key path of ``value`` inside it when it is a part of the file.
    """
    try:
        return spec.check(value, at)
    except Problem as problem:
        raise error(f"{show(source, limit=120)}: {problem.message}") from None
    except RecursionError:
        raise error(f"{show(source, limit=120)}: is nested too deeply to be a valid file") from None


def load_document(path: str | os.PathLike[str], *, what: str, fmt: str | None = None,
                  error: type[SessionMonitorError] = InputError, max_bytes: int = MAX_DOCUMENT_BYTES,
                  label: str | None = None) -> Any:
    """Parse a TOML or JSON file (``fmt``, else by suffix: ``.json`` is JSON, anything else TOML).

    ``what`` says what the file is for the message ("markers file", "consent record").
    JSON's ``NaN``/``Infinity`` are refused. Every failure raises ``error`` as one line,
    starting with ``label`` (default: the path).
    """
    path = Path(path)
    name = label if label is not None else show(path, limit=120)
    fmt = fmt or ("json" if path.suffix.lower() == ".json" else "toml")
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise error(f"{name}: no such {what}; check the path") from None
    except IsADirectoryError:
        raise error(f"{name}: is a folder, not a {what}") from None
    except OSError as exc:
        reason = "the file name is too long" if exc.errno == 36 else exc.strerror
        raise error(f"{name}: cannot read the {what} ({reason})") from None
    except ValueError:  # an embedded NUL in the name
        raise error(f"{name}: is not a usable file name for the {what}") from None
    if len(data) > max_bytes:
        raise error(f"{name}: is larger than {max_bytes // (1024 * 1024)} MiB; this is not a {what}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{name}: is not UTF-8 text; save the {what} as UTF-8") from None
    try:
        if fmt == "json":
            return json.loads(text, parse_constant=_no_constant)
        return tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError, ValueError) as exc:
        first = show(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, limit=100)
        raise error(f"{name}: invalid {fmt.upper()} ({first}); fix the syntax of the {what}") from None
    except RecursionError:
        raise error(f"{name}: is nested too deeply to be a {what}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def read_document(path: str | os.PathLike[str], spec: Spec, *, what: str, fmt: str | None = None,
                  error: type[SessionMonitorError] = InputError, label: str | None = None) -> Any:
    """:func:`load_document` then :func:`validate`: the checked content of one input file."""
    data = load_document(path, what=what, fmt=fmt, error=error, label=label)
    return validate(spec, data, source=label if label is not None else path, error=error)


def iter_jsonl(lines: list[str], spec: Spec, *, source: str | os.PathLike[str], torn_last_ok: bool = True,
               error: type[SessionMonitorError] = InputError) -> Iterator[Any]:
    """Each line of a JSON-lines text checked against ``spec``.

    A last line that is not valid JSON is taken as torn by a crash and skipped when
    ``torn_last_ok``; any other bad line raises ``error`` naming its number.
    """
    last = len(lines) - 1
    while last >= 0 and not lines[last].strip():
        last -= 1
    for i, line in enumerate(lines[: last + 1]):
        try:
            value = json.loads(line, parse_constant=_no_constant)
        except (ValueError, RecursionError):
            if i == last and torn_last_ok:
                return
            raise error(f"{show(source, limit=120)}: line {i + 1} is not valid JSON; "
                        "the file was edited or damaged") from None
        yield validate(spec, value, source=f"{show(source, limit=120)}: line {i + 1}", error=error)
