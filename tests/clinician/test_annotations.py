"""Annotations from the dashboard's buttons, and where evaluate/tune find a session's annotations."""

from __future__ import annotations

import itertools
import json

import pytest

from session_monitor.cli.main import main
from session_monitor.clinician.annotations import (
    PRESS_WINDOW_S,
    dashboard_intervals,
    require_annotations,
    session_annotations,
)
from session_monitor.clinician.metrics import Interval, alert_episodes, evaluate, load_annotations, score
from session_monitor.errors import InputError
from session_monitor.settings.loader import EvaluateSettings

STRICT = EvaluateSettings(tolerance_s=5.0, match_kind=True)


def alert(t, state, kind):
    return {"type": "alert", "t": float(t), "state": state, "kind": kind}


def press(t, label):
    return {"type": "annotation", "t": float(t), "label": label, "source": "dashboard", "note": ""}


def ended(t):
    return {"type": "session", "t": float(t), "state": "ended", "source": "x", "sample_rate": 16000, "channels": 2}


def intervals(events):
    found = dashboard_intervals(sorted(events, key=lambda e: e["t"]), tolerance_s=5.0)
    assert found is not None
    return found


def test_no_presses_is_not_annotated():
    assert dashboard_intervals([alert(10, "on", "withdrawal"), ended(60)], tolerance_s=5.0) is None


def test_rupture_press_during_an_alert_takes_its_kind():
    found, false_alarms = intervals([alert(100, "on", "confrontation"), press(130, "rupture"),
                                     alert(150, "off", "confrontation"), ended(600)])
    assert found == [Interval(130 - PRESS_WINDOW_S, 130.0, "confrontation", "", "dashboard press at 130.0 s")]
    assert false_alarms == 0


def test_rupture_press_just_after_an_alert_ended_takes_its_kind():
    found, _ = intervals([alert(100, "on", "withdrawal"), alert(120, "off", "withdrawal"), press(124, "rupture"),
                          ended(600)])
    assert [r.kind for r in found] == ["withdrawal"]


def test_rupture_press_without_alert_is_unknown_and_starts_at_zero_at_most():
    found, _ = intervals([press(12, "rupture"), ended(600)])
    assert [(r.start, r.end, r.kind) for r in found] == [(0.0, 12.0, "unknown")]


def test_false_alarm_press_keeps_a_later_rupture_window_off_that_alert():
    events = [alert(100, "on", "withdrawal"), press(104, "false_alarm"), alert(110, "off", "withdrawal"),
              press(125, "rupture"), ended(600)]
    found, false_alarms = intervals(events)
    assert false_alarms == 1
    assert len(found) == 1 and found[0].start == pytest.approx(110.001) and found[0].end == 125.0
    r = evaluate_events(events, found)
    assert (r["alerts"], r["false_alarms"], r["detected"]) == (1, 1, 0)


def test_rupture_press_on_an_alert_marked_false_overrides_it():
    found, false_alarms = intervals([alert(100, "on", "withdrawal"), press(104, "false_alarm"),
                                     press(108, "rupture"), alert(110, "off", "withdrawal"), ended(600)])
    assert false_alarms == 0
    assert [(r.start, r.end, r.kind) for r in found] == [(88.0, 108.0, "withdrawal")]


def test_close_presses_merge_and_different_kinds_do_not_overlap():
    found, _ = intervals([press(50, "rupture"), press(60, "rupture"),  # unknown + unknown: merged
                          alert(200, "on", "withdrawal"), press(205, "rupture"), alert(206, "off", "withdrawal"),
                          alert(207, "on", "confrontation"), press(215, "rupture"),
                          alert(230, "off", "confrontation"), ended(600)])
    assert (found[0].start, found[0].end, found[0].kind) == (30.0, 60.0, "unknown")
    w, c = found[1], found[2]
    assert (w.kind, w.start, w.end) == ("withdrawal", 185.0, 205.0)
    assert c.kind == "confrontation" and c.start == pytest.approx(205.001) and c.end == 215.0
    for a, b in itertools.pairwise(found):
        assert b.start >= a.end


def evaluate_events(events, ruptures):
    alerts, duration = alert_episodes(sorted(events, key=lambda e: e["t"]))
    return score(alerts, ruptures, duration, STRICT)


def test_unknown_kind_matches_either_kind_and_is_reported_apart(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    events = [alert(100, "on", "confrontation"), alert(120, "off", "confrontation"), press(110, "rupture"),
              alert(300, "on", "withdrawal"), alert(320, "off", "withdrawal"), press(400, "rupture"), ended(1800)]
    # the press at 110 is during a confrontation alert; the one at 400 is unknown and missed
    (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in sorted(events, key=lambda e: e["t"])))
    found = require_annotations(folder, settings=STRICT)
    assert found.source == "dashboard"
    r = evaluate(folder, found.intervals, STRICT)
    assert (r["alerts"], r["false_alarms"], r["ruptures"], r["detected"]) == (2, 1, 2, 1)
    assert set(r["by_kind"]) == {"withdrawal", "confrontation", "unknown"}
    assert r["by_kind"]["unknown"]["recall"] == 0.0


def test_unknown_press_matches_an_alert_of_any_kind():
    ruptures = [Interval(80.0, 100.0, "unknown")]
    events = [alert(95, "on", "withdrawal"), alert(110, "off", "withdrawal"), ended(600)]
    r = evaluate_events(events, ruptures)
    assert (r["detected"], r["false_alarms"]) == (1, 0)


def test_session_file_beats_dashboard_and_explicit_file_beats_both(tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "events.jsonl").write_text(json.dumps(press(50, "rupture")) + "\n" + json.dumps(ended(100)) + "\n")
    assert session_annotations(folder, settings=STRICT).source == "dashboard"
    (folder / "annotations.csv").write_text("start,end,kind\n10,20,withdrawal\n")
    assert session_annotations(folder, settings=STRICT).source.endswith("annotations.csv")
    other = tmp_path / "other.json"
    other.write_text("[]")
    assert session_annotations(folder, other, settings=STRICT).intervals == []


def test_session_without_annotations_is_a_one_line_error(tmp_path, capsys):
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "events.jsonl").write_text(json.dumps(ended(100)) + "\n")
    assert session_annotations(folder, settings=STRICT) is None
    with pytest.raises(InputError, match="no annotations"):
        require_annotations(folder, settings=STRICT)
    assert main(["evaluate", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert "no annotations" in err and "\n" not in err


def test_overlapping_intervals_are_refused(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("start,end,kind\n1,5,withdrawal\n4,8,confrontation\n")
    with pytest.raises(InputError, match="overlap") as info:
        load_annotations(path)
    assert "\n" not in str(info.value)
    path.write_text("start,end,kind\n1,5,withdrawal\n5,8,confrontation\n")  # touching is fine
    assert len(load_annotations(path)) == 2


def test_evaluate_cli_uses_the_dashboard_presses(tmp_path, capsys):
    folder = tmp_path / "s"
    folder.mkdir()
    events = [alert(100, "on", "withdrawal"), press(110, "rupture"), alert(120, "off", "withdrawal"), ended(600)]
    (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    assert main(["evaluate", str(folder), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["annotations"] == "dashboard" and data["f1"] == 1.0 and data["alerts_from"] == "recorded"
