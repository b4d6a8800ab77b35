"""Reading a session's ``events.jsonl`` back: what the report, evaluation and tuning start from.

Writing it is the session store's job (:class:`session_monitor.session.store.SessionStore`);
reading needs nothing but this module, so tools over finished sessions do not depend on
the running session's code. Every line is checked against its event type's schema
(:data:`EVENT_SCHEMAS`, made from the event dataclasses, so a new field is checked too).
"""

from __future__ import annotations

import dataclasses
import errno
import os
from pathlib import Path
from typing import Any

from session_monitor.errors import SessionDirError
from session_monitor.events import EVENT_TYPES, Event
from session_monitor.schema import (
    Float,
    List,
    Map,
    Nullable,
    Spec,
    Str,
    Table,
    iter_jsonl,
    show,
    table_for_dataclass,
)

__all__ = ["EVENT_SCHEMAS", "read_events"]


def _event_schema(cls: type[Event]) -> Table:
    table = _null_for_nan(table_for_dataclass(cls, extra="keep"))  # "add fields freely" (DESIGN.md)
    return Table({"type": Str(choices=(cls.type,)), **table.fields}, extra="keep", name=f"a {cls.type} event")


def _null_for_nan(spec: Spec) -> Spec:
    """Events write a NaN or infinite number as null (:func:`event_to_json`): every number may be null."""
    if isinstance(spec, Float):
        return Nullable(spec)
    if isinstance(spec, Nullable):
        return Nullable(_null_for_nan(spec.spec))
    if isinstance(spec, List):
        return dataclasses.replace(spec, item=_null_for_nan(spec.item))
    if isinstance(spec, Map):
        return dataclasses.replace(spec, value=_null_for_nan(spec.value))
    if isinstance(spec, Table):
        fields = {k: dataclasses.replace(f, spec=_null_for_nan(f.spec)) for k, f in
                  ((k, spec.field(k)) for k in spec.fields)}
        return dataclasses.replace(spec, fields=fields)
    return spec


#: Schema of each event type's JSON line, from the event dataclasses (a new field is checked too).
EVENT_SCHEMAS: dict[str, Table] = {name: _event_schema(cls) for name, cls in EVENT_TYPES.items()}
_ANY_EVENT = Table({"type": Str(nonempty=True, max_len=64), "t": Float()}, extra="keep",
                   name="an event (an object with type and t)")


class _EventLine(Table):
    """One line of events.jsonl: a known type is checked against its schema, another needs type and t."""

    def check(self, value: Any, at: str) -> dict[str, Any]:
        head = _ANY_EVENT.check(value, at)
        schema = EVENT_SCHEMAS.get(head["type"])
        if schema is not None:
            schema.check(value, at)
        return value  # as written: readers see the line itself, not defaults filled in


def read_events(folder: str | Path) -> list[dict[str, Any]]:
    """Events of a session folder as dicts, each checked against its schema.

    A torn last line (a crash mid-write) is skipped; any other line that is not JSON,
    or not an event, is a one-line :class:`SessionDirError` naming the line.
    """
    path = Path(folder) / "events.jsonl"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SessionDirError(f"{show(path, limit=120)}: is a symbolic link; give the session folder "
                                  "itself") from None
        raise SessionDirError(f"{show(folder, limit=120)}: has no readable events.jsonl ({exc.strerror}); "
                              "give a session folder written by session-monitor") from None
    with os.fdopen(fd, "rb") as f:
        text = f.read().decode("utf-8", errors="replace")
    return list(iter_jsonl(text.splitlines(), _EventLine(), source=path, error=SessionDirError))
