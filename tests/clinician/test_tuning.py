"""``tune``: the search, its cross-validation, the profile it writes, and its errors.

Fast tests run on synthetic sessions (tune_helpers: events with planted ruptures, no
audio). The slow test tunes on replayed demo sessions (the shared ``replayed`` fixture,
one replay per sample per run) and checks the written profile with ``evaluate --rerun``.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from session_monitor.cli.main import main
from session_monitor.cli.tune import _row
from session_monitor.clinician.fusion_rerun import (
    SCORE_KEYS,
    batch_levels,
    hysteresis_spans,
    record_trace,
    replay_alerts,
)
from session_monitor.clinician.metrics import alert_episodes, rerun_alerts
from session_monitor.event_log import read_events
from session_monitor.rupture.fusion import Fusion
from session_monitor.settings.loader import load_settings
from support.tuning import write_annotations, write_session

ROOT = Path(__file__).resolve().parents[2]
BAD = "[fusion]\nalert_on = 0.9\n"  # above max_score (0.85), where the scores saturate: nothing ever alerts


@pytest.fixture()
def workdir(tmp_path: Path) -> Path:
    configs = tmp_path / "configs"
    (configs / "clinicians").mkdir(parents=True)
    for name in ("default.toml", "markers.toml"):
        shutil.copy(ROOT / "configs" / name, configs / name)
    return tmp_path


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> list[Path]:
    """Four sessions, annotations.json in each: both kinds, withdrawal, confrontation, calm."""
    root = tmp_path_factory.mktemp("synthetic")
    out = []
    for name, kw in [("both", {}), ("withdrawal", {"confrontation": False, "gap_s": 4.2}),
                     ("confrontation", {"withdrawal": False}), ("calm", {"withdrawal": False, "confrontation": False})]:
        folder = root / name
        ruptures = write_session(folder, **kw)
        write_annotations(folder / "annotations.json", ruptures)
        out.append(folder)
    return out


def _copies(sessions: list[Path], into: Path) -> list[Path]:
    out = []
    for s in sessions:
        shutil.copytree(s, into / s.name)
        out.append(into / s.name)
    return out


def _tune(workdir: Path, monkeypatch, capsys, *args: str) -> tuple[int, dict | None, str]:
    monkeypatch.chdir(workdir)
    code = main(["tune", *args])
    captured = capsys.readouterr()
    data = json.loads(captured.out) if code == 0 and "--json" in args else None
    return code, data, captured.err


def _pooled_from_evaluate(sessions: list[Path], annotations: list[Path | None], clinician: str, capsys) -> dict:
    """Re-run the model with the profile over each session (evaluate --rerun) and pool the counts."""
    results = []
    for folder, ann in zip(sessions, annotations):
        argv = ["evaluate", str(folder), "--rerun", "--clinician", clinician, "--json"]
        if ann is not None:
            argv += ["--annotations", str(ann)]
        assert main(argv) == 0
        results.append(json.loads(capsys.readouterr().out))
    alerts = sum(r["alerts"] for r in results)
    fa = sum(r["false_alarms"] for r in results)
    ruptures = sum(r["ruptures"] for r in results)
    detected = sum(r["detected"] for r in results)
    delay = sum((r["mean_delay_s"] or 0.0) * r["detected"] for r in results)
    duration = sum(r["duration_s"] for r in results)
    precision = (alerts - fa) / alerts if alerts else None
    recall = detected / ruptures if ruptures else None
    f1 = None if precision is None or recall is None else \
        (0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall))
    return {"precision": precision, "recall": recall, "f1": f1, "mean_delay_s": delay / detected if detected else None,
            "false_alarms_per_hour": fa / (duration / 3600.0), "ruptures": ruptures, "detected": detected,
            "alerts": alerts, "false_alarms": fa, "duration_s": duration}


# -- the fast search agrees with the real fusion ---------------------------------------------------------------

VARIANTS = [{}, {"alert_on": 0.45, "evidence_tau_s": 20.0, "release_s": 0.5},
            {"lexical_weight": 1.0, "timing_weight": 0.1, "attack_s": 1.0, "repair_damping": 1.0, "off_hold_s": 0.0},
            {"engaged_factor": 0.1, "max_score": 0.6, "alert_on": 0.55, "alert_off": 0.5, "therapist_weight": 0.0}]


def test_batch_levels_and_alerts_match_the_real_fusion(synthetic):
    settings = load_settings()
    variants = [dataclasses.replace(settings.fusion, **v) for v in VARIANTS]
    for folder in synthetic:
        events = read_events(folder)
        _, duration = alert_episodes(events)
        trace = record_trace(events, settings, tick_s=0.096, end_t=duration)
        levels = batch_levels(trace, {k: np.array([getattr(v, k) for v in variants]) for k in SCORE_KEYS})
        for j, fs in enumerate(variants):
            fusion, exact = Fusion(fs), []
            for op, arg in trace.ops:
                if op == 2:
                    fusion.tick(arg)
                    exact.append([fusion.smooth["withdrawal"], fusion.smooth["confrontation"]])
                elif op == 0:
                    fusion.add(arg)
                else:
                    fusion.engaged()
            np.testing.assert_allclose(levels[:, :, j], np.array(exact), rtol=0, atol=1e-9)
            spans = sorted((on, off, kind) for k, kind in enumerate(("withdrawal", "confrontation"))
                           for on, off in hysteresis_spans(trace.times, levels[:, k, j], alert_on=fs.alert_on,
                                                      alert_off=fs.alert_off, off_hold_s=fs.off_hold_s,
                                                      end_t=duration))
            real = [{"type": "alert", "t": a.t, "state": a.state, "kind": a.kind} for a in replay_alerts(trace, fs)]
            episodes, _ = alert_episodes(real + [{"type": "session", "state": "ended", "t": duration}])
            assert spans == sorted((a.start, a.end, a.kind) for a in episodes)
            # and the trace re-run is the whole model re-run (what evaluate --rerun does)
            whole = rerun_alerts(events, dataclasses.replace(settings, fusion=fs), tick_s=0.096)
            assert whole == episodes


# -- errors ------------------------------------------------------------------------------------------------------

def test_too_few_annotated_sessions(workdir, synthetic, tmp_path, monkeypatch, capsys):
    bare = tmp_path / "bare"
    shutil.copytree(synthetic[0], bare)
    (bare / "annotations.json").unlink()  # and no dashboard presses: not annotated
    code, _, err = _tune(workdir, monkeypatch, capsys, "--clinician", "ana", str(synthetic[1]), str(bare))
    assert code == 2
    lines = err.strip().splitlines()
    assert any("warning:" in line and "no annotations" in line and "left out" in line for line in lines)
    assert lines[-1].startswith("session-monitor: error: tune needs at least 2 annotated sessions")
    assert not (workdir / "configs" / "clinicians" / "ana.toml").exists()


def test_no_positive_intervals(workdir, synthetic, monkeypatch, capsys):
    empty = workdir / "empty.json"
    empty.write_text("[]")
    code, _, err = _tune(workdir, monkeypatch, capsys, "--clinician", "ana", str(synthetic[0]), str(synthetic[3]),
                         "--annotations", f"{empty},-")
    assert code == 2
    assert err.strip().splitlines()[-1].startswith("session-monitor: error: the 2 annotated sessions hold no rupture")
    assert not (workdir / "configs" / "clinicians" / "ana.toml").exists()


@pytest.mark.parametrize("args, message", [
    (["--annotations", "a.json"], "--annotations names 1 file(s) for 2 session(s)"),
    (["--max-false-alarms-per-hour", "3"], "goes with --objective recall"),
    (["--objective", "recall", "--max-false-alarms-per-hour", "-1"], "out of range"),
])
def test_bad_options_are_one_line_errors(workdir, synthetic, monkeypatch, capsys, args, message):
    code, _, err = _tune(workdir, monkeypatch, capsys, "--clinician", "ana", str(synthetic[0]), str(synthetic[1]),
                         *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_existing_profile_needs_force(workdir, synthetic, monkeypatch, capsys):
    (workdir / "configs" / "clinicians" / "ana.toml").write_text(BAD)
    code, _, err = _tune(workdir, monkeypatch, capsys, "--clinician", "ana", *map(str, synthetic))
    assert code == 2 and "ana.toml exists; add --force" in err
    assert (workdir / "configs" / "clinicians" / "ana.toml").read_text() == BAD


def test_dry_run_writes_nothing(workdir, synthetic, monkeypatch, capsys):
    clinicians = workdir / "configs" / "clinicians"
    (clinicians / "ana.toml").write_text(BAD)
    before = {p.name: p.read_bytes() for p in clinicians.iterdir()}
    monkeypatch.chdir(workdir)
    assert main(["tune", "--clinician", "ana", *map(str, synthetic), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "after, cross-validated" in out and "dry run:" in out and "not written" in out
    assert "# Written by `session-monitor tune`" in out  # the profile it would write
    assert {p.name: p.read_bytes() for p in clinicians.iterdir()} == before
    assert main(["tune", "--clinician", "bob", *map(str, synthetic), "--dry-run"]) == 0
    assert not (clinicians / "bob.toml").exists()


# -- tuning ------------------------------------------------------------------------------------------------------

def test_tune_fixes_bad_thresholds_and_the_profile_reproduces_its_figures(workdir, synthetic, monkeypatch, capsys):
    clinicians = workdir / "configs" / "clinicians"
    (clinicians / "ana.toml").write_text("# ana, by hand\n" + BAD)
    code, data, _ = _tune(workdir, monkeypatch, capsys, "--clinician", "ana", *map(str, synthetic), "--force",
                          "--json")
    assert code == 0
    assert data["before"]["recall"] == 0.0 and data["before"]["alerts"] == 0
    assert data["after_cv"]["f1"] > 0.8 and data["after_cv"]["recall"] == 1.0
    assert "alert_on" in data["changes"]
    backups = list(clinicians.glob("ana.toml.*.bak"))
    assert len(backups) == 1 and backups[0].read_text() == "# ana, by hand\n" + BAD
    text = (clinicians / "ana.toml").read_text()
    assert "Written by `session-monitor tune`" in text and "cross-validated" in text
    assert all(str(s) in text for s in synthetic)
    assert text == data["profile_text"]
    assert _pooled_from_evaluate(synthetic, [None] * 4, "ana", capsys) == data["in_sample"]
    # starting from the written profile again: it is already the best found
    code, again, _ = _tune(workdir, monkeypatch, capsys, "--clinician", "ana", *map(str, synthetic), "--dry-run",
                           "--json")
    assert code == 0 and again["changes"] == {} and again["before"] == data["in_sample"]


def test_tune_from_dashboard_presses(workdir, synthetic, tmp_path, monkeypatch, capsys):
    sessions = _copies(synthetic, tmp_path)
    for folder in sessions:
        ruptures = json.loads((folder / "annotations.json").read_text())
        (folder / "annotations.json").unlink()
        with (folder / "events.jsonl").open("a") as f:  # a press at the end of each rupture; calm: a lone false alarm
            for r in ruptures:
                f.write(json.dumps({"type": "annotation", "t": r["end"], "label": "rupture", "source": "dashboard",
                                    "note": ""}) + "\n")
            if not ruptures:
                f.write(json.dumps({"type": "annotation", "t": 30.0, "label": "false_alarm", "source": "dashboard",
                                    "note": ""}) + "\n")
    code, data, _ = _tune(workdir, monkeypatch, capsys, "--clinician", "ana", *map(str, sessions), "--json")
    assert code == 0
    assert [s["annotations"] for s in data["sessions"]] == ["dashboard"] * 4
    assert data["before"]["ruptures"] == 4
    assert _pooled_from_evaluate(sessions, [None] * 4, "ana", capsys) == data["in_sample"]


def _f1(row: str) -> float:
    value = row.split()[-5]  # columns from the right: F1, delay, FA/h, detected, alerts
    return 0.0 if value == "-" else float(value)


@pytest.mark.slow
def test_tuning_demo_sessions_improves_cross_validated_f1(replayed, workdir, monkeypatch, capsys):
    names = ["demo_session", "confrontation_repair", "calm_reflective"]
    sessions = [replayed(n) for n in names]
    truths = [ROOT / "sample_audio" / f"{n}.truth.json" for n in names]
    (workdir / "configs" / "clinicians" / "ana.toml").write_text(BAD)
    monkeypatch.chdir(workdir)
    argv = ["tune", "--clinician", "ana", *map(str, sessions), "--annotations", ",".join(map(str, truths))]
    assert main([*argv, "--force"]) == 0
    table = capsys.readouterr().out
    with capsys.disabled():
        print(table)  # the before/after table, for the closing note (pytest -s)
    rows = table.splitlines()
    assert rows[1].startswith("before (profile ana.toml)") and rows[2].startswith("after, cross-validated")
    assert _f1(rows[2]) > _f1(rows[1]) and _f1(rows[2]) >= 0.8
    # the written profile, re-run over the saved events by evaluate, gives exactly the figures reported
    pooled = _pooled_from_evaluate(sessions, truths, "ana", capsys)
    assert _row("after, in-sample (the profile)", pooled) == rows[3]
    assert main([*argv, "--dry-run", "--json"]) == 0  # from the written profile: nothing left to change
    again = json.loads(capsys.readouterr().out)
    assert again["before"] == pooled and again["changes"] == {}
