"""Declared schemas for every file the program reads, and the one place they are checked.

Settings, clinician profiles, the markers file, consent records, annotations, the
voice enrolment and ``events.jsonl`` are each described by a :class:`Spec` tree:
field types, ranges, choices, required keys, and relations between fields
(:class:`Relation`, e.g. a minimum below its maximum). :func:`validate` walks a
parsed document against its spec and raises the first problem as a one-line
error that names the file, the key and what is allowed::

    configs/clinicians/ana.toml: fusion.alert_on=1.4 is out of range; use 0..1

A table refuses keys it does not declare (``extra="forbid"``), so a new field cannot
skip validation: it has to be declared to be read at all. :func:`load_document` reads
a TOML/JSON file with one-line errors for every way reading can fail (missing, a
folder, too large, not UTF-8, bad syntax, a file name that is not valid UTF-8 or
too long); :func:`read_document` does both.

This package sits at the bottom of the package tree: it imports only
:mod:`session_monitor.errors`, so any part may use it.
"""

from session_monitor.schema.arrays import Array, load_arrays
from session_monitor.schema.hints import spec_for_type, table_for_dataclass
from session_monitor.schema.reading import (
    MAX_DOCUMENT_BYTES,
    iter_jsonl,
    load_document,
    read_document,
    validate,
)
from session_monitor.schema.specs import (
    AnyValue,
    Bool,
    Date,
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
    distinct,
    less,
    not_above,
    show,
)

__all__ = [
    "Spec", "Bool", "Int", "Float", "Str", "Date", "List", "Table", "Map", "Union", "Nullable", "AnyValue",
    "Field", "Relation", "less", "not_above", "distinct", "spec_for_type", "table_for_dataclass",
    "validate", "show", "load_document", "read_document", "iter_jsonl", "MAX_DOCUMENT_BYTES", "Array",
    "load_arrays",
]
