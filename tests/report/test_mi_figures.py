"""The MI figures of the utterance classifiers in the report and on the dashboard feed."""

from __future__ import annotations

from session_monitor.dashboard.feed import Feed, page_message
from session_monitor.events import MiFigures
from session_monitor.report.render import _mi_html
from session_monitor.report.summary import summarize

FIG = {"type": "mi_figures", "t": 30.0, "reflections": 3, "questions": 2, "reflection_to_question": 1.5,
       "complex_reflection_share": 0.333, "open_question_share": 0.5, "change_talk": 4, "sustain_talk": 1,
       "change_share": 0.8, "input_share": 0.1}


def test_report_shows_the_last_figures_of_the_session():
    events = [{"type": "session", "t": 0.0, "state": "started"},
              dict(FIG, t=10.0, reflections=1, reflection_to_question=0.5), FIG]
    s = summarize(events)
    assert s.mi_figures["reflections"] == 3
    html = _mi_html(s.mi_figures)
    assert "reflections : questions 1.5 (3 : 2)" in html
    assert "complex reflections 33%" in html and "open questions 50%" in html
    assert "client change talk 4 vs sustain talk 1 · advice or information in 10% of your turns" in html


def test_report_without_classifier_figures_says_nothing_of_them():
    assert _mi_html(summarize([{"type": "session", "t": 0.0, "state": "started"}]).mi_figures) == ""


def test_dashboard_feed_keeps_the_latest_figures_for_a_new_page():
    ev = MiFigures(**{k: v for k, v in FIG.items() if k != "type"})
    msg = page_message(ev)
    assert msg["type"] == "mi_figures" and msg["reflection_to_question"] == 1.5 and msg["sustain_talk"] == 1
    hist = Feed()
    hist.apply(msg, 0.0)
    assert hist.snapshot(0.0, title="x")["figures"] == msg
