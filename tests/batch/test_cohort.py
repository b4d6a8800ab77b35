"""The cohort table and page from session folders with known events (no replay needed)."""

from __future__ import annotations

import csv
import json
import stat

import pytest

from session_monitor.batch.cohort import SessionResult, clinician_totals, session_row, write_csv
from session_monitor.batch.cohort_html import write_cohort_html
from session_monitor.settings.loader import EvaluateSettings

EVAL = EvaluateSettings(tolerance_s=5.0, match_kind=True)


def speech(speaker, start, end):
    return {"type": "speech", "t": end, "speaker": speaker, "start": start, "end": end}


def gap(to, start, end):
    frm = "patient" if to == "therapist" else "therapist"
    return {"type": "gap", "t": end, "from_speaker": frm, "to_speaker": to, "start": start, "end": end,
            "duration_s": end - start}


def alert(t, state, kind):
    return {"type": "alert", "t": t, "state": state, "kind": kind}


def episode(kind, start, end, subtypes, repaired):
    return {"type": "episode", "t": end + 15, "kind": kind, "start": start, "end": end, "peak_t": start + 1,
            "peak_likelihood": 0.8, "subtypes": subtypes, "repaired": repaired,
            "repair_t": end + 2 if repaired else None, "repair_markers": ["validating"] if repaired else []}


def session_folder(tmp_path, name, events):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    (folder / "session.json").write_text(json.dumps({"complete": True}))
    return folder


#: 0-360 s; therapist talks 90 s, patient 30 s; latencies to the patient 0.5, 1.5, 3.0 s
ONE = [
    {"type": "session", "t": 0.0, "state": "started", "source": "x.wav", "sample_rate": 16000, "channels": 2},
    speech("therapist", 0, 60), gap("patient", 60, 60.5), speech("patient", 60.5, 70.5),
    gap("therapist", 70.5, 71.0), speech("therapist", 71, 101), gap("patient", 101, 102.5),
    speech("patient", 102.5, 112.5), gap("patient", 112.5, 115.5), speech("patient", 115.5, 125.5),
    alert(100, "on", "withdrawal"), alert(130, "off", "withdrawal"),
    alert(200, "on", "confrontation"), alert(220, "off", "confrontation"),
    episode("withdrawal", 100, 130, ["minimal_response", "denial"], True),
    episode("confrontation", 200, 220, ["complaint_about_therapist"], False),
    {"type": "marker", "t": 120, "speaker": "therapist", "kind": "repair", "marker": "validating", "strength": 0.5,
     "start": 118, "end": 120, "explanation": "x"},
    {"type": "mi_figures", "t": 200, "reflection_to_question": 0.5, "open_question_share": 0.2},
    {"type": "mi_figures", "t": 300, "reflection_to_question": 1.25, "open_question_share": 0.4,
     "complex_reflection_share": None},
    {"type": "session", "t": 360.0, "state": "ended", "source": "x.wav", "sample_rate": 16000, "channels": 2},
]
#: 0-720 s, one withdrawal alert, no MI figures
TWO = [
    {"type": "session", "t": 0.0, "state": "started", "source": "x.wav", "sample_rate": 16000, "channels": 2},
    speech("therapist", 0, 10), gap("patient", 10, 12), speech("patient", 12, 42),
    alert(400, "on", "withdrawal"), alert(410, "off", "withdrawal"),
    episode("withdrawal", 400, 410, ["minimal_response"], True),
    {"type": "session", "t": 720.0, "state": "ended", "source": "x.wav", "sample_rate": 16000, "channels": 2},
]


def test_session_row_figures_from_known_events(tmp_path):
    folder = session_folder(tmp_path, "one", ONE)
    row = session_row(SessionResult("one", "one.wav", "ana", "done", folder=folder), EVAL)
    assert row["duration_s"] == 360.0
    assert row["talk_share_therapist"] == pytest.approx(90 / 120, abs=1e-3)
    assert row["talk_share_patient"] == pytest.approx(30 / 120, abs=1e-3)
    assert row["median_latency_patient_s"] == pytest.approx(1.5, abs=1e-3)
    assert row["median_latency_therapist_s"] == pytest.approx(0.5, abs=1e-3)
    assert (row["episodes"], row["episodes_withdrawal"], row["episodes_confrontation"]) == (2, 1, 1)
    assert row["episodes_withdrawal_minimal_response"] == 1 and row["episodes_withdrawal_denial"] == 1
    assert row["episodes_confrontation_complaint_about_therapist"] == 1
    assert row["repaired_share"] == 0.5
    assert row["alerts"] == 2 and row["alerts_per_hour"] == pytest.approx(20.0)
    assert row["mi_reflection_to_question"] == 1.25  # the session's last mi_figures event
    assert row["mi_open_question_share"] == 0.4
    assert row["mi_complex_reflection_share"] is None and row["mi_change_share"] is None
    assert "eval_f1" not in row  # no annotations given


def test_evaluation_columns_equal_evaluate_and_are_pooled_per_clinician(tmp_path):
    one, two = session_folder(tmp_path, "one", ONE), session_folder(tmp_path, "two", TWO)
    truth = tmp_path / "truth.json"
    # the withdrawal alert (100-130) matches; the confrontation alert (200-220) is a false alarm;
    # the rupture at 500-520 is missed
    truth.write_text(json.dumps({"ruptures": [{"start": 95, "end": 125, "kind": "withdrawal"},
                                              {"start": 500, "end": 520, "kind": "confrontation"}]}))
    rows = [session_row(SessionResult("one", "one.wav", "ana", "done", folder=one, annotations=str(truth)), EVAL),
            session_row(SessionResult("two", "two.wav", "ana", "done", folder=two, annotations=str(truth)), EVAL),
            session_row(SessionResult("bad", "bad.wav", "ben", "failed", reason="bad.wav: not audio"), EVAL)]
    assert rows[0]["eval_precision"] == 0.5 and rows[0]["eval_recall"] == 0.5
    assert rows[0]["eval_false_alarms_per_hour"] == pytest.approx(10.0)
    assert rows[0]["eval_mean_delay_s"] == pytest.approx(5.0)
    assert rows[1]["eval_precision"] == 0.0 and rows[1]["eval_recall"] == 0.0  # alert at 400: no rupture
    assert rows[1]["mi_reflection_to_question"] is None
    ana, ben = clinician_totals(rows)
    assert ana["clinician"] == "ana" and ana["sessions"] == 2 and ana["duration_s"] == 1080.0
    assert ana["episodes"] == 3 and ana["episodes_withdrawal"] == 2
    assert ana["episodes_withdrawal_minimal_response"] == 2
    assert ana["repaired_share"] == pytest.approx(2 / 3, abs=1e-3)
    assert ana["alerts_per_hour"] == pytest.approx(3 / 0.3)
    assert ana["eval_precision"] == pytest.approx(1 / 3, abs=1e-3)  # 1 matched of 3 alerts
    assert ana["eval_recall"] == pytest.approx(1 / 4, abs=1e-3)  # 1 detected of 4 ruptures
    assert ben["sessions"] == 1 and ben["status"] == "0 ran, 1 failed"


def test_cohort_csv_has_one_row_per_session_then_totals_and_is_private(tmp_path):
    one = session_folder(tmp_path, "one", ONE)
    rows = [session_row(SessionResult("one", "one.wav", "", "done", folder=one), EVAL),
            session_row(SessionResult("bad", "bad.wav", "", "failed", reason="bad.wav: not audio"), EVAL)]
    path = write_csv(tmp_path / "cohort.csv", rows + clinician_totals(rows))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    table = list(csv.DictReader(path.open()))
    assert [r["row"] for r in table] == ["session", "session", "clinician_total"]
    assert table[1]["reason"] == "bad.wav: not audio" and table[1]["duration_s"] == ""
    assert table[0]["mi_change_share"] == ""  # a figure absent from the events: an empty cell
    assert "_eval_alerts" not in table[0]


def test_cohort_html_renders_in_chromium_without_loading_anything(tmp_path, browser):
    one, two = session_folder(tmp_path, "one", ONE), session_folder(tmp_path, "two", TWO)
    rows = [session_row(SessionResult("one", "one.wav", "ana", "done", folder=one), EVAL),
            session_row(SessionResult("two", "two.wav", "ben", "done", folder=two), EVAL),
            session_row(SessionResult("bad<script>", "bad.wav", "ben", "failed", reason="not <b>audio</b>"), EVAL)]
    path = write_cohort_html(tmp_path / "cohort.html", rows, clinician_totals(rows), title="Cohort: t")
    page = browser.new_page()
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    assert requests == [path.as_uri()]  # self-contained: nothing else is fetched
    assert errors == []
    assert page.locator("#sessions tbody tr").count() == 3
    assert page.locator("#totals tbody tr").count() == 2
    assert page.locator("#sessions tr.failed").inner_text().count("not <b>audio</b>") == 1  # escaped, shown
    plots = page.locator("svg.plot")
    assert plots.count() == 3  # episodes, alerts per hour, talk share (no annotations: no F1 plot)
    episodes = page.locator('svg[aria-label="Rupture episodes"]')
    assert episodes.locator("rect.withdrawal").count() == 2 and episodes.locator("rect.confrontation").count() == 1
    # bars scale with the figure: session one's alerts per hour (20/h) is four times session two's (5/h)
    widths = [float(w) for w in page.locator('svg[aria-label="Alerts per hour"] rect').evaluate_all(
        "els => els.map(e => e.getAttribute('width'))")]
    assert widths[0] == pytest.approx(4 * widths[1], rel=0.01)
    assert page.locator('svg[aria-label="Rupture episodes"]').bounding_box()["height"] > 50
    page.close()
