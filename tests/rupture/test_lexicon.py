"""Lexical 3RS markers: each subtype matches its phrase and not a near miss."""

from __future__ import annotations

from pathlib import Path

import pytest

from session_monitor.errors import ConfigError
from session_monitor.rupture.lexicon import REPAIR_SUBTYPES, RUPTURE_SUBTYPES, load_lexicon, normalize
from session_monitor.settings.loader import config_dir

MARKERS = config_dir() / "markers.toml"

# subtype -> (speaker, positive utterance, near-miss negative utterance)
CASES = {
    # patient: withdrawal
    "denial": ("patient", "It's not a big deal, really.", "It is a big deal for me."),
    "abstract_communication": ("patient", "You know how it is, people tend to drift apart.",
                               "I know how he is when he drifts away."),
    "avoidant_storytelling": ("patient", "Anyway, did I tell you about my new car?",
                              "I'll buy the new car anyway."),
    "deferential_appeasing": ("patient", "Whatever you think is best.", "I think it is best to wait."),
    "content_affect_split": ("patient", "My dad died last spring, it's kind of funny actually.",
                             "My dad died last spring and I still miss him."),
    "self_criticism_hopelessness": ("patient", "It's all my fault, I ruin everything.",
                                    "It's not my fault that the bus was late."),
    # patient: confrontation
    "complaint_about_therapist": ("patient", "You don't understand what I'm saying.",
                                  "I think you understand what I'm saying."),
    "rejecting_intervention": ("patient", "That's not true, and I already tried that.", "That's true."),
    "complaint_about_activities": ("patient", "These exercises are pointless.", "I did the exercises at home."),
    "complaint_about_parameters": ("patient", "The sessions are too expensive for me.",
                                   "The sessions are on Tuesday for me."),
    "complaint_about_progress": ("patient", "This isn't helping.", "This is helping."),
    "defending_self": ("patient", "I'm not lazy, I'm doing my best.", "I'm doing the dishes tonight."),
    "controlling_pressuring": ("patient", "Just tell me what to do.", "I don't know what to do."),
    # therapist: contributions
    "therapist_directive": ("therapist", "You need to do the breathing every day.",
                            "You don't need to decide anything today."),
    "therapist_arguing": ("therapist", "You're wrong about that.", "You might be right about that."),
    # therapist: repair
    "clarifying": ("therapist", "What I meant was that we can go slowly.", "We can go slowly."),
    "changing_task": ("therapist", "Let's try something different today.", "Let's try the same plan today."),
    "giving_rationale": ("therapist", "The reason I suggest the diary is that it shows patterns.",
                         "I suggest the diary."),
    "meta_communication": ("therapist", "How is it for you to talk about this here with me?",
                           "How is it for you to talk about this at home?"),
    "acknowledging_own_part": ("therapist", "You're right, I've been pushing you too hard.",
                               "You've been pushing yourself too hard."),
    "validating": ("therapist", "That makes a lot of sense.", "That makes a lot of noise."),
}


@pytest.fixture(scope="module")
def lexicon():
    return load_lexicon(MARKERS)


def _markers(lexicon, speaker: str, text: str) -> set[str]:
    return {h.marker for h in lexicon.match(text, speaker=speaker)}


@pytest.mark.parametrize("subtype", sorted(CASES))
def test_subtype_positive(lexicon, subtype):
    speaker, positive, _ = CASES[subtype]
    assert subtype in _markers(lexicon, speaker, positive)


@pytest.mark.parametrize("subtype", sorted(CASES))
def test_subtype_near_miss(lexicon, subtype):
    speaker, _, negative = CASES[subtype]
    assert subtype not in _markers(lexicon, speaker, negative)


def test_every_3rs_subtype_has_a_case_or_context_rule():
    covered = set(CASES) | {"minimal_response"}  # minimal response is judged in context: test_evidence
    assert set(RUPTURE_SUBTYPES["withdrawal"]) | set(RUPTURE_SUBTYPES["confrontation"]) <= covered
    assert set(REPAIR_SUBTYPES) <= covered


def test_every_markers_file_entry_is_a_known_name(lexicon):
    names = {e.marker for e in lexicon.entries}
    assert names >= set(RUPTURE_SUBTYPES["withdrawal"]) | set(RUPTURE_SUBTYPES["confrontation"])
    assert names >= set(REPAIR_SUBTYPES)


def test_normalize_expands_contractions_and_case():
    tokens, _ = normalize("This ISN'T helping, I'm SURE it won't.")
    assert tokens == ["this", "is", "not", "helping", "i", "am", "sure", "it", "will", "not"]


def test_negation_has_a_window(lexicon):
    assert "complaint_about_progress" in _markers(lexicon, "patient", "Nothing is helping.")
    # the negator is more than negation_window words before "helping"
    assert "complaint_about_progress" not in _markers(lexicon, "patient", "I don't know if this is helping.")
    # a negated phrase does not match
    assert "complaint_about_progress" not in _markers(lexicon, "patient", "It is not a waste of time.")


def test_negation_stays_in_its_clause(lexicon):
    # "no" belongs to the first clause; "helping" is not negated
    assert "complaint_about_progress" not in _markers(lexicon, "patient", "No, this is helping.")


def test_speakers_are_separate(lexicon):
    assert _markers(lexicon, "therapist", "This isn't helping.") == set()
    assert "validating" not in _markers(lexicon, "patient", "That makes a lot of sense.")


def test_hit_quotes_its_sentence_and_uses_entry_strength(lexicon):
    hits = lexicon.match("I came on time. You don't understand me.", speaker="patient")
    hit = next(h for h in hits if h.marker == "complaint_about_therapist")
    assert hit.sentence.text == "You don't understand me."
    assert hit.strength == pytest.approx(lexicon.entry("patient", "complaint_about_therapist").strength)


def test_weak_phrase_counts_at_weak_factor(lexicon):
    hit = next(h for h in lexicon.match("You always say that.", speaker="patient")
               if h.marker == "complaint_about_therapist")
    full = lexicon.entry("patient", "complaint_about_therapist").strength
    assert hit.strength == pytest.approx(full * lexicon.weak_factor)


def test_clinician_can_add_a_phrase(tmp_path: Path):
    text = MARKERS.read_text(encoding="utf-8").replace(
        'phrases = ["too expensive",', 'phrases = ["my insurance will not pay", "too expensive",')
    path = tmp_path / "markers.toml"
    path.write_text(text, encoding="utf-8")
    lex = load_lexicon(path)
    assert "complaint_about_parameters" in _markers(lex, "patient", "My insurance won't pay for this.")


def test_wildcard_matches_one_word(tmp_path: Path):
    path = tmp_path / "m.toml"
    path.write_text('[patient.denial]\nkind = "withdrawal"\nstrength = 0.5\nexplanation = "x"\n'
                    'phrases = ["it is * fine"]\n', encoding="utf-8")
    lex = load_lexicon(path)
    assert _markers(lex, "patient", "It's totally fine.") == {"denial"}
    assert _markers(lex, "patient", "It's fine.") == set()


def test_caret_matches_only_where_a_clause_begins(tmp_path: Path, lexicon):
    # the shipped file: "anyway" as a change of subject, not as "regardless"
    for text in ("Anyway, how was the game?", "It was long, but anyway, I don't know how he did it.",
                 "He talked a lot; anyway the dog was fine."):
        assert "avoidant_storytelling" in _markers(lexicon, "patient", text), text
    for text in ("I'm gonna do it anyway, because I need to.", "I don't drink much anyway."):
        assert "avoidant_storytelling" not in _markers(lexicon, "patient", text), text
    path = tmp_path / "m.toml"
    path.write_text('[patient.denial]\nkind = "withdrawal"\nstrength = 0.5\nexplanation = "x"\n'
                    'phrases = ["^it is * fine"]\n', encoding="utf-8")
    lex = load_lexicon(path)
    assert _markers(lex, "patient", "It's totally fine.") == {"denial"}
    assert _markers(lex, "patient", "Well, it's totally fine.") == {"denial"}  # after a comma
    assert _markers(lex, "patient", "I think it's totally fine.") == set()


@pytest.mark.parametrize("body, message", [
    ('[patient.denial]\nkind = "anger"\nstrength = 0.5\nexplanation = "x"\nphrases = ["a"]\n',
     r"denial.kind='anger' is not allowed"),
    ('[patient.sulking]\nkind = "withdrawal"\nstrength = 0.5\nexplanation = "x"\nphrases = ["a"]\n',
     r"\[patient.sulking\] is not a 3RS withdrawal subtype"),
    ('[patient.denial]\nkind = "withdrawal"\nstrength = 1.5\nexplanation = "x"\nphrases = ["a"]\n',
     r"denial.strength=1.5 is out of range; use 0..1"),
    ('[patient.denial]\nkind = "withdrawal"\nstrength = 0.5\nexplanation = "x"\nphrases = [""]\n',
     r"denial.phrases\[0\] must be a non-empty phrase"),
    ('[patient.denial]\nkind = "withdrawal"\nstrength = 0.5\nexplanation = "x"\nphrases = ["^"]\n',
     r"denial.phrases\[0\]='\^' has no words"),
    ('[patient.denial]\nkind = "withdrawal"\nstrength = 0.5\nexplanation = "x"\nphrase = ["a"]\n',
     r"unknown key patient.denial.phrase"),
    ('[therapist.bossy]\nkind = "confrontation"\nstrength = 0.5\nexplanation = "x"\nphrases = ["a"]\n',
     r"name therapist contributions therapist_"),
    ('[colours]\nred = 1\n', r"unknown section \[colours\]"),
    ('[patient.denial\n', r"invalid TOML"),
])
def test_markers_file_errors_are_one_line(tmp_path: Path, body: str, message: str):
    path = tmp_path / "markers.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as info:
        load_lexicon(path)
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)


def test_missing_markers_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="no such markers file"):
        load_lexicon(tmp_path / "nope.toml")


def test_replay_refuses_a_bad_markers_file_before_creating_the_session(tmp_path: Path, capsys):
    from session_monitor.cli.main import main

    bad = tmp_path / "markers.toml"
    bad.write_text('[patient.denial]\nkind = "withdrawal"\nstrength = 2\nexplanation = "x"\nphrases = ["a"]\n',
                   encoding="utf-8")
    config = tmp_path / "c.toml"
    config.write_text(f'[evidence]\nmarkers_file = "{bad}"\n', encoding="utf-8")
    audio = Path(__file__).resolve().parents[2] / "sample_audio" / "demo_session.flac"
    folder = tmp_path / "session"
    assert main(["replay", str(audio), "--config", str(config), "--session-dir", str(folder), "--no-view"]) == 2
    assert "denial.strength=2 is out of range; use 0..1" in capsys.readouterr().err
    assert not folder.exists()
