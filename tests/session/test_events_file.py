"""events.jsonl is read line by line against each event type's schema; a line that is not an event is named."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from session_monitor.errors import SessionDirError
from session_monitor.event_log import EVENT_SCHEMAS, read_events
from session_monitor.events import EVENT_TYPES, Annotation, Signal, Speech, Transcript, Word, event_to_json
from support.cli import run_cli

GOOD = [
    Speech(t=1.2, speaker="patient", start=0.5, end=1.2),
    Transcript(t=1.5, speaker="patient", start=0.5, end=1.2, text="fine",
               words=(Word(0.5, 1.2, "fine", 0.9),)),
    Signal(t=2.0, likelihood=float("nan"), withdrawal=0.1, confrontation=0.0),  # NaN is written as null
    Annotation(t=3.0, label="rupture", source="dashboard"),
]


def write(folder, lines: list[str]) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "events.jsonl").write_text("".join(line + "\n" for line in lines))


def test_every_event_type_has_a_schema_from_its_dataclass():
    assert set(EVENT_SCHEMAS) == set(EVENT_TYPES)
    assert {"t", "speaker", "start", "end", "text", "words"} <= set(EVENT_SCHEMAS["transcript"].fields)


def test_events_as_written_read_back_unchanged(tmp_path):
    lines = [event_to_json(e) for e in GOOD] + ['{"type": "speech", "t": 4']  # a torn last line: a crash
    write(tmp_path, lines)
    assert read_events(tmp_path) == [json.loads(line) for line in lines[:-1]]
    write(tmp_path, [event_to_json(GOOD[0]), '{"type": "future_kind", "t": 5, "x": 1}'])  # new types pass
    assert len(read_events(tmp_path)) == 2


@pytest.mark.parametrize("line, pattern", [
    ("42", "line 2: holds a number where an event"),
    ('{"t": 1}', "line 2: lacks type"),
    ('{"type": "speech", "t": "soon", "speaker": "patient", "start": 0, "end": 1}', "line 2: t='soon' has the wrong"),
    ('{"type": "speech", "t": 1, "speaker": "patient", "start": 0}', "line 2: lacks end"),
    ('{"type": "transcript", "t": 1, "speaker": "p", "start": 0, "end": 1, "text": 3}', "text=3 has the wrong type"),
    ('{"type": "transcript", "t": 1, "speaker": "p", "start": 0, "end": 1, "text": "", "words": [{"word": 1}]}',
     r"words\[0\]"),
    ("not json", "line 2 is not valid JSON"),
])
def test_a_line_that_is_not_an_event_is_named_and_the_report_writes_nothing(tmp_path, line, pattern):
    write(tmp_path, [event_to_json(GOOD[0]), line, event_to_json(GOOD[3])])
    with pytest.raises(SessionDirError, match=pattern) as info:
        read_events(tmp_path)
    assert "\n" not in str(info.value)
    result = run_cli("report", str(tmp_path))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "line 2" in result.stderr
    assert sorted(os.listdir(tmp_path)) == ["events.jsonl"]


scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 10**6), st.floats(), st.text(max_size=6),
                    st.sampled_from(sorted(EVENT_TYPES) + ["patient", "therapist"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=10)
event_like = st.fixed_dictionaries(
    {"type": st.sampled_from(sorted(EVENT_TYPES))},
    optional={k: values for k in ("t", "speaker", "start", "end", "text", "words", "likelihood", "state", "label",
                                  "source", "kind", "marker", "strength", "explanation", "evidence")})
lines = st.one_of(values.map(json.dumps), event_like.map(json.dumps), st.text(max_size=20))


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.lists(lines, min_size=1, max_size=5))
def test_any_events_file_is_read_or_refused_in_one_line(tmp_path_factory, body):
    folder = tmp_path_factory.mktemp("s")
    write(folder, [line.replace("\n", " ").replace("\r", " ") for line in body])
    try:
        evs = read_events(folder)
    except SessionDirError as exc:
        assert "\n" not in str(exc) and "events.jsonl: line " in str(exc)
        return
    for e in evs:
        assert isinstance(e, dict) and isinstance(e["type"], str) and isinstance(e["t"], (int, float))
        assert not isinstance(e["t"], bool)


@hsettings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(line=st.one_of(values.map(json.dumps), event_like.map(json.dumps)))
def test_report_on_a_damaged_events_file_exits_2_with_one_line_and_writes_nothing(tmp_path_factory, line):
    folder = tmp_path_factory.mktemp("s")
    write(folder, [event_to_json(GOOD[0]), line, event_to_json(GOOD[3])])
    try:
        read_events(folder)
        return  # a valid file: the report's own tests cover it
    except SessionDirError:
        pass
    result = run_cli("report", str(folder))
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert sorted(os.listdir(folder)) == ["events.jsonl"]
