"""Random structures fed into every file ``replay`` reads by hand: exit 2, one line, nothing written.

Settings (``--config``), a clinician profile (``--clinician``) and the markers file
(``evidence.markers_file``) are TOML; each is generated from random nested structures and from
near-valid documents (the real keys, random values). The library is asked first; a document it
accepts is not this test's business (a valid run). Consent files and ``events.jsonl`` are
covered the same way in tests/session/test_consent.py and test_events_file.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import shutil
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from session_monitor.errors import ConfigError
from session_monitor.rupture.lexicon import load_lexicon
from session_monitor.settings.loader import SCHEMAS, default_config_path, load_settings
from support.audio import SHARED_DATA
from support.cli import run_cli

RECORDING = SHARED_DATA / "stereo_diarization.wav"
pytestmark = pytest.mark.skipif(not RECORDING.is_file(), reason=f"{RECORDING} is absent")

keys = st.text(string.ascii_lowercase + "_", min_size=1, max_size=10)
scalars = st.one_of(st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
                    st.text(string.printable.replace("\r", ""), max_size=8),
                    st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2100, 1, 1)))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
                      max_leaves=8)
sections = st.sampled_from(sorted(SCHEMAS))
near_valid_settings = st.dictionaries(
    sections, st.dictionaries(st.one_of(st.sampled_from(sorted({f for s in SCHEMAS.values() for f in s.fields})),
                                        keys), values, max_size=3), max_size=3)
marker_tables = st.fixed_dictionaries({}, optional={
    "kind": st.one_of(st.sampled_from(["withdrawal", "confrontation", "repair"]), values),
    "strength": st.one_of(st.floats(-1, 2), values), "explanation": st.one_of(st.text(max_size=8), values),
    "phrases": st.one_of(st.lists(st.text(string.ascii_lowercase + " *", max_size=8), max_size=3), values),
    "negated": values, "bogus": values})
near_valid_markers = st.fixed_dictionaries({}, optional={
    "matching": st.one_of(values, st.fixed_dictionaries({}, optional={
        "negators": values, "negation_window": st.one_of(st.integers(-2, 20), values), "weak_factor": values})),
    "lists": st.one_of(values, st.dictionaries(keys, values, max_size=2)),
    "patient": st.one_of(values, st.dictionaries(st.sampled_from(["denial", "minimal_response", "Bad Name", "x"]),
                                                 st.one_of(marker_tables, values), max_size=2)),
    "therapist": st.one_of(values, st.dictionaries(keys, st.one_of(marker_tables, values), max_size=2)),
    "colours": values})


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, dt.date)):
        return str(v) if not isinstance(v, int) else repr(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else "0.0"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") + '"'
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + "}"


def toml_document(doc) -> str:
    """Top-level tables become [sections]; anything else an inline value (maybe invalid TOML: fine)."""
    if not isinstance(doc, dict):
        return f"value = {toml_value(doc)}\n"
    lines = [f"{k} = {toml_value(v)}" for k, v in doc.items() if not isinstance(v, dict)]
    for k, v in doc.items():
        if isinstance(v, dict):
            lines.append(f"[{k}]")
            lines += [f"{kk} = {toml_value(vv)}" for kk, vv in v.items()]
    return "\n".join(lines) + "\n"


documents_settings = st.one_of(near_valid_settings.map(toml_document), values.map(toml_document),
                               st.text(max_size=60))
documents_markers = st.one_of(near_valid_markers.map(toml_document), values.map(toml_document))
common = hsettings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def refused_cleanly(result, folder: Path, *, before: set[str]) -> None:
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("session-monitor: error: "), result.stderr
    assert "Traceback" not in result.stderr
    assert {p.name for p in folder.iterdir()} == before  # nothing written, no session folder


@hsettings(common, max_examples=300)
@given(text=documents_settings)
def test_settings_files_are_applied_or_refused_in_one_line(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("cfg") / "c.toml"
    path.write_text(text)
    try:
        load_settings(path)
    except ConfigError as exc:
        assert "\n" not in str(exc) and "c.toml" in str(exc)


@hsettings(common, max_examples=300)
@given(text=documents_markers)
def test_markers_files_are_read_or_refused_in_one_line(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("markers") / "m.toml"
    path.write_text(text)
    try:
        load_lexicon(path)
    except ConfigError as exc:
        assert "\n" not in str(exc) and "m.toml" in str(exc)


@hsettings(common, max_examples=8)
@given(text=documents_settings)
def test_a_bad_settings_file_ends_replay_with_exit_2_one_line_and_nothing_written(tmp_path_factory, text):
    folder = tmp_path_factory.mktemp("run")
    path = folder / "c.toml"
    path.write_text(text)
    try:
        load_settings(path)
        assume(False)  # valid settings make a valid run
    except ConfigError:
        pass
    result = run_cli("replay", str(RECORDING), "--config", str(path), "--session-dir", str(folder / "s"),
                     "--no-asr", "--no-view")
    refused_cleanly(result, folder, before={"c.toml"})


@hsettings(common, max_examples=8)
@given(text=documents_markers)
def test_a_bad_markers_file_ends_replay_with_exit_2_one_line_and_nothing_written(tmp_path_factory, text):
    folder = tmp_path_factory.mktemp("run")
    markers = folder / "m.toml"
    markers.write_text(text)
    try:
        load_lexicon(markers)
        assume(False)
    except ConfigError:
        pass
    cfg = folder / "c.toml"
    cfg.write_text(f'[evidence]\nmarkers_file = "{markers}"\n')
    result = run_cli("replay", str(RECORDING), "--config", str(cfg), "--session-dir", str(folder / "s"),
                     "--no-asr", "--no-view")
    refused_cleanly(result, folder, before={"c.toml", "m.toml"})


@hsettings(common, max_examples=8)
@given(text=documents_settings)
def test_a_bad_clinician_profile_ends_replay_with_exit_2_one_line_and_nothing_written(tmp_path_factory, text):
    root = tmp_path_factory.mktemp("checkout")
    (root / "configs" / "clinicians").mkdir(parents=True)
    shutil.copy(default_config_path(), root / "configs" / "default.toml")
    shutil.copy(default_config_path().with_name("markers.toml"), root / "configs" / "markers.toml")
    profile = root / "configs" / "clinicians" / "ana.toml"
    profile.write_text(text)
    try:
        load_settings(profile)
        assume(False)
    except ConfigError:
        pass
    result = run_cli("replay", str(RECORDING), "--clinician", "ana", "--session-dir", str(root / "s"),
                     "--no-asr", "--no-view", cwd=root)
    refused_cleanly(result, root, before={"configs"})
    assert "ana.toml" in result.stderr


def test_a_role_named_twice_or_a_minimum_above_its_maximum_is_refused(tmp_path):
    path = tmp_path / "c.toml"
    for text, pattern in [
        ('[roles]\nstereo = ["patient", "patient"]\n', r"c\.toml: roles\.stereo may name each value once"),
        ('[roles]\nstereo = ["patient", "nurse"]\n', "roles.stereo may name only therapist, patient or unknown"),
        ("[attribution]\nenrol_min_s = 50.0\nenrol_max_s = 30.0\n",
         "attribution.enrol_min_s must be at most attribution.enrol_max_s"),
        ("[evidence]\nbaseline_min_n = 40\nbaseline_n = 10\n", "evidence.baseline_min_n must be at most"),
        ("[prosody]\nhop_ms = 40\nframe_ms = 20\n", "prosody.hop_ms must be at most prosody.frame_ms"),
    ]:
        path.write_text(text)
        with pytest.raises(ConfigError, match=pattern) as info:
            load_settings(path)
        assert "\n" not in str(info.value)
    path.write_text('[roles]\nstereo = ["unknown", "unknown"]\n')
    assert load_settings(path).roles.stereo == ("unknown", "unknown")


def test_every_settings_field_is_declared_in_a_schema():
    """A new setting cannot skip validation: its section's schema comes from the dataclass itself."""
    loaded = load_settings()
    for name, schema in SCHEMAS.items():
        assert set(schema.fields) == {f.name for f in dataclasses.fields(getattr(loaded, name))}
