"""Quoted words in explanations can be found again and dropped where the words may not be kept."""

from __future__ import annotations

from session_monitor.events import Marker, Signal, Speech, Transcript, Word
from session_monitor.quotes import quotations, quoted, without_quotes, without_words


def test_a_quotation_is_marked_shortened_and_keeps_no_mark_of_its_own():
    assert quoted("  this isn't   helping ") == "\u2018this isn't helping\u2019"
    # the marks inside the words become apostrophes, so one quotation is one match
    assert quoted("he said \u2018fine\u2019") == "\u2018he said 'fine'\u2019"
    long = quoted("word " * 40, 20)
    assert len(long) == 22 and long.endswith("\u2026\u2019")


def test_without_quotes_drops_every_quotation_and_keeps_the_rest():
    text = f"sustain talk (p=0.81) right after your advice: {quoted('I do not think so')} ({quoted('maybe')})"
    assert without_quotes(text) == "sustain talk (p=0.81) right after your advice: \u2018\u2026\u2019 (\u2018\u2026\u2019)"
    assert without_quotes("no quotation, isn't it") == "no quotation, isn't it"
    assert quotations(text) == ["I do not think so", "maybe"] and quotations("no quotation, isn't it") == []


def test_without_words_empties_transcripts_and_quotations_only():
    tr = Transcript(t=3.0, speaker="patient", start=1.0, end=2.5, text="this isn't helping",
                    words=(Word(word="this", start=1.0, end=1.2, probability=0.9),))
    dropped = without_words(tr)
    assert dropped.text == "" and dropped.words == () and (dropped.start, dropped.end) == (1.0, 2.5)
    marker = Marker(t=3.0, speaker="patient", kind="confrontation", marker="complaint", strength=0.6,
                    start=1.0, end=2.5, explanation=f"complaint about therapy: {quoted(tr.text)}", cue="lexical")
    assert without_words(marker).explanation == "complaint about therapy: \u2018\u2026\u2019"
    signal = Signal(t=3.0, likelihood=0.5, withdrawal=0.1, confrontation=0.5,
                    evidence=({"marker": "complaint", "explanation": marker.explanation}, {"marker": "x"}))
    assert without_words(signal).evidence == ({"marker": "complaint", "explanation": "complaint about therapy: "
                                               "\u2018\u2026\u2019"}, {"marker": "x"})
    speech = Speech(t=3.0, speaker="patient", start=1.0, end=2.5)
    assert without_words(speech) is speech
