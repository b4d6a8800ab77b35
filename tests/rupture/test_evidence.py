"""Timing, voice, turn-taking and therapist evidence on synthetic conversations."""

from __future__ import annotations

import dataclasses
import re

import pytest

from session_monitor.events import Alert, Marker, Overlap, Signal, Transcript, event_to_json
from session_monitor.rupture.model import RuptureModel, run_on_events
from session_monitor.settings.loader import load_settings
from support.conversation import Conversation, run

OPEN_Q = "How are you feeling about your father now?"


def markers(events, name=None, speaker=None):
    return [e for e in events if isinstance(e, Marker) and (name is None or e.marker == name)
            and (speaker is None or e.speaker == speaker)]


def alerts(events):
    return [e for e in events if isinstance(e, Alert)]


def test_long_latency_then_quiet_minimal_reply_is_withdrawal_and_alerts():
    conv = Conversation()
    conv.warm_up()
    q_end = conv.turn("therapist", OPEN_Q)[1]
    _start, _ = conv.turn("patient", "I don't know.", gap_s=3.8, level_db=-38.0)
    out = run(conv)
    latency = markers(out, "minimal_response")
    assert any(m.cue == "timing" and m.explanation == "3.8 s silence after your question" for m in latency)
    assert any(m.cue == "lexical" and "short answer \u2018I don't know.\u2019" in m.explanation for m in latency)
    lowered = markers(out, "lowered_voice")[0]
    assert lowered.kind == "withdrawal" and "8 dB quieter" in lowered.explanation
    on = [a for a in alerts(out) if a.state == "on"]
    assert on and on[0].kind == "withdrawal"
    assert on[0].t - q_end < 5.0  # within 5 s of the start of the silence


def test_reflective_silence_without_other_cues_does_not_alert():
    conv = Conversation()
    conv.warm_up()
    conv.turn("therapist", "What do you notice when you think about the two of you now?")
    conv.turn("patient", "I think I notice that I miss him more than I expected, we used to talk every day.",
              gap_s=4.5)
    out = run(conv)
    assert markers(out, speaker="patient") == []
    assert alerts(out) == []


def test_i_guess_alone_does_not_alert():
    conv = Conversation()
    conv.warm_up()
    conv.turn("therapist", OPEN_Q)
    conv.turn("patient", "I guess.")
    out = run(conv)
    assert [m.marker for m in markers(out, speaker="patient")] == ["minimal_response"]
    assert alerts(out) == []
    assert max(e.likelihood for e in out if isinstance(e, Signal)) < 0.5


def test_minimal_response_near_miss_short_answer_to_closed_question():
    conv = Conversation()
    conv.warm_up()
    conv.turn("therapist", "Is that still on your mind?")
    conv.turn("patient", "Yes, exactly.")
    assert markers(run(conv), speaker="patient") == []


def test_silence_after_question_alone_does_not_alert():
    conv = Conversation()
    conv.warm_up()
    conv.turn("therapist", OPEN_Q)
    conv.turn("therapist", "Take your time.", gap_s=6.0)  # no answer: the therapist speaks again
    out = run(conv)
    no_answer = markers(out, "minimal_response")
    assert len(no_answer) == 1 and no_answer[0].explanation == "no answer for 6.0 s after your question"
    assert alerts(out) == []


def test_raised_voice_with_complaint_and_interruption_is_confrontation():
    conv = Conversation()
    conv.warm_up()
    conv.turn("therapist", "Let's go back to the list of worries from last time and look at it together.")
    conv.turn("patient", "You don't understand what I'm saying.", level_db=-23.0, f0_hz=135.0, interrupt_s=1.0)
    out = run(conv)
    raised = markers(out, "raised_voice")[0]
    assert raised.kind == "confrontation" and "7 dB louder and 4 semitones higher" in raised.explanation
    assert markers(out, "interrupting_therapist")[0].explanation == "patient talked over you (1.0 s)"
    assert markers(out, "complaint_about_therapist")[0].explanation == \
        "patient complains about you: \u2018You don't understand what I'm saying.\u2019"
    on = [a for a in alerts(out) if a.state == "on"]
    assert [a.kind for a in on] == ["confrontation"]


def test_raised_voice_alone_does_not_alert():
    conv = Conversation()
    conv.warm_up()
    conv.turn("therapist", "What happened at work this week?")
    conv.turn("patient", "My manager gave me a new project and a new desk near the window.", level_db=-23.0)
    out = run(conv)
    # (the utterance classifiers' graded sustain-talk evidence is tested in test_utterance_evidence.py)
    assert [m.marker for m in markers(out, speaker="patient") if m.cue != "classifier"] == ["raised_voice"]
    assert alerts(out) == []


def _raised_reply(text):
    """A reply 4 dB louder than usual (raised_voice strength 0.7) after a suggestion; (conversation, its end)."""
    conv = Conversation()
    conv.warm_up()
    conv.turn("therapist", "Let's go back to the list of worries from last time and look at it together.")
    return conv, conv.turn("patient", text, level_db=-26.0)[1]


def test_a_raised_voice_waits_for_its_words():
    # with words that push back (the lexicon's complaint), it counts in full, when they are heard
    conv, end = _raised_reply("This isn't helping me at all, we keep going over the same list.")
    [raised] = markers(run(conv), "raised_voice")
    assert raised.t == pytest.approx(end + 0.8)  # the transcript's time, not the voice's
    assert raised.strength == pytest.approx(0.7, abs=0.01)
    assert raised.explanation == "patient's voice 4 dB louder than usual, with complaint about activities"
    # with ordinary words, half of it (evidence.voice_alone_factor = 0.5): emphasis is not a rupture
    conv, _ = _raised_reply("My manager gave me a new project and a new desk near the window.")
    [raised] = markers(run(conv, overrides={"utterances": {"enabled": False}}), "raised_voice")
    assert raised.strength == pytest.approx(0.35, abs=0.01)
    assert raised.explanation.endswith(", with words that are no rupture evidence")
    # a weak sustain-talk classification backs it as much as its own strength
    out = run(conv)
    [sustain] = [m for m in markers(out, speaker="patient") if m.cue == "classifier"]
    [raised] = markers(out, "raised_voice")
    assert sustain.strength < 0.5
    assert raised.strength == pytest.approx(0.7 * (0.5 + 0.5 * sustain.strength), abs=0.01)
    assert f"with words that are weak evidence of {sustain.marker.replace('_', ' ')}" in raised.explanation
    # the factor is a setting: 1 counts the voice alone in full
    [raised] = markers(run(conv, overrides={"utterances": {"enabled": False}, "evidence": {"voice_alone_factor": 1.0}}),
                       "raised_voice")
    assert raised.strength == pytest.approx(0.7, abs=0.01)


def test_a_raised_voice_is_backed_by_words_its_interim_transcript_gave():
    # a long reply is transcribed in part before it ends (final=False); the lexicon reports a
    # phrase once per utterance, so the complaint comes with the interim transcript, not the final one
    text = "This isn't helping me at all, we keep going over the same list."
    conv, end = _raised_reply(text)
    final = next(e for e in conv.events if isinstance(e, Transcript) and e.speaker == "patient" and e.end == end)
    conv.events.append(dataclasses.replace(final, t=end - 0.2, end=end - 1.0, final=False))
    out = run(conv)
    [complaint] = markers(out, "complaint_about_progress")
    [raised] = markers(out, "raised_voice")
    assert complaint.t == pytest.approx(end - 0.2) and raised.t == pytest.approx(end + 0.8)
    assert raised.strength == pytest.approx(0.7, abs=0.01) and "with complaint" in raised.explanation


def _in_two_transcripts(conv, end, split_at):
    """The patient's last reply transcribed as two final transcripts, cut after word ``split_at``."""
    final = next(e for e in conv.events if isinstance(e, Transcript) and e.speaker == "patient" and e.end == end)
    cut = final.words[split_at - 1].end
    first = dataclasses.replace(final, t=cut + 0.8, end=cut, text=" ".join(w.word for w in final.words[:split_at]),
                                words=final.words[:split_at])
    second = dataclasses.replace(final, start=final.words[split_at].start,
                                 text=" ".join(w.word for w in final.words[split_at:]), words=final.words[split_at:])
    conv.events[conv.events.index(final):conv.events.index(final) + 1] = [first, second]
    return first, second


def test_a_raised_voice_waits_for_the_rest_of_the_turn():
    # the complaint comes in the turn's second transcript: the first one's ordinary words do not
    # settle it, the turn's words do (the whole turn was louder)
    conv, end = _raised_reply("My manager gave me a new project. This isn't helping me at all, we keep going over it.")
    first, second = _in_two_transcripts(conv, end, 6)
    [raised] = markers(run(conv, overrides={"utterances": {"enabled": False}}), "raised_voice")
    assert raised.t == pytest.approx(second.t) and raised.strength == pytest.approx(0.7, abs=0.01)
    assert raised.explanation.endswith(", with complaint about progress")
    # ordinary words all through: it counts alone once the turn is over (the therapist speaks,
    # and the turn's last words are heard), not at the first transcript
    conv, end = _raised_reply("My manager gave me a new project. And a new desk near the window, which is nice.")
    first, second = _in_two_transcripts(conv, end, 6)
    answer_start, _ = conv.turn("therapist", "A desk near the window sounds like a good change for you.", gap_s=0.3)
    assert second.t > answer_start  # the therapist began before the last words were transcribed
    [raised] = markers(run(conv, overrides={"utterances": {"enabled": False}}), "raised_voice")
    assert raised.t == pytest.approx(second.t) and raised.strength == pytest.approx(0.35, abs=0.01)
    assert raised.explanation.endswith(", with words that are no rupture evidence")


def test_a_raised_voice_without_words():
    conv, end = _raised_reply("This isn't helping me at all, we keep going over the same list.")
    unheard = [e for e in conv.sorted_events() if not isinstance(e, Transcript)]
    # a session without speech recognition: the voice counts at once, in full
    model = RuptureModel.from_settings(load_settings(), transcripts=False)
    [raised] = markers(run_on_events(model, unheard, end_t=end + 30), "raised_voice")
    assert raised.t < end and raised.strength == pytest.approx(0.7, abs=0.01)
    # words expected but none came (evidence.voice_words_wait_s = 20): it counts alone after the wait
    model = RuptureModel.from_settings(load_settings(), transcripts=True)
    [late] = markers(run_on_events(model, unheard, end_t=end + 30), "raised_voice")
    assert late.t == pytest.approx(raised.t + 20.0, abs=0.1)
    assert late.strength == pytest.approx(0.35, abs=0.01) and late.explanation.endswith(", no words heard")
    # the session ends first: it counts alone at the end
    model = RuptureModel.from_settings(load_settings(), transcripts=True)
    [last] = markers(run_on_events(model, unheard, end_t=end + 5), "raised_voice")
    assert last.t == pytest.approx(end + 5, abs=0.1) and last.strength == pytest.approx(0.35, abs=0.01)


def test_quiet_voice_over_turns_builds_a_trend():
    conv = Conversation()
    conv.warm_up()
    for _ in range(3):
        conv.turn("therapist", "That sounds important to you, and I appreciate you sharing it.")
        conv.turn("patient", "It was a long week at the office and I mostly stayed at home after.", level_db=-37.0)
    conv.turn("therapist", "I see.")  # the patient's third turn ends when the therapist speaks
    trend = [m for m in markers(run(conv), "lowered_voice") if "turns in a row" in m.explanation]
    assert trend and "for 3 turns in a row" in trend[-1].explanation


def test_baseline_is_relative_to_the_speaker():
    # a patient who is always quiet is not "lowered": the baseline is their own
    conv = Conversation()
    for i in range(6):
        conv.turn("therapist", "That sounds important to you, and I appreciate you sharing it.")
        conv.turn("patient", f"Yes, the week went well and I managed to see friends on day {i}.", level_db=-42.0)
    assert markers(run(conv), "lowered_voice") == []


#: a patient whose replies stray up to 2.8 dB from -30 dB, each within the fixed thresholds
#: (spread ~3.3 dB: 2 x that is ~6.7 dB)
VARIED = [-30.0, -27.5, -32.5, -28.0, -32.0, -27.2, -32.8, -30.0, -29.0, -31.0, -27.5, -32.5]


def _reply_after_varied_levels(levels, last_db, overrides=None):
    """raised_voice markers on a reply at ``last_db`` after replies at ``levels``."""
    conv = Conversation()
    for i, level in enumerate(levels):
        conv.turn("therapist", "That sounds important to you, and I appreciate you sharing it.")
        conv.turn("patient", f"Yes, the week went well and I managed to see friends on day {i}.", level_db=level)
    conv.turn("therapist", "What happened at work this week?")
    start, _ = conv.turn("patient", "My manager gave me a new project and a new desk near the window.",
                         level_db=last_db)
    return [m for m in markers(run(conv, overrides=overrides), "raised_voice") if m.start >= start]


def test_raised_voice_is_judged_against_the_speakers_own_spread():
    # a steady speaker (always -30 dB): 4 dB louder is raised (voice_rise_db = 3)
    assert _reply_after_varied_levels([-30.0] * 8, -26.0)
    # a speaker whose replies stray up to 2.8 dB (spread ~3.3 dB): 4 dB louder is their usual,
    # 11 dB louder is still raised (voice_spread_factor = 2: beyond ~2 standard deviations)
    assert _reply_after_varied_levels(VARIED, -26.0) == []
    assert _reply_after_varied_levels(VARIED, -19.0)
    # the setting is what decides: off, the fixed 3 dB applies to everyone
    assert _reply_after_varied_levels(VARIED, -26.0, {"evidence": {"voice_spread_factor": 0.0}})


def test_an_episode_of_quiet_replies_does_not_widen_the_usual():
    # six replies 9 dB quieter (withdrawal) are not ordinary: they stay out of the spread, so a
    # reply 5 dB louder than usual right after is still a raised voice
    assert _reply_after_varied_levels([-30.0] * 4 + [-39.0] * 6, -25.0)


def _trend_after_varied_levels(levels, quiet_db, overrides=None):
    """'turns in a row' lowered_voice markers over three replies at ``quiet_db`` after ``levels``."""
    conv = Conversation()
    for i, level in enumerate(levels):
        conv.turn("therapist", "That sounds important to you, and I appreciate you sharing it.")
        conv.turn("patient", f"Yes, the week went well and I managed to see friends on day {i}.", level_db=level)
    for _ in range(3):
        conv.turn("therapist", "That sounds important to you, and I appreciate you sharing it.")
        conv.turn("patient", "It was a long week at the office and I mostly stayed at home after.", level_db=quiet_db)
    conv.turn("therapist", "I see.")
    return [m for m in markers(run(conv, overrides=overrides), "lowered_voice") if "turns in a row" in m.explanation]


def test_quiet_trend_is_judged_against_the_speakers_own_spread():
    # 5 dB quieter three times: a trend for a steady speaker, the usual for one who strays ~3 dB
    assert _trend_after_varied_levels([-30.0] * 12, -35.0)
    assert _trend_after_varied_levels(VARIED, -35.0) == []
    assert _trend_after_varied_levels(VARIED, -42.0)  # 12 dB quieter: beyond their spread too
    assert _trend_after_varied_levels(VARIED, -35.0, {"evidence": {"voice_spread_factor": 0.0}})


def test_talk_share_collapse():
    conv = Conversation()
    for i in range(6):
        conv.turn("therapist", "That sounds important to you, and I appreciate you sharing it with me.")
        conv.turn("patient", f"Yes, the week went well and I managed to see friends on day {i} which helped "
                  "me a lot because I was lonely.")
    for _ in range(6):
        conv.turn("therapist", "I wonder what it was like for you when your father said that to you at the "
                  "dinner table in front of everyone.")
        conv.turn("patient", "Fine.")
    share = [m for m in markers(run(conv), "minimal_response") if m.cue == "turn_taking"]
    assert share and "of the last 60 s" in share[0].explanation
    # the replies in the window ("Fine." and the last long ones) are shorter than the usual ~7.7 s
    reply_s, usual_s = map(float, re.search(r", in replies ([\d.]+) s long \(usually ([\d.]+) s\)$",
                                            share[0].explanation).groups())
    assert usual_s == pytest.approx(7.7, abs=0.3) and reply_s <= 0.8 * usual_s


def test_a_talk_share_lost_to_a_lecturing_therapist_is_not_a_minimal_response():
    conv = Conversation()
    reply = "Yes, the week went well and I managed to see friends on day {} which helped me a lot because I was lonely."
    for i in range(6):
        conv.turn("therapist", "That sounds important to you, and I appreciate you sharing it with me.")
        conv.turn("patient", reply.format(i))
    for i in range(3):  # the therapist talks 30 s at a time; the patient's replies are as long as ever
        conv.turn("therapist", "I wonder what it was like for you. " * 9, duration_s=30.0)
        conv.turn("patient", reply.format(i))
    out = run(conv)
    assert [m for m in markers(out, "minimal_response") if m.cue == "turn_taking"] == []
    assert markers(out, "therapist_dominance")  # the therapist's own marker says what happened
    # the share alone (evidence.share_reply_ratio = 0) would have counted it against the patient
    alone = run(conv, overrides={"evidence": {"share_reply_ratio": 0.0}})
    assert [m for m in markers(alone, "minimal_response") if m.cue == "turn_taking"]


def test_therapist_question_from_rising_pitch():
    conv = Conversation()
    conv.warm_up()
    # no question mark, no question words: the rising end makes it a question
    conv.turn("therapist", "You went to see him after all", rising=True)
    conv.turn("patient", "Yes.", gap_s=4.0, level_db=-38.0)
    latency = [m for m in markers(run(conv), "minimal_response") if m.cue == "timing"]
    assert latency and latency[0].explanation.endswith("after your question")


def test_therapist_directive_interrupting_and_lecturing():
    conv = Conversation()
    conv.warm_up()
    conv.turn("therapist", "You need to do the breathing exercise every morning.")
    conv.turn("patient", "I tried it on Monday but then the week got very busy at work.")
    conv.turn("therapist", "Well the thing is that", interrupt_s=1.0)
    conv.turn("therapist", " ".join(["and we know that practice matters"] * 20), duration_s=35.0, gap_s=0.3)
    out = run(conv)
    assert markers(out, "therapist_directive")[0].speaker == "therapist"
    assert markers(out, "therapist_interrupting")[0].explanation == "you talked over the patient (1.0 s)"
    assert "without the patient speaking" in markers(out, "therapist_dominance")[0].explanation
    assert alerts(out) == []  # therapist contributions raise the risk, they do not alert alone


def test_few_reflections():
    conv = Conversation()
    for i in range(7):
        conv.turn("therapist", "Okay. Next topic then.")
        conv.turn("patient", f"My brother visited on day {i} and we cooked dinner together at his place.")
    few = markers(run(conv), "therapist_few_reflections")
    assert few and few[0].explanation == "your last 6 turns did not reflect the patient's own words"


def test_reflections_reset_the_count():
    conv = Conversation()
    for i in range(7):
        conv.turn("therapist", "It sounds like that mattered to you.")
        conv.turn("patient", f"My brother visited on day {i} and we cooked dinner together at his place.")
    assert markers(run(conv), "therapist_few_reflections") == []


def test_repair_markers_from_the_therapist():
    conv = Conversation()
    conv.warm_up()
    conv.turn("therapist", "You're right, I've been pushing the exercises. Can we talk about how our sessions "
              "have been going for you?")
    names = {m.marker for m in markers(run(conv), speaker="therapist")}
    assert {"acknowledging_own_part", "meta_communication"} <= names
    assert all(m.kind == "repair" for m in markers(run(conv), speaker="therapist"))


def test_unknown_speaker_gives_no_evidence_and_no_crash():
    conv = Conversation()
    for i in range(5):
        conv.turn("unknown", "You don't understand what I'm saying, this isn't helping.", level_db=-20.0)
        conv.turn("unknown", "I don't know.", gap_s=5.0, level_db=-45.0)
    out = run(conv)
    assert markers(out) == []
    assert alerts(out) == []
    assert any(isinstance(e, Signal) for e in out)


def test_deterministic():
    conv = Conversation()
    conv.warm_up()
    conv.turn("therapist", OPEN_Q)
    conv.turn("patient", "I don't know.", gap_s=3.8, level_db=-38.0)
    conv.turn("therapist", "We keep going round in circles.")
    conv.turn("patient", "This isn't helping.", level_db=-22.0, interrupt_s=0.8)
    first = [event_to_json(e) for e in run(conv)]
    second = [event_to_json(e) for e in run(conv)]
    assert first == second


def test_markers_carry_schema_fields():
    conv = Conversation()
    conv.warm_up()
    conv.turn("therapist", OPEN_Q)
    conv.turn("patient", "I don't know.", gap_s=3.8, level_db=-38.0)
    for m in markers(run(conv)):
        assert m.speaker in ("therapist", "patient")
        assert m.kind in ("withdrawal", "confrontation", "repair")
        assert 0.0 <= m.strength <= 1.0
        assert m.start <= m.end
        assert m.explanation and "\n" not in m.explanation
        assert m.cue in ("lexical", "timing", "prosody", "turn_taking", "classifier")


def test_overlap_below_minimum_is_not_an_interruption():
    conv = Conversation()
    conv.warm_up()
    conv.turn("therapist", "Let's look at the plan.")
    conv.turn("patient", "Mm okay, sounds good to me today.", interrupt_s=0.2)
    out = run(conv)
    assert any(isinstance(e, Overlap) for e in conv.events)
    assert markers(out, "interrupting_therapist") == []


def test_voice_baseline_spread_is_a_robust_standard_deviation():
    from session_monitor.rupture.baselines import VoiceBaseline

    b = VoiceBaseline(30, min_n=3, clamp_db=1.5, clamp_st=1.0, drop_db=4.0, rise_db=3.0, spread_factor=2.0)
    assert b.spread_db == 0.0  # not before min_n deviations
    for level in [-30.0, -30.0, -30.0, -30.0]:
        b.add(level, None)
    assert b.spread_db == 0.0
    for level in [-27.0, -33.0] * 6:
        b.add(level, None)
    # deviations from the (clamped, hence steady) usual of -30 dB are 3 dB: x 1.4826, within 0.5 dB
    assert abs(b.spread_db - 3.0 * 1.4826) < 0.5
    # the clamp keeps the usual level where it was; the spread is measured before it
    assert abs(b.level_db.value - (-30.0)) <= 1.5
    # values quieter or louder than usual (beyond thresholds()) stay out of the spread
    assert b.thresholds() == (max(4.0, 2 * b.spread_db), max(3.0, 2 * b.spread_db))
    before = b.spread_db
    for _ in range(30):
        b.add(-45.0, None)
    assert b.spread_db == before
