"""The terminal view: what a user without a browser sees, rendered by rich."""

from __future__ import annotations

from rich.console import Console

from session_monitor.cli.terminal_view import TerminalView
from session_monitor.events import Health, MiFigures, Prosody, Signal, Speech, SpeechOnset, Transcript
from session_monitor.session.pipeline import RunStats


def render(view: TerminalView) -> str:
    console = Console(record=True, width=120, force_terminal=True, color_system=None)
    console.print(view)
    return console.export_text()


def test_levels_silence_transcript_and_health_are_shown():
    view = TerminalView(console=Console(force_terminal=True), total_s=100.0, title="demo.flac")
    view(Prosody(t=1.0, speaker="therapist", intensity_db=-24.0, intensity_z=0.1, f0_semitones=0.0))
    view(Prosody(t=1.0, speaker="patient", intensity_db=-60.0, intensity_z=None, f0_semitones=None))
    view(SpeechOnset(t=1.1, speaker="therapist", start=0.5))
    view(Speech(t=4.2, speaker="therapist", start=0.5, end=4.0))
    view(Transcript(t=4.6, speaker="therapist", start=0.5, end=4.0, text="How are you feeling today?"))
    view(Health(t=7.4, overflows=2, asr_queue=1, asr_lag_s=0.8, audio_ok=True))
    view(Signal(t=7.5, likelihood=0.42, withdrawal=0.42, confrontation=0.05))
    view.progress(50.0, RunStats(audio_s=50.0, wall_s=2.0))
    text = render(view)
    assert "therapist" in text and "-24.0 dBFS" in text and "-60.0 dBFS" in text
    assert "silence" in text and " 3.5 s" in text  # 7.5 - 4.0
    assert "therapist: How are you feeling today?" in text
    assert "overflows 2" in text and "ASR queue 1" in text and "lag  0.8 s" in text
    assert "rupture" in text and "0.42" in text
    assert "25.0x real time" in text


def test_lost_audio_is_loud():
    view = TerminalView(console=Console(force_terminal=True))
    view(Health(t=3.0, audio_ok=False, message="audio lost: 'pulse' stopped delivering; retrying"))
    text = render(view)
    assert "AUDIO LOST" in text and "stopped delivering; retrying" in text


def test_speaking_hides_the_silence_counter():
    view = TerminalView(console=Console(force_terminal=True))
    view(Speech(t=2.2, speaker="patient", start=0.0, end=2.0))
    view(SpeechOnset(t=5.1, speaker="patient", start=5.0))
    view(Prosody(t=6.0, speaker="patient", intensity_db=-30.0, intensity_z=0.0, f0_semitones=None))
    lines = [line for line in render(view).splitlines() if "silence" in line]
    assert lines and lines[0].rstrip(" │").endswith("-")


def test_a_final_transcript_replaces_its_interim_line():
    view = TerminalView(console=Console(force_terminal=True))
    view(Transcript(t=8.0, speaker="patient", start=1.0, end=8.0, text="I went to the", final=False))
    view(Transcript(t=9.5, speaker="patient", start=1.0, end=9.0, text="I went to the shop yesterday."))
    text = render(view)
    assert text.count("patient: I went to the") == 1 and "shop yesterday." in text


def test_input_problems_stay_on_the_view_until_they_clear():
    view = TerminalView(console=Console(force_terminal=True))
    hint = "patient is very quiet (speech peaks at -52 dBFS): move its microphone closer or raise its input gain"
    view(Health(t=20.8, problem="too_quiet", channel=1, speaker="patient", hint=hint))
    view(Health(t=21.0, overflows=0))  # the pipeline's own health does not hide it
    text = render(view)
    assert "input" in text and "move its microphone closer" in text
    view(Health(t=60.0, problem="too_quiet", channel=1, speaker="patient", hint="cleared", cleared=True))
    assert "move its microphone closer" not in render(view)


def test_without_a_terminal_an_input_problem_is_said_once():
    console = Console(record=True, force_terminal=False, width=200)
    view = TerminalView(console=console)
    assert not view.enabled
    hint = "both channels carry the same signal (a mono recording saved as stereo)"
    for t in (3.0, 4.0):
        view(Health(t=t, problem="dual_mono", hint=hint))
    assert console.export_text().count(hint) == 1


def test_why_and_the_mi_figures_are_shown():
    view = TerminalView(console=Console(force_terminal=True), min_marker_strength=0.05)
    evidence = ({"marker": "minimal_response", "kind": "withdrawal", "strength": 0.7,
                 "explanation": "3.4 s silence after your question"},
                {"marker": "defending_self", "kind": "confrontation", "strength": 0.02,
                 "explanation": "sustain talk (p=0.28): patient: 'Mostly my sister'"},
                {"marker": "lowered_voice", "kind": "withdrawal", "strength": 0.4,
                 "explanation": "patient's voice 6 dB quieter than usual"})
    view(Signal(t=7.5, likelihood=0.62, withdrawal=0.62, confrontation=0.05, evidence=evidence))
    view(MiFigures(t=7.6, reflections=3, questions=2, reflection_to_question=1.5, complex_reflection_share=1 / 3,
                   open_question_share=0.5, change_talk=4, sustain_talk=1, input_share=0.25))
    text = render(view)
    # the strongest evidence the display shows (the 0.02 one is under the floor: one more, not two)
    assert "why" in text and "3.4 s silence after your question [withdrawal]  (+1 more)" in text
    flat = " ".join(line.strip(" │") for line in text.splitlines())  # the row wraps at 120 columns
    assert ("MI" in text and "reflections : questions 1.5 (3 : 2) · complex reflections 33% · open questions 50% · "
            "client change talk 4 vs sustain talk 1 · advice or information in 25% of your turns"
            in " ".join(flat.split()))


def test_no_why_without_evidence_and_no_mi_row_without_classifiers():
    view = TerminalView(console=Console(force_terminal=True))
    view(Signal(t=7.5, likelihood=0.02, withdrawal=0.02, confrontation=0.0))
    text = render(view)
    assert "rupture" in text and " why " not in text and "reflections" not in text
