"""Early final passes (live): the final Whisper pass of an utterance starts at its first pause.

The book-keeping is tested on plain jobs and results; the pipeline test replays a
scripted recording in real time (the live code path: paced, not deterministic) with
the real bundled Whisper model, and counts the passes it makes.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from session_monitor.audio.file_source import FileSource
from session_monitor.events import Transcript
from session_monitor.session.bus import EventBus
from session_monitor.session.pipeline import Pipeline
from session_monitor.settings.loader import load_settings
from session_monitor.speech.asr_backend import WhisperBackend
from session_monitor.speech.early_finals import EarlyFinals
from session_monitor.speech.transcriber import TranscriptionJob, TranscriptionResult, TranscriptionWorker
from support.audio import SR, espeak, noise


def job(seq: int, start: float, end: float, channel: int = 0, speaker: str = "patient") -> TranscriptionJob:
    return TranscriptionJob(seq, channel, speaker, start, end, np.zeros(16), True, end)


def result(j: TranscriptionJob) -> TranscriptionResult:
    return TranscriptionResult(j, [], 0.1)


def test_confirmed_early_result_is_final_whether_it_comes_before_or_after_the_close():
    early = EarlyFinals()
    a = job(1, 0.0, 2.0)
    assert early.started(a) == []
    assert early.result(result(a)) == []  # not closed yet: held
    covered, ready = early.close(0, 0.0, 2.0, "patient")
    assert covered and [r.job.seq for r in ready] == [1] and ready[0].job.final

    b = job(2, 5.0, 6.0)
    early.started(b)
    assert early.close(0, 5.0, 6.0, "patient") == (True, [])
    [late] = early.result(result(b))
    assert late.job.final


def test_an_utterance_that_went_on_turns_the_early_pass_into_an_interim():
    early = EarlyFinals()
    a = job(1, 0.0, 2.0)
    early.started(a)
    covered, ready = early.close(0, 0.0, 4.5, "patient")  # the speaker went on after the pause
    assert not covered and ready == []
    [interim] = early.result(result(a))
    assert interim.job.final is False and interim.job.seq == 1
    # a held result is released as an interim at once; other channels and unrelated results pass
    c, other = job(3, 7.0, 8.0), job(4, 7.0, 8.0, channel=1, speaker="therapist")
    early.started(c)
    assert early.result(result(c)) == []
    assert [r.job.final for r in early.close(0, 7.0, 9.0, "patient")[1]] == [False]
    assert early.result(result(other))[0].job.final
    d, e = job(5, 10.0, 11.0), job(6, 10.0, 12.0)
    early.started(d)
    assert early.result(result(d)) == []
    # a second pause before the close: the first early pass is now an interim
    assert [(r.job.seq, r.job.final) for r in early.started(e)] == [(5, False)]
    assert early.result(result(e)) == [] and [(r.job.seq, r.job.final) for r in early.finish()] == [(6, False)]


def _recording(tmp_path) -> str:
    """Patient channel: a sentence, 2 s of silence, a sentence with a 300 ms pause inside."""
    first = espeak("I went to the market on monday")
    second_a, second_b = espeak("and then I came home"), espeak("and made some tea")
    gap = noise(2 * SR, seed=1)
    short = noise(int(0.3 * SR), seed=2)  # > min_pause (200 ms), < utterance_end (500 ms)
    patient = np.concatenate([noise(SR // 2), first, gap, second_a, short, second_b, noise(2 * SR, seed=3)])
    path = tmp_path / "session.wav"
    sf.write(path, np.stack([noise(len(patient), seed=4), patient], axis=1), SR)
    return str(path)


def _live_passes(path, settings, early_jobs: list | None = None) -> tuple[list[Transcript], list[float]]:
    """The transcripts of a paced replay of ``path`` (the live code path, the real bundled model)
    and the length of each Whisper pass, in the order the worker's one thread made them; the
    early passes sent are appended to ``early_jobs``."""
    backend = WhisperBackend(settings.transcriber)
    passes: list[float] = []
    original = backend.transcribe

    def counting(audio):
        passes.append(len(audio) / SR)
        return original(audio)

    backend.transcribe = counting
    worker = TranscriptionWorker(backend, settings.transcriber)
    bus = EventBus()
    got: list[Transcript] = []
    bus.subscribe(lambda e: got.append(e) if isinstance(e, Transcript) else None)
    source = FileSource(path, block_ms=settings.audio.block_ms, speed=1.0)  # paced: the live code path
    pipeline = Pipeline.from_settings(settings, source, bus, roles=["therapist", "patient"], worker=worker)
    if early_jobs is not None:
        started = pipeline.feed.early.started
        pipeline.feed.early.started = lambda job: early_jobs.append(job) or started(job)
    pipeline.run()
    return got, passes


@pytest.mark.slow
def test_live_path_transcribes_a_closed_utterance_once_and_gets_the_same_words(tmp_path):
    path = _recording(tmp_path)
    out = {}
    for early_final in (True, False):
        out[early_final] = _live_passes(path, load_settings(overrides={"transcriber": {"early_final": early_final}}))

    finals = {k: [t for t in v[0] if t.final and t.speaker == "patient"] for k, v in out.items()}
    assert [t.text for t in finals[True]] == [t.text for t in finals[False]]
    assert len(finals[True]) == 2 and "market" in finals[True][0].text.lower()
    assert "tea" in finals[True][1].text.lower()
    # with early finals every utterance is transcribed once at a pause: the first sentence at
    # its end, the second at its inner pause (that pass is published as an interim of its
    # first half: the speaker went on) and again at its end
    interims = [t for t in out[True][0] if not t.final and t.speaker == "patient"]
    assert len(out[True][1]) == 3 and len(out[False][1]) == 2, out
    assert len(interims) == 1
    assert interims[0].start == finals[True][1].start and interims[0].end < finals[True][1].end - 1.0


@pytest.mark.slow
def test_no_early_pass_while_the_other_speaker_talks(tmp_path):
    """The patient pauses inside a short reply while the therapist is still talking: an early pass
    then would turn into an interim (the patient goes on) and hold up the therapist's final."""
    therapist = espeak("I was wondering whether we could look at the list of worries from last week together")
    reply_a, reply_b = espeak("yes"), espeak("I see what you mean")
    pause = noise(int(0.3 * SR), seed=2)  # > min_pause (200 ms), < utterance_end (500 ms)
    lead = SR // 2
    patient = np.concatenate([noise(lead + SR, seed=5), reply_a, pause, reply_b])
    assert len(patient) < lead + len(therapist) - SR // 2, "the reply must end while the therapist talks"
    n = lead + len(therapist) + 2 * SR
    left = np.concatenate([noise(lead, seed=1), therapist, noise(n - lead - len(therapist), seed=3)])
    right = np.concatenate([patient, noise(n - len(patient), seed=4)])
    path = tmp_path / "overlap.wav"
    sf.write(path, np.stack([left, right], axis=1), SR)
    got, passes = _live_passes(path, load_settings())
    finals = {t.speaker: t for t in got if t.final}
    assert "see" in finals["patient"].text.lower() and "worries" in finals["therapist"].text.lower()
    assert not [t for t in got if not t.final], "no interim: nothing was transcribed before its speaker went on"
    assert len(passes) == 2, passes  # one pass each


@pytest.mark.slow
def test_early_pass_when_the_other_speaker_has_just_taken_the_turn(tmp_path):
    """The patient starts talking before the therapist has finished (they take the turn over):
    the therapist's final pass still starts at their pause, not 300 ms later at the close."""
    therapist = espeak("I was wondering whether we could look at the list of worries from last week")
    reply = espeak("well I suppose we could but I am not sure it will help me very much this time")
    lead = SR // 2
    reply_at = lead + len(therapist) - int(0.8 * SR)  # 0.8 s of overlap at the change of turn
    n = reply_at + len(reply) + 2 * SR
    left = np.concatenate([noise(lead, seed=1), therapist, noise(n - lead - len(therapist), seed=3)])
    right = np.concatenate([noise(reply_at, seed=5), reply, noise(n - reply_at - len(reply), seed=4)])
    path = tmp_path / "take_over.wav"
    sf.write(path, np.stack([left, right], axis=1), SR)
    early: list = []
    got, passes = _live_passes(path, load_settings(), early)
    finals = {t.speaker: t for t in got if t.final}
    assert "worries" in finals["therapist"].text.lower() and "help" in finals["patient"].text.lower()
    assert not [t for t in got if not t.final] and len(passes) == 2, passes
    # the therapist's one pass was the early one, sent at their pause while the patient talked
    [sent] = [j for j in early if j.speaker == "therapist"]
    assert (sent.start, sent.end) == (finals["therapist"].start, finals["therapist"].end)
