"""Clinician profiles: --clinician on every command, validation, session.json record, writing."""

from __future__ import annotations

import hashlib
import json
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from session_monitor.cli.main import build_parser
from session_monitor.clinician.profiles import profile_data, read_profile, render_profile, write_profile
from session_monitor.clinician.tuning import SEARCH
from session_monitor.errors import ConfigError, InputError
from session_monitor.settings.loader import load_settings
from support.audio import SR, noise
from support.cli import refused, run_cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    """A folder with its own configs/ (defaults, markers, clinicians/): commands run there
    find their profiles in it and never touch the checkout's."""
    configs = tmp_path / "configs"
    (configs / "clinicians").mkdir(parents=True)
    for name in ("default.toml", "markers.toml"):
        shutil.copy(ROOT / "configs" / name, configs / name)
    return tmp_path


def _profile(workdir: Path, name: str, text: str) -> Path:
    path = workdir / "configs" / "clinicians" / f"{name}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _session(folder: Path) -> Path:
    folder.mkdir()
    (folder / "events.jsonl").write_text(json.dumps({"type": "session", "t": 60.0, "state": "ended", "source": "x",
                                                     "sample_rate": 16000, "channels": 2}) + "\n")
    (folder / "annotations.json").write_text("[]")
    return folder


def test_every_command_with_settings_takes_clinician():
    parser = build_parser()
    for argv in (["replay", "f.wav"], ["live"], ["evaluate", "s"], ["tune", "s1", "s2"]):
        assert parser.parse_args([*argv, "--clinician", "ana"]).clinician == "ana"


@pytest.mark.parametrize("command", ["evaluate", "tune", "replay"])
def test_invalid_profile_value_is_one_line_naming_file_key_and_range(workdir, command):
    _profile(workdir, "ana", "[fusion]\nalert_on = 1.4\n")
    session = _session(workdir / "s")
    args = {"evaluate": ["evaluate", str(session)], "tune": ["tune", str(session), str(session)],
            "replay": ["replay", str(workdir / "missing.wav"), "--session-dir", str(workdir / "out")]}[command]
    result = run_cli(*args, "--clinician", "ana", cwd=workdir)
    refused(result, "configs/clinicians/ana.toml: fusion.alert_on=1.4 is out of range; use 0..1")
    assert not (workdir / "out").exists()


def test_unknown_key_and_missing_profile(workdir):
    _profile(workdir, "ana", "[fusion]\nalert_onn = 0.6\n")
    session = _session(workdir / "s")
    refused(run_cli("evaluate", str(session), "--clinician", "ana", cwd=workdir), "unknown key fusion.alert_onn")
    refused(run_cli("evaluate", str(session), "--clinician", "bob", cwd=workdir), "bob.toml not found", "known: ana")
    refused(run_cli("evaluate", str(session), "--clinician", "../x", cwd=workdir), "use a plain name")


def test_load_settings_records_profile_name_path_and_hash(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    path = _profile(workdir, "ana", "[fusion]\nalert_on = 0.6\n")
    settings = load_settings(clinician="ana")
    assert settings.fusion.alert_on == 0.6
    assert settings.clinician.name == "ana" and Path(settings.clinician.path).resolve() == path.resolve()
    assert settings.clinician.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert load_settings().clinician is None
    assert "clinician" not in load_settings(clinician="ana").to_dict()


def test_session_json_records_the_profile_and_its_hash(workdir):
    path = _profile(workdir, "ana", "# ana's thresholds\n[fusion]\nalert_on = 0.6\n")
    audio = workdir / "quiet.wav"
    sf.write(audio, np.stack([noise(2 * SR), noise(2 * SR, seed=1)], axis=1), SR)
    out = workdir / "with"
    result = run_cli("replay", str(audio), "--no-asr", "--no-view", "--no-report", "--session-dir", str(out),
                     "--clinician", "ana", cwd=workdir)
    assert result.returncode == 0, result.stderr
    meta = json.loads((out / "session.json").read_text())
    record = meta["settings"]["clinician"]
    assert record["name"] == "ana"
    assert Path(workdir, record["path"]).resolve() == path.resolve()
    assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert meta["settings"]["values"]["fusion"]["alert_on"] == 0.6
    out2 = workdir / "without"
    result = run_cli("replay", str(audio), "--no-asr", "--no-view", "--no-report", "--session-dir", str(out2),
                     cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert json.loads((out2 / "session.json").read_text())["settings"]["clinician"] is None


def test_profile_text_round_trips_and_keeps_other_keys(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    path = _profile(workdir, "ana", "[evidence]\nlatency_min_s = 2.5\n\n[fusion]\ncue_cap = 0.35\nalert_on = 0.7\n"
                                    "\n[transcriber]\ndrop_phrases = [\"you\", \"so\"]\n")
    below = load_settings()
    fitted = load_settings(overrides={"fusion": {"alert_on": 0.5, "lexical_weight": 0.6, "cue_cap": 0.35}}).fusion
    data = profile_data(read_profile(path), fitted, below.fusion, tuple(p.key for p in SEARCH))
    # alert_on is back at its default: removed; the searched key that moved is written; others kept as they were
    assert data == {"evidence": {"latency_min_s": 2.5}, "fusion": {"cue_cap": 0.35, "lexical_weight": 0.6},
                    "transcriber": {"drop_phrases": ["you", "so"]}}
    text = render_profile(data, ["a header", "second line"])
    assert text.startswith("# a header\n# second line\n")
    assert tomllib.loads(text) == data
    assert load_settings(overrides=tomllib.loads(text)).fusion == fitted


def test_existing_profile_is_replaced_only_with_force_and_backed_up(tmp_path):
    path = tmp_path / "ana.toml"
    assert write_profile(path, "# one\n", force=False) is None
    with pytest.raises(InputError, match="exists; add --force"):
        write_profile(path, "# two\n", force=False)
    assert path.read_text() == "# one\n"
    backup = write_profile(path, "# two\n", force=True)
    assert path.read_text() == "# two\n" and backup.read_text() == "# one\n"
    assert backup.name.startswith("ana.toml.") and backup.suffix == ".bak"
    assert sorted(p.name for p in tmp_path.glob("*.toml")) == ["ana.toml"]  # a backup is not a profile


def test_unreadable_existing_profile_is_a_config_error(tmp_path):
    path = tmp_path / "ana.toml"
    path.write_text("[fusion\n")
    with pytest.raises(ConfigError, match="ana.toml: invalid TOML .*fix the syntax of the clinician profile"):
        read_profile(path)
