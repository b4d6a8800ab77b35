"""Property-based tests of the two parsers a user feeds by hand: settings and annotations.

Whatever the input, the outcome is either a valid result or the project's own one-line
error; never another exception, never a half-valid result.
"""

from __future__ import annotations

import dataclasses
import json
import math
import string
import typing

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from session_monitor.clinician.metrics import KINDS, load_annotations
from session_monitor.errors import ConfigError, InputError
from session_monitor.settings.loader import Settings, load_settings

SECTIONS = {
    f.name: typing.get_type_hints(Settings)[f.name]
    for f in dataclasses.fields(Settings)
    if f.name not in ("sources", "digest", "clinician")  # provenance, not sections
}
KEYS = sorted((section, f.name) for section, cls in SECTIONS.items() for f in dataclasses.fields(cls))

toml_scalars = st.one_of(
    st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(string.ascii_letters + " _-", max_size=12),
)
toml_values = st.one_of(toml_scalars, st.lists(toml_scalars, max_size=3))


def toml_literal(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if not isinstance(value, float) or math.isfinite(value) else "0"
    if isinstance(value, str):
        return json.dumps(value)
    return "[" + ", ".join(toml_literal(v) for v in value) + "]"


def one_line(exc: Exception) -> None:
    assert "\n" not in str(exc) and str(exc)


common = hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@common
@given(choice=st.sampled_from(KEYS), value=toml_values)
def test_any_value_for_any_key_is_applied_or_refused_in_one_line(tmp_path_factory, choice, value):
    section, key = choice
    path = tmp_path_factory.mktemp("cfg") / "c.toml"
    path.write_text(f"[{section}]\n{key} = {toml_literal(value)}\n")
    try:
        loaded = load_settings(path)
    except ConfigError as exc:
        one_line(exc)
        assert "c.toml" in str(exc)
        return
    got = getattr(getattr(loaded, section), key)
    expected = tuple(value) if isinstance(value, list) else value
    assert got == expected or (isinstance(got, float) and got == float(expected))


@common
@given(text=st.text(max_size=200))
def test_arbitrary_text_as_settings_never_crashes(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("cfg") / "c.toml"
    path.write_text(text)
    try:
        load_settings(path)
    except ConfigError as exc:
        one_line(exc)


numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 10**5),
                    st.text(max_size=6), st.none())
interval = st.fixed_dictionaries(
    {"start": numbers, "end": numbers},
    optional={"kind": st.one_of(st.sampled_from(sorted(KINDS)), st.text(max_size=8)),
              "marker": st.text(max_size=10), "note": st.text(max_size=20)},
)
documents = st.one_of(
    st.lists(interval, max_size=6),
    st.fixed_dictionaries({"ruptures": st.lists(interval, max_size=6)}),
    st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5)),
                 lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                 max_leaves=8),
)


def check_intervals(intervals) -> None:
    for iv in intervals:
        assert math.isfinite(iv.start) and math.isfinite(iv.end)
        assert 0 <= iv.start < iv.end
        assert iv.kind in KINDS
    for a, b in zip(intervals, intervals[1:]):
        assert a.end <= b.start, "intervals are sorted and do not overlap"


@common
@given(doc=documents)
def test_any_json_annotation_file_is_read_or_refused_in_one_line(tmp_path_factory, doc):
    path = tmp_path_factory.mktemp("ann") / "a.json"
    path.write_text(json.dumps(doc, allow_nan=True))
    try:
        check_intervals(load_annotations(path))
    except InputError as exc:
        one_line(exc)


@common
@given(rows=st.lists(st.lists(st.text(string.printable.replace("\r", "").replace("\n", ""), max_size=8),
                              min_size=0, max_size=6), max_size=6),
       header=st.sampled_from(["start,end,kind", "start,end,kind,marker,note", "begin,stop", ""]))
def test_any_csv_annotation_file_is_read_or_refused_in_one_line(tmp_path_factory, rows, header):
    path = tmp_path_factory.mktemp("ann") / "a.csv"
    path.write_text(header + "\n" + "\n".join(",".join(r) for r in rows) + "\n")
    try:
        check_intervals(load_annotations(path))
    except InputError as exc:
        one_line(exc)
