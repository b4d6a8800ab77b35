"""The post-session report: summary figures against known events, and the page in a real browser."""

from __future__ import annotations

import csv
import shutil
import stat

import pytest

from session_monitor.report.summary import summarize
from support.cli import events, run_cli


def _speech(speaker, start, end):
    return {"type": "speech", "t": end + 0.2, "speaker": speaker, "start": start, "end": end}


HAND_MADE = [
    {"type": "session", "t": 0.0, "state": "started"},
    _speech("therapist", 0.0, 4.0),
    {"type": "gap", "t": 5.1, "from_speaker": "therapist", "to_speaker": "patient", "start": 4.0, "end": 5.0,
     "duration_s": 1.0},
    _speech("patient", 5.0, 6.0),
    {"type": "gap", "t": 6.6, "from_speaker": "patient", "to_speaker": "therapist", "start": 6.0, "end": 6.5,
     "duration_s": 0.5},
    _speech("therapist", 6.5, 10.0),
    {"type": "gap", "t": 14.1, "from_speaker": "therapist", "to_speaker": "patient", "start": 10.0, "end": 14.0,
     "duration_s": 4.0},
    _speech("patient", 14.0, 15.0),
    {"type": "marker", "t": 14.5, "speaker": "patient", "kind": "withdrawal", "marker": "minimal_response",
     "strength": 0.9, "start": 10.0, "end": 14.0, "explanation": "4.0 s silence after your question"},
    {"type": "alert", "t": 14.6, "state": "on", "kind": "withdrawal"},
    {"type": "marker", "t": 16.0, "speaker": "therapist", "kind": "repair", "marker": "validating",
     "strength": 0.8, "start": 15.5, "end": 16.0, "explanation": "you validated the patient"},
    {"type": "signal", "t": 17.0, "likelihood": 0.7, "withdrawal": 0.7, "confrontation": 0.0, "evidence": []},
]


def test_summary_of_known_events():
    s = summarize(HAND_MADE, complete=False)
    assert s.talk_s == pytest.approx({"therapist": 7.5, "patient": 2.0})
    assert s.talk_share["therapist"] == pytest.approx(7.5 / 9.5)
    assert s.median_latency_s == pytest.approx({"patient": 2.5, "therapist": 0.5})
    assert [round(x.duration_s, 3) for x in s.longest_silences] == [4.0, 1.0, 0.5]
    assert (s.longest_silences[0].before, s.longest_silences[0].after) == ("therapist", "patient")
    # the alert was still on when the session ended early: an open episode, repaired at 16.0
    assert len(s.episodes) == 1
    ep = s.episodes[0]
    assert (ep.kind, ep.open_at_end, ep.repaired, ep.repair_t) == ("withdrawal", True, True, 16.0)
    assert ep.subtypes == ("minimal_response",)
    assert s.subtype_counts == {("repair", "validating"): 1, ("withdrawal", "minimal_response"): 1}


@pytest.mark.slow
def test_report_of_the_demo_session_in_a_browser(tmp_path, replayed, browser):
    session = tmp_path / "demo"
    shutil.copytree(replayed("demo_session"), session)
    for name in ("report.html", "timeline.csv"):
        (session / name).unlink(missing_ok=True)
    result = run_cli("report", str(session))
    assert result.returncode == 0, result.stderr
    html_path, csv_path = session / "report.html", session / "timeline.csv"
    for path in (html_path, csv_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = html_path.read_text()
    assert "http://" not in text and "https://" not in text and "<script" not in text, "self-contained"

    signals = [e for e in events(session) if e["type"] == "signal"]
    with csv_path.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(signals)
    assert float(rows[-1]["t"]) == pytest.approx(signals[-1]["t"])

    page = browser.new_page(viewport={"width": 1200, "height": 1300})
    try:
        page.goto(html_path.as_uri())
        box = page.locator("#timeline").bounding_box()
        assert box and box["width"] > 800 and box["height"] > 150
        assert page.locator("#timeline polyline.likelihood").count() == 1
        points = page.locator("#timeline polyline.likelihood").get_attribute("points").split()
        assert len(points) > 100
        assert page.locator("#timeline rect.band").count() >= 2
        kinds = page.locator("#episodes tr.episode td:nth-child(2)").all_inner_texts()
        assert [k.split()[0] for k in kinds] == ["withdrawal", "confrontation"]
        assert page.locator("#transcript li").count() > 20
        assert page.locator("#transcript .chip").count() > 5
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        shutil.copy(tmp_path / "report.png", "/tmp/report_demo.png")
    finally:
        page.close()


@pytest.mark.slow
def test_markers_weaker_than_display_floor_are_left_out_of_the_report(tmp_path, replayed):
    """Graded sustain-talk evidence makes tiny markers (demo_session: most classifier markers
    under 0.03); the report shows markers from ``display.min_marker_strength`` (0.05) up only,
    and shows them all with 0. events.jsonl keeps every one either way."""
    import json

    session = tmp_path / "demo"
    shutil.copytree(replayed("demo_session"), session)
    markers = [e for e in events(session) if e["type"] == "marker"]
    weak = [m for m in markers if m["strength"] < 0.05]
    assert len(weak) >= 3 and len(markers) - len(weak) >= 10, [m["strength"] for m in markers]

    def ticks() -> int:
        result = run_cli("report", str(session))
        assert result.returncode == 0, result.stderr
        return (session / "report.html").read_text().count('<line class="marker ')

    assert ticks() == len(markers) - len(weak)
    meta_path = session / "session.json"
    meta = json.loads(meta_path.read_text())
    assert meta["settings"]["values"]["display"]["min_marker_strength"] == 0.05
    meta["settings"]["values"]["display"]["min_marker_strength"] = 0.0
    meta_path.write_text(json.dumps(meta))
    assert ticks() == len(markers)
    assert len([e for e in events(session) if e["type"] == "marker"]) == len(markers)


def test_the_transcript_marks_the_words_a_marker_quotes(tmp_path):
    """A marker's quotation (between ‘ and ’, as every explanation quotes) is highlighted in the
    transcript line it came from: the whole quotation, apostrophes and all, and nothing else."""
    from session_monitor.events import Marker, Transcript, event_to_json
    from session_monitor.quotes import quoted
    from session_monitor.report.render import write_report

    said = "well I don't think this is helping at all"
    complaint = "I don't think this is helping"
    evs = [Transcript(t=3.0, speaker="patient", start=1.0, end=2.5, text=said),
           Marker(t=3.0, speaker="patient", kind="confrontation", marker="complaint", strength=0.6, start=1.0,
                  end=2.5, explanation=f"complaint about therapy: {quoted(complaint)}", cue="lexical")]
    (tmp_path / "events.jsonl").write_text("".join(event_to_json(e) + "\n" for e in evs))
    html_path, _ = write_report(tmp_path)
    page = html_path.read_text()
    assert '<mark class="confrontation">I don&#x27;t think this is helping</mark>' in page
    assert page.count("<mark ") == 1


def test_a_marker_about_a_stretch_of_talk_is_one_chip_where_it_was_recognised(tmp_path):
    """The talk-share collapse spans the minute it measured; its chip goes on the last patient line
    of that minute, not on every reply in it (nor on the therapist's lines)."""
    from session_monitor.events import Marker, Transcript, event_to_json
    from session_monitor.report.render import write_report

    evs = []
    for k, (who, text) in enumerate([("patient", "We talked about the move for a long time last night."),
                                     ("therapist", "What did you decide in the end about the flat?"),
                                     ("patient", "Nothing."), ("therapist", "Nothing at all?"), ("patient", "No.")]):
        evs.append(Transcript(t=10.0 * k + 9.5, speaker=who, start=10.0 * k + 5, end=10.0 * k + 9, text=text))
    evs.append(Marker(t=50.0, speaker="patient", kind="withdrawal", marker="minimal_response", strength=0.6,
                      start=0.0, end=50.0, cue="turn_taking",
                      explanation="patient spoke 12% of the last 60 s (usually 45%), in replies 0.8 s long"))
    (tmp_path / "events.jsonl").write_text("".join(event_to_json(e) + "\n" for e in sorted(evs, key=lambda e: e.t)))
    html_path, _ = write_report(tmp_path)
    page = html_path.read_text()
    transcript = page[page.index('<ol id="transcript">'):]
    assert transcript.count('class="chip withdrawal"') == 1
    last = transcript[transcript.index("No.</span>"):]
    assert last.index('class="chip withdrawal"') < last.index("</li>")
