"""The utterance classifiers' evidence on scripted exchanges, through the whole rupture model."""

from __future__ import annotations

import re

import pytest

from session_monitor.errors import InputError
from session_monitor.events import Alert, Marker, MiFigures, Transcript, event_from_dict, event_to_dict
from session_monitor.rupture.model import RuptureModel
from session_monitor.rupture.utterance_evidence import UtteranceEvidence
from session_monitor.rupture.utterances import Prediction
from session_monitor.settings.loader import load_settings
from support.conversation import Conversation, run

SUGGESTION = "I would recommend that you cut down to no more than two drinks a day."
SUSTAIN = "I don't think I'm drinking that much. Everybody drinks like I drink."


def classifier_markers(events, speaker=None):
    return [e for e in events if isinstance(e, Marker) and e.cue == "classifier"
            and (speaker is None or e.speaker == speaker)]


def test_suggestion_then_sustain_talk_is_rejecting_intervention_with_its_quote():
    conv = Conversation()
    conv.turn("therapist", SUGGESTION)
    start, end = conv.turn("patient", SUSTAIN)
    out = run(conv)
    found = classifier_markers(out, "patient")
    assert len(found) == 1
    m = found[0]
    assert (m.kind, m.marker) == ("confrontation", "rejecting_intervention")
    assert "\u2018I don't think I'm drinking that much." in m.explanation
    assert "sustain talk (p=0." in m.explanation and "after your" in m.explanation
    assert (m.start, m.end) == (start, end)
    # graded: 0.8 x (P - 0.25) / 0.75, P(sustain) as the explanation gives it (2 decimals)
    p = float(re.search(r"p=(0\.\d\d)", m.explanation).group(1))
    assert p > 0.4
    assert m.strength == pytest.approx(0.8 * (p - 0.25) / 0.75, abs=0.8 * 0.005 / 0.75 + 1e-9)


def test_sustain_talk_without_a_therapist_turn_before_it_counts_half():
    conv = Conversation()
    conv.turn("therapist", SUGGESTION)
    conv.turn("patient", SUSTAIN, gap_s=25.0)  # more than context_s = 20 s after the suggestion
    far = classifier_markers(run(conv), "patient")
    conv = Conversation()
    conv.turn("therapist", SUGGESTION)
    conv.turn("patient", SUSTAIN)
    near = classifier_markers(run(conv), "patient")
    assert far and near
    assert far[0].strength == pytest.approx(0.5 * near[0].strength, rel=1e-6)
    assert far[0].marker != "rejecting_intervention"


def test_a_reflection_gives_no_therapist_contribution_evidence():
    conv = Conversation()
    for _ in range(3):
        conv.turn("patient", "I like smoking but I know it's bad for me and my kids worry.")
        conv.turn("therapist", "So part of you enjoys smoking, and part of you worries about what it does to you.")
    out = run(conv)
    assert classifier_markers(out, "therapist") == []
    figures = [e for e in out if isinstance(e, MiFigures)]
    assert figures[-1].reflections == 3 and figures[-1].questions == 0


def test_input_without_a_reflection_first_is_a_therapist_marker_quoting_it_and_after_one_is_not():
    advice = "I would recommend that you cut down to no more than two drinks a day."
    conv = Conversation()
    conv.turn("therapist", "How often do you drink?")
    conv.turn("patient", "I drink every day, mostly beer.")
    conv.turn("therapist", advice)
    found = [m for m in classifier_markers(run(conv), "therapist") if m.marker == "therapist_unreflected_input"]
    assert len(found) == 1
    m = found[0]
    assert m.kind == "confrontation" and "without a reflection or asking permission first" in m.explanation
    assert "\u2018I would recommend that you cut down" in m.explanation and "no reflection yet" in m.explanation
    p = float(re.search(r"p=(0\.\d\d)", m.explanation).group(1))
    assert m.strength == pytest.approx(0.6 * p, abs=0.6 * 0.005 + 1e-9)
    conv = Conversation()
    conv.turn("patient", "I like smoking but I know it's bad for me and my kids worry.")
    conv.turn("therapist", "So part of you enjoys smoking, and part of you worries about what it does to you.")
    conv.turn("patient", "Yes, that's it.")
    conv.turn("therapist", advice)
    # P(input) of the advice is 0.35 here: with the floor lowered it counts as input, and the reflection
    # just before it is what keeps the marker away
    low = {"utterances": {"therapist_min_p": 0.3}}
    out = run(conv, overrides=low)
    assert [e for e in out if isinstance(e, MiFigures)][-1].input_share == 0.5
    assert not [m for m in classifier_markers(out, "therapist") if m.marker == "therapist_unreflected_input"]


def test_input_after_asking_permission_is_not_unreflected():
    # MI's ask-provide-ask: information the client agreed to hear is not a therapist contribution
    advice = "I would recommend that you cut down to no more than two drinks a day."
    for asked, flagged in (("Would it be okay if I shared some information about drinking?", False),
                           ("And where do you usually drink, at home or out?", True)):
        conv = Conversation()
        conv.turn("therapist", "How often do you drink?")
        conv.turn("patient", "I drink every day, mostly beer.")
        conv.turn("therapist", asked)
        conv.turn("patient", "Sure.")
        conv.turn("therapist", advice)
        out = run(conv)
        assert [e for e in out if isinstance(e, MiFigures)][-1].input_share > 0  # the advice was classed input
        found = [m for m in classifier_markers(out, "therapist") if m.marker == "therapist_unreflected_input"]
        assert bool(found) == flagged, (asked, found)


def test_runs_of_advice_are_capped_therapist_evidence_that_never_alerts_alone():
    conv = Conversation()
    conv.turn("therapist", "So you feel your drinking is under control.")
    for text in ("I would recommend that you cut down to no more than two drinks a day.",
                 "Research shows that people who drink every day have more liver problems.",
                 "My advice is to stop drinking on weekdays completely.",
                 "I would suggest you see your doctor about your liver.",
                 "Drinking more than fourteen units a week raises the risk of cancer."):
        conv.turn("patient", "Okay.")
        conv.turn("therapist", text)
    out = run(conv)
    advising = [m for m in classifier_markers(out, "therapist") if m.marker == "therapist_advising"]
    assert advising, [m.explanation for m in classifier_markers(out)]
    assert "of your last 5 turns gave advice or information" in advising[0].explanation
    assert "no reflection since" in advising[0].explanation or "no reflection yet" in advising[0].explanation
    assert not [e for e in out if isinstance(e, Alert) and e.state == "on"]


def test_mi_figures_are_running_counts_and_round_trip_through_json():
    conv = Conversation()
    conv.turn("therapist", "What would you like to do about your drinking?")
    conv.turn("patient", "I really want to cut down, I know I need to drink less.")
    conv.turn("therapist", "So you've decided it's time to make a change.")
    out = run(conv)
    figs = [e for e in out if isinstance(e, MiFigures)]
    assert len(figs) == 3  # one per final transcript
    last = figs[-1]
    assert (last.questions, last.reflections) == (1, 1)
    assert last.reflection_to_question == 1.0 and last.open_question_share == 1.0
    assert last.change_talk == 1 and last.sustain_talk == 0 and last.change_share == 1.0
    assert event_from_dict(event_to_dict(last)) == event_from_dict(event_to_dict(event_from_dict(event_to_dict(last))))
    assert event_to_dict(event_from_dict(event_to_dict(last)))["reflection_to_question"] == 1.0


def test_disabled_classifiers_give_no_classifier_evidence():
    conv = Conversation()
    conv.turn("therapist", SUGGESTION)
    conv.turn("patient", SUSTAIN)
    out = run(conv, overrides={"utterances": {"enabled": False}})
    assert classifier_markers(out) == [] and not [e for e in out if isinstance(e, MiFigures)]


def test_a_session_without_transcripts_loads_no_classifiers(tmp_path):
    """No speech recognition, no words: the classifiers (and their encoder) would never run."""
    from session_monitor.rupture.model import build_analyzers

    missing = tmp_path / "absent.bin"
    settings = load_settings(overrides={"utterances": {"model_file": str(missing)}})
    assert build_analyzers(settings, transcripts=False)[0].utterances is None  # the file is not even read
    with pytest.raises(InputError):
        build_analyzers(settings, transcripts=True)


def test_a_missing_model_file_is_a_one_line_error_naming_it(tmp_path):
    missing = tmp_path / "nope.bin"
    with pytest.raises(InputError) as err:
        RuptureModel.from_settings(load_settings(overrides={"utterances": {"model_file": str(missing)}}))
    assert str(missing) in str(err.value) and "\n" not in str(err.value)


class _Recording:
    """Classifiers that answer 'neutral' / 'other' and note the context each call was given."""

    def __init__(self):
        self.calls = []

    def patient(self, text, previous="", own_previous=""):
        self.calls.append(("patient", text, previous, own_previous))
        return Prediction("neutral", 0.9, {"change": 0.05, "neutral": 0.9, "sustain": 0.05})

    def therapist(self, text, previous="", own_previous=""):
        self.calls.append(("therapist", text, previous, own_previous))
        p = Prediction("other", 0.9, {"other": 0.9, "question": 0.05, "reflection": 0.03, "therapist_input": 0.02})
        return {"behaviour": p, "reflection_type": p, "question_type": p, "input_type": p}


def _calls_of_a_two_part_turn(*, whole_turn: bool) -> list[tuple]:
    """What reaches the classifier for an exchange whose second patient turn comes in two transcripts."""
    clf = _Recording()
    ev = UtteranceEvidence(load_settings(overrides={"utterances": {"whole_turn": whole_turn}}).utterances, clf)
    said = [("therapist", "How was your week?"), ("patient", "It was long."), ("patient", "Work was busy."),
            ("therapist", "Busy at work."), ("patient", "Yes.")]
    for i, (who, text) in enumerate(said):
        ev.on_transcript(Transcript(t=i + 1.0, speaker=who, start=float(i), end=i + 0.9, text=text))
    return clf.calls


def test_classifier_context_is_by_turns_as_annomi_utterances_are():
    """Transcripts of one speaker in a row are one turn: the context is the other speaker's last
    turn and the speaker's own previous turn, never a piece of the turn being spoken (here with
    ``whole_turn`` off: each transcript classified alone)."""
    assert _calls_of_a_two_part_turn(whole_turn=False) == [
        ("therapist", "How was your week?", "", ""),
        ("patient", "It was long.", "How was your week?", ""),
        ("patient", "Work was busy.", "How was your week?", ""),
        ("therapist", "Busy at work.", "It was long. Work was busy.", "How was your week?"),
        ("patient", "Yes.", "Busy at work.", "It was long. Work was busy."),
    ]


def test_a_turn_that_never_ends_keeps_a_bounded_context_of_its_last_words():
    """A speaker who talks on and on (the other channel never speaks): the turn kept as context
    is bounded, at its last 250 words (the longest AnnoMI utterance is 246), however long it runs."""
    clf = _Recording()
    ev = UtteranceEvidence(load_settings().utterances, clf)
    for i in range(600):  # 6,000 words of monologue
        ev.on_transcript(Transcript(t=i + 1.0, speaker="therapist", start=float(i), end=i + 0.9,
                                    text=" ".join(f"w{i}x{k}" for k in range(10))))
    ev.on_transcript(Transcript(t=700.0, speaker="patient", start=699.0, end=699.9, text="Yes."))
    previous = clf.calls[-1][2].split()
    assert len(previous) == 250
    assert previous[-1] == "w599x9" and previous[0] == "w575x0"


def test_whole_turn_classifies_the_turn_so_far_as_annomi_utterances_are_turns():
    """With ``utterances.whole_turn`` each final transcript is classified with the speaker's turn
    so far (its transcripts since the other speaker spoke), as AnnoMI's labelled utterances are
    whole turns; the context is unchanged. (The recording classifier stands in for the model:
    what is asserted is which words reach it.)"""
    assert _calls_of_a_two_part_turn(whole_turn=True) == [
        ("therapist", "How was your week?", "", ""),
        ("patient", "It was long.", "How was your week?", ""),
        ("patient", "It was long. Work was busy.", "How was your week?", ""),
        ("therapist", "Busy at work.", "It was long. Work was busy.", "How was your week?"),
        ("patient", "Yes.", "Busy at work.", "It was long. Work was busy."),
    ]


@pytest.mark.parametrize("whole_turn", [True, False])
def test_a_sustain_marker_spans_and_quotes_what_was_classified(whole_turn):
    """A patient turn heard as two transcripts: with ``whole_turn`` the marker on the second one
    spans the turn from its first word and quotes it from there, since its probability is the
    turn's; with it off, the second transcript alone."""
    conv = Conversation()
    conv.turn("therapist", SUGGESTION)
    first, _ = conv.turn("patient", "Well, I hear you.")
    second, end = conv.turn("patient", SUSTAIN, gap_s=0.4)
    found = [m for m in classifier_markers(run(conv, overrides={"utterances": {"whole_turn": whole_turn}}),
                                           "patient") if m.end == end]
    assert len(found) == 1
    m = found[0]
    assert m.start == (first if whole_turn else second)
    quote = "\u2018Well, I hear you. I don't think" if whole_turn else "\u2018I don't think I'm drinking"
    assert quote in m.explanation
    assert m.marker == "rejecting_intervention"  # the reply came right after the suggestion


class _ByWords:
    """Classifiers that label by a word of what they are given (they stand in for the model: what is
    asserted is how labels are counted by turn, not which label a text gets): a therapist text with
    "should" is advice, one starting "So" a reflection, else an open question; a patient text is
    sustain talk."""

    def patient(self, text, previous="", own_previous=""):
        return Prediction("sustain", 0.6, {"change": 0.2, "neutral": 0.2, "sustain": 0.6})

    def therapist(self, text, previous="", own_previous=""):
        label, sub = (("therapist_input", "advice") if "should" in text else ("reflection", "simple")
                      if text.startswith("So") else ("question", "open"))
        p = Prediction(label, 0.8, {label: 0.8})
        kind = {"therapist_input": "input_type", "reflection": "reflection_type", "question": "question_type"}
        return {"behaviour": p, **{k: Prediction(sub if k == kind[label] else "", 0.8, {}) for k in kind.values()}}


def _heard(said, *, whole_turn=True):
    """(markers, last MI figures) of transcripts ``said`` = [(speaker, text), ...], 1 s apart."""
    ev = UtteranceEvidence(load_settings(overrides={"utterances": {"whole_turn": whole_turn}}).utterances, _ByWords())
    out = []
    for i, (who, text) in enumerate(said):
        out += ev.on_transcript(Transcript(t=i + 1.0, speaker=who, start=float(i), end=i + 0.9, text=text))
    return [e for e in out if isinstance(e, Marker)], [e for e in out if isinstance(e, MiFigures)][-1]


ADVICE_IN_THREE = [("therapist", "How was your week?"), ("patient", "Long."), ("patient", "Too long."),
                   ("therapist", "You should rest."), ("therapist", "More than you do."), ("therapist", "Every day.")]


def test_mi_figures_count_turns_not_transcripts():
    """A turn heard as several transcripts is one turn in the figures, labelled as its whole so far."""
    _, figures = _heard(ADVICE_IN_THREE)
    assert (figures.questions, figures.input_share, figures.sustain_talk) == (1, 0.5, 1)  # 2 therapist turns
    # each transcript alone (whole_turn off) is its own unit, as before
    _, alone = _heard(ADVICE_IN_THREE, whole_turn=False)
    assert (alone.questions, alone.input_share, alone.sustain_talk) == (3, 0.25, 2)


def test_unreflected_input_is_one_marker_a_turn():
    """Given when the turn is first classed as input (here its first transcript), not again for
    each transcript of the same turn."""
    markers, _ = _heard(ADVICE_IN_THREE)
    [m] = [m for m in markers if m.marker == "therapist_unreflected_input"]
    assert (m.start, m.end) == (3.0, 3.9)
    assert "\u2018You should rest.\u2019" in m.explanation and "no reflection yet this session" in m.explanation
    # each transcript alone: one per transcript classed as input
    markers, _ = _heard(ADVICE_IN_THREE, whole_turn=False)
    assert len([m for m in markers if m.marker == "therapist_unreflected_input"]) == 1  # "should" is in one


def test_a_turn_relabelled_takes_its_reflection_back():
    """A turn that began as a reflection and turned into advice was not a reflection: the figures and
    "no reflection since" forget it."""
    said = [("patient", "I drink a lot."), ("therapist", "So you drink a lot."), ("therapist", "You should stop.")]
    markers, figures = _heard(said)
    assert figures.reflections == 0 and figures.input_share == 1.0
    [m] = [m for m in markers if m.marker == "therapist_unreflected_input"]
    assert "no reflection yet this session" in m.explanation


def test_a_clinician_profile_changes_the_classifiers_settings(tmp_path, monkeypatch):
    # a profile (configs/clinicians/NAME.toml, as `tune` writes it) overrides [utterances] like any section
    import shutil

    from session_monitor.rupture.model import run_on_events
    from session_monitor.settings.loader import default_config_path

    shutil.copytree(default_config_path().parent, tmp_path / "configs",
                    ignore=shutil.ignore_patterns("clinicians"))
    (tmp_path / "configs" / "clinicians").mkdir()
    (tmp_path / "configs" / "clinicians" / "ana.toml").write_text(
        "[utterances]\nsustain_weight = 0.4\n\n[fusion]\nclassifier_weight = 0.5\n")
    monkeypatch.chdir(tmp_path)
    conv = Conversation()
    conv.turn("therapist", SUGGESTION)
    conv.turn("patient", SUSTAIN)
    [default] = classifier_markers(run(conv), "patient")
    settings = load_settings(clinician="ana")
    assert settings.clinician.name == "ana" and settings.fusion.classifier_weight == 0.5
    out = run_on_events(RuptureModel.from_settings(settings), conv.sorted_events(), end_t=conv.t + 5)
    [tuned] = classifier_markers(out, "patient")
    assert tuned.strength == pytest.approx(default.strength / 2, rel=1e-6)  # sustain_weight 0.8 -> 0.4
