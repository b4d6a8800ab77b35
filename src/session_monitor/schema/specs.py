"""The nodes of a schema: types, ranges, tables with declared keys, relations between fields.

Each :class:`Spec` checks one value and returns it typed, or raises a problem that
:func:`session_monitor.schema.reading.validate` turns into a one-line error naming the
file, the key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "Spec", "Bool", "Int", "Float", "Str", "Date", "List", "Table", "Map", "Union", "Nullable", "AnyValue",
    "Field", "Relation", "Problem", "less", "not_above", "distinct", "show",
]

_SHOW_MAX = 60


def show(value: Any, *, limit: int = _SHOW_MAX) -> str:
    """``value`` (a path, a name, a value) as printable one-line text of at most ``limit`` characters.

    Bytes that are not valid UTF-8 in a file name come out as ``\\udcXX`` escapes instead of
    breaking the terminal; control characters and newlines are escaped.
    """
    if isinstance(value, (os.PathLike, bytes)):
        value = os.fsdecode(value)
    text = value if isinstance(value, str) else repr(value)
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    if len(text) <= limit:
        return text
    head = (limit - 3) // 2
    return text[:head] + "..." + text[len(text) - (limit - 3 - head):]  # the end of a path names the file


def _key(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    key = show(key, limit=40)
    return f"{path}.{key}" if path else key


class Problem(Exception):
    """A problem at one key; :func:`validate` turns it into the caller's error class."""

    def __init__(self, at: str, message: str) -> None:
        super().__init__(message)
        self.at = at
        self.message = message


def _shown(at: str, value: Any) -> str:
    text = show(repr(value)) if isinstance(value, str) else show(value)
    return f"{at}={text}" if at else text


_KINDS = {bool: "true/false", int: "a number", float: "a number", str: "a text", list: "a list",
          tuple: "a list", dict: "a table", type(None): "null"}


class Spec:
    """One node of a schema: :meth:`check` returns the value, typed, or raises a problem."""

    #: How the allowed values read in a message ("an integer", "true/false").
    expected = "a value"

    def check(self, value: Any, at: str) -> Any:
        raise NotImplementedError

    def wrong_type(self, value: Any, at: str) -> Problem:
        if not at:
            kind = _KINDS.get(type(value), type(value).__name__)
            return Problem(at, f"holds {kind} where {self.expected} belongs; fix the file's structure")
        return Problem(at, f"{_shown(at, value)} has the wrong type; use {self.expected}")


@dataclasses.dataclass(frozen=True)
class AnyValue(Spec):
    """Anything JSON/TOML can hold (for free-form fields such as a note's extra data)."""

    expected = "any value"

    def check(self, value: Any, at: str) -> Any:
        return value


@dataclasses.dataclass(frozen=True)
class Bool(Spec):
    expected = "true/false"

    def check(self, value: Any, at: str) -> bool:
        if not isinstance(value, bool):
            raise self.wrong_type(value, at)
        return value


def _range_text(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f"{lo:g}..{hi:g}"
    return f">= {lo:g}" if lo is not None else f"<= {hi:g}"


def _check_range(value: float, at: str, lo: float | None, hi: float | None, raw: Any) -> None:
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise Problem(at, f"{_shown(at, raw)} is out of range; use {_range_text(lo, hi)}")


@dataclasses.dataclass(frozen=True)
class Int(Spec):
    lo: int | None = None
    hi: int | None = None
    expected = "an integer"

    def check(self, value: Any, at: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.wrong_type(value, at)
        _check_range(value, at, self.lo, self.hi, value)
        return value


@dataclasses.dataclass(frozen=True)
class Float(Spec):
    """A finite number (an integer is accepted and returned as float)."""

    lo: float | None = None
    hi: float | None = None
    expected = "a number"

    def check(self, value: Any, at: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.wrong_type(value, at)
        try:
            number = float(value)
        except OverflowError:  # an integer too large for a float
            number = math.inf
        if not math.isfinite(number):
            raise Problem(at, f"{_shown(at, value)} is not a finite number")
        _check_range(number, at, self.lo, self.hi, value)
        return number


@dataclasses.dataclass(frozen=True)
class Str(Spec):
    """Text; ``nonempty`` refuses blank text, ``pattern`` is a full-match regular expression."""

    choices: tuple[str, ...] = ()
    nonempty: bool = False
    max_len: int | None = None
    pattern: str | None = None
    hint: str = ""  #: what a valid value looks like, for the message
    expected = "a string"

    def check(self, value: Any, at: str) -> str:
        if not isinstance(value, str):
            raise self.wrong_type(value, at)
        if self.choices and value not in self.choices:
            raise Problem(at, f"{_shown(at, value)} is not allowed; use one of {', '.join(self.choices)}")
        if self.nonempty and not value.strip():
            raise Problem(at, f"{at} is empty; give {self.hint or 'a non-empty text'}")
        if self.max_len is not None and len(value) > self.max_len:
            raise Problem(at, f"{at} is longer than {self.max_len} characters; shorten it")
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise Problem(at, f"{_shown(at, value)} is not allowed; use {self.hint or self.pattern}")
        return value


@dataclasses.dataclass(frozen=True)
class Date(Spec):
    """An ISO 8601 date or date-time (text, or a TOML date); returned as ISO text."""

    expected = "an ISO date such as 2026-11-26 or 2026-11-26T10:00"

    def check(self, value: Any, at: str) -> str:
        if isinstance(value, (_dt.date, _dt.datetime)):
            return value.isoformat()
        if not isinstance(value, str):
            raise self.wrong_type(value, at)
        try:
            _dt.datetime.fromisoformat(value)
        except ValueError:
            raise Problem(at, f"{_shown(at, value)} is not {self.expected}") from None
        return value


@dataclasses.dataclass(frozen=True)
class List(Spec):
    """A list of ``item``; ``unique`` refuses repeats. Returned as a tuple."""

    item: Spec = dataclasses.field(default_factory=AnyValue)
    min_len: int = 0
    max_len: int | None = None
    unique: bool = False

    @property
    def expected(self) -> str:  # type: ignore[override]
        return f"a list of {_plural(self.item.expected)}"

    def check(self, value: Any, at: str) -> tuple[Any, ...]:
        if not isinstance(value, (list, tuple)):
            raise self.wrong_type(value, at)
        if len(value) < self.min_len:
            raise Problem(at, f"{at} lists {len(value)} item(s); give at least {self.min_len}")
        if self.max_len is not None and len(value) > self.max_len:
            raise Problem(at, f"{at} lists {len(value)} items; give at most {self.max_len}")
        out = tuple(self.item.check(v, _key(at, i)) for i, v in enumerate(value))
        if self.unique:
            seen: list[Any] = []
            for i, v in enumerate(out):
                if v in seen:
                    raise Problem(at, f"{at} names {show(v)} twice; each may appear once")
                seen.append(v)
        return out


def _plural(expected: str) -> str:
    for article in ("an ", "a "):
        if expected.startswith(article):
            return expected[len(article):] + "s"
    return expected


@dataclasses.dataclass(frozen=True)
class Nullable(Spec):
    """``spec`` or null (JSON ``null``; TOML has none, so a TOML file simply leaves the key out)."""

    spec: Spec = dataclasses.field(default_factory=AnyValue)

    @property
    def expected(self) -> str:  # type: ignore[override]
        return f"{self.spec.expected} or null"

    def check(self, value: Any, at: str) -> Any:
        return None if value is None else self.spec.check(value, at)


@dataclasses.dataclass(frozen=True)
class Union(Spec):
    """The first of ``options`` that accepts the value (e.g. a name or a list of names)."""

    options: tuple[Spec, ...] = ()

    @property
    def expected(self) -> str:  # type: ignore[override]
        return " or ".join(o.expected for o in self.options)

    def check(self, value: Any, at: str) -> Any:
        problems = []
        for option in self.options:
            try:
                return option.check(value, at)
            except Problem as problem:
                problems.append(problem)
        for problem in problems:  # the value had this option's type but, e.g., was out of range
            if problem.at != at or "has the wrong type" not in problem.message:
                raise problem
        raise self.wrong_type(value, at)


@dataclasses.dataclass(frozen=True)
class Field:
    """One key of a :class:`Table`: its spec, whether it is required, its default, what it means."""

    spec: Spec
    required: bool = True
    default: Any = None
    doc: str = ""


@dataclasses.dataclass(frozen=True)
class Relation:
    """A rule over several fields of one table, e.g. ``less("fmin_hz", "fmax_hz")``.

    ``test(values) -> bool`` sees the checked values (absent keys are missing from the
    mapping: a relation whose keys are absent holds); ``message`` is the fix, said once.
    """

    keys: tuple[str, ...]
    test: Callable[[Mapping[str, Any]], bool]
    message: str

    def holds(self, values: Mapping[str, Any]) -> bool:
        if any(k not in values or values[k] is None for k in self.keys):
            return True
        return bool(self.test(values))


def less(lo: str, hi: str, *, strict: bool = True, why: str = "") -> Relation:
    """``lo`` below ``hi`` (``strict``) or not above it."""
    op = "below" if strict else "at most"
    suffix = f" ({why})" if why else ""

    def test(v: Mapping[str, Any]) -> bool:
        return v[lo] < v[hi] if strict else v[lo] <= v[hi]

    return Relation((lo, hi), test, f"{lo} must be {op} {hi}{suffix}")


def not_above(lo: str, hi: str, *, why: str = "") -> Relation:
    return less(lo, hi, strict=False, why=why)


def distinct(key: str, *, ignore: tuple[Any, ...] = ()) -> Relation:
    """No value of list ``key`` twice (``ignore`` values may repeat, e.g. ``unknown``)."""

    def test(v: Mapping[str, Any]) -> bool:
        items = [x for x in v[key] if x not in ignore]
        return len(items) == len(set(items))

    spare = f" ({', '.join(map(str, ignore))} may repeat)" if ignore else ""
    return Relation((key,), test, f"{key} may name each value once{spare}")


@dataclasses.dataclass(frozen=True)
class Table(Spec):
    """A mapping with declared keys.

    Parameters
    ----------
    fields : key -> :class:`Field` (or a bare :class:`Spec`, meaning required)
    extra : ``"forbid"`` (an undeclared key is an error: the default), or ``"keep"``
        (undeclared keys pass through unchecked, for formats that say "add fields freely")
    relations : rules over several fields, checked once every field passed
    name : how a message calls the table when it is the whole document
    sections : the keys are TOML sections: an unknown one reads ``unknown section [KEY]``
    """

    fields: Mapping[str, Field | Spec] = dataclasses.field(default_factory=dict)
    extra: str = "forbid"
    relations: tuple[Relation, ...] = ()
    name: str = "a table"
    sections: bool = False

    @property
    def expected(self) -> str:  # type: ignore[override]
        return self.name

    def field(self, key: str) -> Field:
        f = self.fields[key]
        return f if isinstance(f, Field) else Field(f)

    def check(self, value: Any, at: str) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise self.wrong_type(value, at)
        out: dict[str, Any] = {}
        for key in value:
            if not isinstance(key, str):
                raise Problem(at, f"{_key(at, show(key))}: keys must be text")
            if key not in self.fields:
                if self.extra == "keep":
                    out[key] = value[key]
                    continue
                known = ", ".join(self.fields) or "none"
                if self.sections:
                    raise Problem(at, f"unknown section [{_key(at, key)}]; known sections: {known}")
                raise Problem(at, f"unknown key {_key(at, key)}; known keys: {known}")
        for key in self.fields:
            f = self.field(key)
            if key in value:
                out[key] = f.spec.check(value[key], _key(at, key))
            elif f.required:
                raise Problem(at, f"{at + ' ' if at else ''}lacks {key}; add {key} ({f.spec.expected})")
            else:
                out[key] = f.default
        for relation in self.relations:
            if not relation.holds(out):
                raise Problem(at, _prefixed(relation, f"{at}." if at else ""))
        return out


def _prefixed(relation: Relation, prefix: str) -> str:
    text = relation.message
    if not prefix:
        return text
    for key in relation.keys:
        text = re.sub(rf"(?<![\w.]){re.escape(key)}(?!\w)", prefix + key, text, count=1)
    return text


@dataclasses.dataclass(frozen=True)
class Map(Spec):
    """A mapping of free keys (checked by ``key``) to values of one spec, e.g. ``[patient.NAME]`` tables."""

    value: Spec = dataclasses.field(default_factory=AnyValue)
    key: Str = dataclasses.field(default_factory=Str)
    name: str = "a table"

    @property
    def expected(self) -> str:  # type: ignore[override]
        return self.name

    def check(self, value: Any, at: str) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise self.wrong_type(value, at)
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise Problem(at, f"{_key(at, show(k))}: keys must be text")
            self.key.check(k, _key(at, k))
            out[k] = self.value.check(v, _key(at, k))
        return out


