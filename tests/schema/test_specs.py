"""The validation layer: declared specs, one-line errors, and random structures thrown at them."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from session_monitor.errors import ConfigError, InputError
from session_monitor.schema import (
    Bool,
    Date,
    Field,
    Float,
    Int,
    List,
    Str,
    Table,
    distinct,
    less,
    load_document,
    read_document,
    show,
    table_for_dataclass,
    validate,
)

ROLES = ("therapist", "patient", "unknown")
SPEC = Table(
    {
        "fmin_hz": Float(40, 400),
        "fmax_hz": Float(100, 1000),
        "beam": Field(Int(1, 10), required=False, default=5),
        "on": Field(Bool(), required=False, default=False),
        "when": Field(Date(), required=False),
        "roles": Field(List(Str(choices=ROLES), max_len=2), required=False, default=()),
    },
    relations=(less("fmin_hz", "fmax_hz"), distinct("roles", ignore=("unknown",))),
)


def refused(value, pattern: str, *, spec=SPEC) -> str:
    with pytest.raises(InputError, match=pattern) as info:
        validate(spec, value, source="prosody.toml")
    message = str(info.value)
    assert "\n" not in message and message.startswith("prosody.toml: ")
    return message


def test_a_valid_table_comes_back_typed_with_defaults():
    out = validate(SPEC, {"fmin_hz": 50, "fmax_hz": 400.5, "roles": ["patient", "therapist"]}, source="f")
    assert out == {"fmin_hz": 50.0, "fmax_hz": 400.5, "beam": 5, "on": False, "when": None,
                   "roles": ("patient", "therapist")}
    assert isinstance(out["fmin_hz"], float)


def test_each_kind_of_problem_is_one_line_naming_the_key_and_the_fix():
    assert refused({"fmin_hz": 500, "fmax_hz": 600}, "fmin_hz=500 is out of range; use 40..400")
    refused({"fmin_hz": "50", "fmax_hz": 600}, r"fmin_hz='50' has the wrong type; use a number")
    refused({"fmin_hz": True, "fmax_hz": 600}, "fmin_hz=True has the wrong type")
    refused({"fmin_hz": 50, "fmax_hz": 600, "beam": 2.0}, "beam=2.0 has the wrong type; use an integer")
    refused({"fmin_hz": 50, "fmax_hz": 600, "bogus": 1}, "unknown key bogus; known keys: fmin_hz, fmax_hz")
    refused({"fmax_hz": 600}, "lacks fmin_hz")
    refused({"fmin_hz": 300, "fmax_hz": 200}, "fmin_hz must be below fmax_hz")
    refused({"fmin_hz": 50, "fmax_hz": 600, "roles": ["patient", "patient"]}, "roles may name each value once")
    refused({"fmin_hz": 50, "fmax_hz": 600, "roles": ["nurse"]}, r"roles\[0\]='nurse' is not allowed")
    refused({"fmin_hz": 50, "fmax_hz": 600, "when": "last tuesday"}, "not an ISO date")
    refused([1, 2], "holds a list where a table belongs")
    refused({"fmin_hz": 1e400 if False else float("inf"), "fmax_hz": 600}, "not a finite number")


def test_relations_inside_a_section_name_the_section():
    spec = Table({"prosody": SPEC})
    with pytest.raises(ConfigError, match=r"^c\.toml: prosody\.fmin_hz must be below prosody\.fmax_hz$"):
        validate(spec, {"prosody": {"fmin_hz": 300, "fmax_hz": 200}}, source="c.toml", error=ConfigError)


def test_unknown_roles_may_repeat_but_a_named_role_may_not():
    assert validate(SPEC, {"fmin_hz": 50, "fmax_hz": 600, "roles": ["unknown", "unknown"]}, source="f")
    refused({"fmin_hz": 50, "fmax_hz": 600, "roles": ["therapist", "therapist"]}, "each value once")


def test_names_that_are_not_utf8_or_very_long_stay_one_printable_line(tmp_path):
    odd = str(tmp_path).encode() + b"/bad\xff\nname.toml"
    shown = show(odd.decode("utf-8", "surrogateescape"))
    assert "\n" not in shown and "\\udcff" in shown and shown.encode("utf-8")
    with pytest.raises(InputError) as info:
        load_document(odd.decode("utf-8", "surrogateescape"), what="settings file")
    assert "\n" not in str(info.value) and "no such settings file" in str(info.value)
    str(info.value).encode("utf-8")  # printable on any terminal: no lone surrogates
    with pytest.raises(InputError, match="too long"):
        load_document(tmp_path / ("x" * 300 + ".toml"), what="settings file")


@pytest.mark.parametrize("content, pattern", [
    (b"\xff\xfe", "is not UTF-8 text"),
    (b"a = \n", "invalid TOML"),
    (b"x" * 10, "invalid TOML"),
])
def test_unreadable_documents_are_one_line(tmp_path, content, pattern):
    path = tmp_path / "f.toml"
    path.write_bytes(content)
    with pytest.raises(InputError, match=pattern) as info:
        load_document(path, what="settings file")
    assert "\n" not in str(info.value)


def test_json_nan_and_deep_nesting_are_refused(tmp_path):
    path = tmp_path / "f.json"
    path.write_text('{"a": NaN}')
    with pytest.raises(InputError, match="invalid JSON"):
        load_document(path, what="consent record")
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(InputError, match="invalid JSON|nested too deeply"):
        load_document(path, what="consent record")
    with pytest.raises(InputError, match="is a folder"):
        load_document(tmp_path, what="consent record")


def test_a_dataclass_declares_its_own_schema():
    @dataclasses.dataclass
    class Section:
        rate_hz: float = dataclasses.field(metadata={"lo": 1, "hi": 10})
        mode: str = dataclasses.field(metadata={"choices": ("a", "b")})
        names: tuple[str, ...] = ()
        limit: int | None = None

    spec = table_for_dataclass(Section)
    assert validate(spec, {"rate_hz": 2, "mode": "a"}, source="f") == {"rate_hz": 2.0, "mode": "a", "names": (),
                                                                        "limit": None}
    with pytest.raises(InputError, match="rate_hz=11 is out of range; use 1..10"):
        validate(spec, {"rate_hz": 11, "mode": "a"}, source="f")
    with pytest.raises(InputError, match="mode='c' is not allowed; use one of a, b"):
        validate(spec, {"rate_hz": 2, "mode": "c"}, source="f")
    with pytest.raises(InputError, match="limit='3' has the wrong type; use an integer"):
        validate(spec, {"rate_hz": 2, "mode": "a", "limit": "3"}, source="f")


def test_read_document_reads_and_checks(tmp_path):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"fmin_hz": 60, "fmax_hz": 300}))
    assert read_document(path, SPEC, what="profile")["fmax_hz"] == 300.0
    path.write_text(json.dumps({"fmin_hz": 60}))
    with pytest.raises(InputError, match=r"p\.json: lacks fmax_hz"):
        read_document(path, SPEC, what="profile")


# -- random structures ---------------------------------------------------------------------------------------

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), st.floats(), st.text(max_size=8))
structures = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.text(max_size=8), inner, max_size=5), max_leaves=20)
near_valid = st.fixed_dictionaries(
    {"fmin_hz": st.one_of(st.floats(0, 2000), scalars), "fmax_hz": st.one_of(st.floats(0, 2000), scalars)},
    optional={"beam": st.one_of(st.integers(-3, 20), scalars), "on": scalars,
              "when": st.one_of(st.sampled_from(["2026-11-26", "2026-11-26T10:00", "x"]), scalars),
              "roles": st.one_of(st.lists(st.sampled_from(ROLES + ("nurse",)), max_size=3), scalars),
              "extra": scalars})


def conforms(out: dict) -> bool:
    return (40 <= out["fmin_hz"] <= 400 and 100 <= out["fmax_hz"] <= 1000 and out["fmin_hz"] < out["fmax_hz"]
            and isinstance(out["beam"], int) and not isinstance(out["beam"], bool) and 1 <= out["beam"] <= 10
            and isinstance(out["on"], bool) and all(r in ROLES for r in out["roles"]) and len(out["roles"]) <= 2
            and all(math.isfinite(out[k]) for k in ("fmin_hz", "fmax_hz")))


@hsettings(max_examples=400, deadline=None)
@given(value=st.one_of(structures, near_valid))
def test_any_structure_is_accepted_only_when_it_conforms_else_refused_in_one_line(value):
    try:
        out = validate(SPEC, value, source="f.toml")
    except InputError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("f.toml: ")
        str(exc).encode("utf-8")
        return
    assert conforms(out), out
