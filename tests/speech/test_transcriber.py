"""Transcription: the bundled model on real speech, and the hallucination guards."""

from __future__ import annotations

import pytest

from session_monitor.errors import ConfigError
from session_monitor.settings.loader import load_settings
from session_monitor.speech.asr_backend import AsrSegment, filter_segments, resolve_model
from support.audio import shared_file
from support.cli import events, run_cli, word_error_rate

JFK = ("And so my fellow Americans, ask not what your country can do for you, "
       "ask what you can do for your country.")


def seg(text: str, **kw) -> AsrSegment:
    return AsrSegment(start=0.0, end=1.0, text=text, words=(), **kw)


def settings():
    return load_settings().transcriber


def test_repetition_loop_is_dropped():
    looped = seg("I don't know. I don't know. I don't know. I don't know. I don't know. I don't know.")
    assert filter_segments([looped], settings()) == []


def test_ordinary_repetition_is_kept():
    kept = seg("No, no, I said I would do it.")
    assert filter_segments([kept], settings()) == [kept]


def test_stock_phrase_on_uncertain_audio_is_dropped_but_a_real_thank_you_is_kept():
    assert filter_segments([seg("Thank you.", no_speech_prob=0.5, avg_logprob=-0.5)], settings()) == []
    real = seg("Thank you.", no_speech_prob=0.01, avg_logprob=-0.2)
    assert filter_segments([real], settings()) == [real]


def test_silence_read_as_speech_is_dropped():
    ghost = seg("The end.", no_speech_prob=0.9, avg_logprob=-1.5)
    assert filter_segments([ghost], settings()) == []


def test_model_names_never_download_unless_allowed():
    s = load_settings(overrides={"transcriber": {"model": "base.en"}}).transcriber
    with pytest.raises(ConfigError, match="allow_download"):
        resolve_model(s)


def test_bundled_model_resolves_to_a_local_folder():
    target, name = resolve_model(settings())
    assert name.startswith("bundled:")
    assert (target and __import__("pathlib").Path(target, "model.bin").is_file())


@pytest.mark.slow
def test_jfk_word_error_rate_with_bundled_model(tmp_path):
    """../shared/data/jfk.flac (mixed to mono, 44.1 kHz kept) through the full pipeline: WER <= 10 %."""
    import soundfile as sf

    stereo, rate = sf.read(shared_file("jfk.flac"), dtype="float32")
    mono = tmp_path / "jfk_mono.flac"
    sf.write(mono, stereo.mean(axis=1), rate)
    out = tmp_path / "jfk"
    result = run_cli("replay", str(mono), "--session-dir", str(out), "--no-view")
    assert result.returncode == 0, result.stderr
    texts = [e for e in events(out) if e["type"] == "transcript" and e["final"]]
    hyp = " ".join(e["text"] for e in texts)
    wer = word_error_rate(JFK, hyp)
    assert wer <= 0.10, (wer, hyp)
    # word timestamps are in session time and inside their utterance
    for e in texts:
        for w in e["words"]:
            assert e["start"] - 0.05 <= w["start"] <= w["end"] <= e["end"] + 0.05


class _StretchingBackend:
    """Stand-in ASR returning fixed words, one stretched over the gap between packed utterances
    (as Whisper sometimes does); a mock, because the real model cannot be made to do it on cue."""

    name = "fixed"

    def transcribe(self, audio):
        from session_monitor.events import Word

        return [AsrSegment(0.0, 3.0, "one two three", (
            Word(0.1, 0.5, "one"), Word(0.6, 1.9, "two"), Word(2.0, 2.4, "three")))]


def test_packed_words_go_back_to_their_utterance_within_its_bounds():
    import numpy as np

    from session_monitor.speech.asr_backend import PACK_GAP_S, transcribe_packed

    first, second = np.zeros(16000, np.float32), np.zeros(8000, np.float32)  # 1.0 s, then 0.5 s
    out = transcribe_packed(_StretchingBackend(), [first, second])
    # packed layout: first [0, 1.0], gap 0.5 s, second [1.5, 2.0]
    assert PACK_GAP_S == 0.5
    assert [w.word for s in out[0] for w in s.words] == ["one"]
    two = [w for s in out[1] for w in s.words]
    assert [w.word for w in two] == ["two", "three"]
    for w in two:
        assert 0.0 <= w.start <= w.end <= 0.5
