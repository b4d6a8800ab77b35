"""``evaluate`` on a hand-made session with known answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from session_monitor.cli.main import main
from session_monitor.clinician.metrics import Interval, evaluate, load_annotations
from session_monitor.errors import InputError
from session_monitor.settings.loader import EvaluateSettings

# half an hour of session; alerts (kind, on, off) and annotated ruptures (kind, start, end)
ALERTS = [("confrontation", 95, 110),  # wrong kind over R1: a false alarm when kinds must match
          ("withdrawal", 104, 158),  # R1, 4 s late
          ("withdrawal", 163, 180),  # starts within the 5 s tolerance after R1: matched too
          ("confrontation", 433, 450),  # starts 3 s after R2 ended: matched, 33 s after its start
          ("confrontation", 600, 620),  # false alarm
          ("withdrawal", 1200, None)]  # false alarm, still on at the end of the session
RUPTURES = [{"start": 100, "end": 160, "kind": "withdrawal", "marker": "minimal_response", "note": "R1"},
            {"start": 400, "end": 430, "kind": "confrontation", "marker": "defending_self", "note": "R2"},
            {"start": 1000, "end": 1050, "kind": "withdrawal", "marker": "denial", "note": "R3, missed"}]

STRICT = EvaluateSettings(tolerance_s=5.0, match_kind=True)


@pytest.fixture()
def session(tmp_path: Path) -> Path:
    folder = tmp_path / "session"
    folder.mkdir()
    events = [{"type": "session", "t": 0.0, "state": "started", "source": "x", "sample_rate": 16000,
               "channels": 2}]
    for kind, on, off in ALERTS:
        events.append({"type": "alert", "t": float(on), "state": "on", "kind": kind})
        if off is not None:
            events.append({"type": "alert", "t": float(off), "state": "off", "kind": kind})
    events.append({"type": "signal", "t": 900.0, "likelihood": 0.1, "withdrawal": 0.1, "confrontation": 0.0,
                   "evidence": []})
    events.sort(key=lambda e: e["t"])
    events.append({"type": "session", "t": 1800.0, "state": "ended", "source": "x", "sample_rate": 16000,
                   "channels": 2})
    (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    return folder


@pytest.fixture()
def truth_json(tmp_path: Path) -> Path:
    path = tmp_path / "truth.json"
    path.write_text(json.dumps({"session": "x", "ruptures": RUPTURES, "repairs": []}), encoding="utf-8")
    return path


def test_known_figures(session, truth_json):
    r = evaluate(session, truth_json, STRICT)
    assert r["precision"] == pytest.approx(3 / 6)
    assert r["recall"] == pytest.approx(2 / 3)
    assert r["f1"] == pytest.approx(4 / 7)
    assert r["mean_delay_s"] == pytest.approx((4 + 33) / 2)
    assert r["false_alarms_per_hour"] == pytest.approx(3 / 0.5)
    assert (r["ruptures"], r["detected"], r["alerts"], r["false_alarms"]) == (3, 2, 6, 3)
    w, c = r["by_kind"]["withdrawal"], r["by_kind"]["confrontation"]
    assert (w["precision"], w["recall"], w["mean_delay_s"], w["false_alarms_per_hour"]) == \
        pytest.approx((2 / 3, 1 / 2, 4.0, 2.0))
    assert w["f1"] == pytest.approx(4 / 7)
    assert (c["precision"], c["recall"], c["f1"], c["mean_delay_s"], c["false_alarms_per_hour"]) == \
        pytest.approx((1 / 3, 1.0, 0.5, 33.0, 4.0))


def test_kind_need_not_match_when_configured(session, truth_json):
    r = evaluate(session, truth_json, EvaluateSettings(tolerance_s=5.0, match_kind=False))
    assert r["precision"] == pytest.approx(4 / 6)
    assert r["mean_delay_s"] == pytest.approx((0 + 33) / 2)  # the early wrong-kind alert was already on


def test_tolerance_zero(session, truth_json):
    r = evaluate(session, truth_json, EvaluateSettings(tolerance_s=0.0, match_kind=True))
    # 163 > 160: a false alarm now; 433 > 430: R2 missed
    assert r["precision"] == pytest.approx(1 / 6)
    assert r["recall"] == pytest.approx(1 / 3)


def test_no_alerts_and_no_ruptures_give_nulls(tmp_path):
    folder = tmp_path / "calm"
    folder.mkdir()
    (folder / "events.jsonl").write_text(json.dumps({"type": "session", "t": 600.0, "state": "ended",
                                                     "source": "x", "sample_rate": 16000, "channels": 2}) + "\n")
    r = evaluate(folder, [], STRICT)
    assert r["precision"] is None and r["recall"] is None and r["f1"] is None and r["mean_delay_s"] is None
    assert r["false_alarms_per_hour"] == 0.0


def test_three_annotation_formats_agree(tmp_path, truth_json):
    as_list = tmp_path / "list.json"
    as_list.write_text(json.dumps(RUPTURES), encoding="utf-8")
    as_csv = tmp_path / "ruptures.csv"
    as_csv.write_text("start,end,kind,marker,note\n" + "".join(
        f"{r['start']},{r['end']},{r['kind']},{r['marker']},\"{r['note']}\"\n" for r in RUPTURES), encoding="utf-8")
    expected = [Interval(100.0, 160.0, "withdrawal", "minimal_response", "R1"),
                Interval(400.0, 430.0, "confrontation", "defending_self", "R2"),
                Interval(1000.0, 1050.0, "withdrawal", "denial", "R3, missed")]
    assert load_annotations(truth_json) == load_annotations(as_list) == load_annotations(as_csv) == expected


def test_demo_truth_file_is_accepted():
    root = Path(__file__).resolve().parents[2]
    ruptures = load_annotations(root / "sample_audio" / "demo_session.truth.json")
    assert {r.kind for r in ruptures} == {"withdrawal", "confrontation"}


@pytest.mark.parametrize("content, message", [
    ('{"ruptures": [{"start": 5, "end": 3, "kind": "withdrawal"}]}', "end 3 is not after start 5"),
    ('[{"start": 5, "end": 8, "kind": "anger"}]', "kind='anger' is not allowed; use withdrawal or confrontation"),
    ('[{"start": 5, "kind": "withdrawal"}]', "lacks end"),
    ('[{"start": "soon", "end": 8, "kind": "withdrawal"}]', "start='soon' has the wrong type; use a number"),
    ('[{"start": true, "end": 8, "kind": "withdrawal"}]', "start=True has the wrong type"),
    ('[{"start": 1, "end": Infinity, "kind": "withdrawal"}]', "end=inf is not a finite number"),
    ('{"repairs": []}', "needs a 'ruptures' list"),
    ('{"ruptures": [', "invalid JSON"),
    ("begin,finish,type\n1,2,withdrawal\n", "CSV needs a header with start,end,kind"),
])
def test_bad_annotations_are_one_line_errors(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message) as info:
        load_annotations(path)
    assert "\n" not in str(info.value)


def test_cli_json(session, truth_json, capsys):
    assert main(["evaluate", str(session), "--annotations", str(truth_json), "--json"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    data = json.loads(out[0])
    assert {"precision", "recall", "f1", "mean_delay_s", "false_alarms_per_hour", "by_kind"} <= set(data)
    assert data["f1"] == pytest.approx(4 / 7)
    assert set(data["by_kind"]) == {"withdrawal", "confrontation"}


def test_cli_table(session, truth_json, capsys):
    assert main(["evaluate", str(session), "--annotations", str(truth_json)]) == 0
    out = capsys.readouterr().out
    assert "precision" in out and "withdrawal" in out and "confrontation" in out


def test_cli_bad_input_exits_2(session, tmp_path, capsys):
    assert main(["evaluate", str(session), "--annotations", str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("session-monitor: error:") and "no such file" in err and "\n" not in err
    assert main(["evaluate", str(tmp_path / "nowhere"), "--annotations", str(tmp_path / "x")]) == 2
