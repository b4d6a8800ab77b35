"""Schemas derived from type hints: a settings section or an event dataclass declares its own schema."""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any

from session_monitor.schema.specs import (
    AnyValue,
    Bool,
    Field,
    Float,
    Int,
    List,
    Map,
    Nullable,
    Relation,
    Spec,
    Str,
    Table,
    Union,
)

__all__ = ["spec_for_type", "table_for_dataclass"]


def spec_for_type(tp: Any, meta: Mapping[str, Any] | None = None, *, extra: str = "forbid") -> Spec:
    """The spec of a dataclass field typed ``tp``; ``meta`` may hold ``lo``, ``hi``, ``choices``.

    Understands ``bool``, ``int``, ``float``, ``str``, ``tuple[X, ...]``, ``X | None``,
    ``dict[str, X]``, ``Any`` and dataclasses (tables with ``extra``); anything else is a
    programming error (TypeError).
    """
    meta = meta or {}
    lo, hi, choices = meta.get("lo"), meta.get("hi"), tuple(meta.get("choices") or ())
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        spec = (spec_for_type(inner[0], meta, extra=extra) if len(inner) == 1
                else Union(tuple(spec_for_type(a, extra=extra) for a in inner)))
        return Nullable(spec) if type(None) in args else spec
    if origin is tuple:
        return List(spec_for_type(args[0], extra=extra))
    if origin is dict:
        return Map(spec_for_type(args[1], extra=extra))
    if tp is Any:
        return AnyValue()
    if tp is bool:
        return Bool()
    if tp is int:
        return Int(lo, hi)
    if tp is float:
        return Float(lo, hi)
    if tp is str:
        return Str(choices=choices)
    if dataclasses.is_dataclass(tp):
        return table_for_dataclass(tp, extra=extra)
    raise TypeError(f"no schema for type {tp!r}")


def table_for_dataclass(cls: type, *, extra: str = "forbid", relations: tuple[Relation, ...] = (),
                        required_all: bool = False) -> Table:
    """A :class:`Table` with one field per dataclass field (its type hint and ``metadata`` ranges).

    A field without a default is required (every field with ``required_all``); an absent
    optional field takes the dataclass default.
    """
    hints = typing.get_type_hints(cls)
    fields: dict[str, Field] = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            has_default, default = True, f.default
        elif f.default_factory is not dataclasses.MISSING:
            has_default, default = True, f.default_factory()
        else:
            has_default, default = False, None
        spec = spec_for_type(hints[f.name], f.metadata, extra=extra)
        fields[f.name] = Field(spec, required=required_all or not has_default, default=default)
    return Table(fields, extra=extra, relations=relations, name=f"a {cls.__name__} table")


