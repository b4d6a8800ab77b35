"""The session's utterances to the transcription worker, and its results back as transcripts.

The pipeline keeps each channel's recent audio here (:class:`~session_monitor.audio.ring.AudioRing`)
and hands over utterances as the speech activity closes them. How they are sent
depends on the run:

- live: each utterance on its own, the oldest dropped when the worker is behind; an
  *early final* at the first pause when the worker is idle
  (:mod:`session_monitor.speech.early_finals`), interim passes over long utterances;
- ``--speed max`` replay: packed into few passes (:mod:`session_monitor.speech.replay_batching`),
  each utterance holding its place in the pipeline's ordered output until its
  transcript is in (a :class:`TranscriptSlot`), so the events are deterministic.

Everything it returns for the output is a ``(t, item)`` pair for the pipeline's outbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from session_monitor.audio.frames import SAMPLE_RATE
from session_monitor.audio.ring import AudioRing
from session_monitor.events import Transcript
from session_monitor.settings import TranscriberSettings
from session_monitor.speech.activity import SpeechActivity
from session_monitor.speech.early_finals import EarlyFinals
from session_monitor.speech.replay_batching import ReplayBatches
from session_monitor.speech.transcriber import TranscriptionJob, TranscriptionResult, TranscriptionWorker

__all__ = ["TranscriptFeed", "TranscriptSlot"]


@dataclass(frozen=True, slots=True)
class TranscriptSlot:
    """The place of one utterance's transcript in the ordered output of a ``--speed max`` replay."""

    job_seq: int


class TranscriptFeed:
    """Utterances out to ``worker``, transcripts back.

    Parameters
    ----------
    worker : the transcription worker, or None (prosody only: nothing is sent)
    settings : the [transcriber] section
    roles : speaker of each channel
    deterministic : a ``--speed max`` replay (packed passes, transcripts in utterance order)
    keep_s : seconds of audio kept per channel (the longest utterance, its padding, and a margin)
    """

    def __init__(self, worker: TranscriptionWorker | None, settings: TranscriberSettings, *,
                 roles: Sequence[str], deterministic: bool, keep_s: float) -> None:
        self.worker = worker
        self.settings = settings
        self.roles = list(roles)
        self.deterministic = deterministic
        self.rings = [AudioRing(int(keep_s * SAMPLE_RATE)) for _ in self.roles]
        self._job_seq = 0
        self._results: dict[int, TranscriptionResult] = {}
        self.batches = ReplayBatches(worker, settings) if worker is not None and deterministic else None
        live = worker is not None and not deterministic
        self.early = EarlyFinals() if live and settings.early_final else None
        self._next_interim = [0.0] * len(self.roles)
        self.pad = settings.pad_ms * SAMPLE_RATE // 1000  # samples kept around an utterance

    # -- sending ----------------------------------------------------------------------------------------

    def _job(self, channel: int, start: int, end: int, *, final: bool, t: float,
             speaker: str | None) -> TranscriptionJob | None:
        a0 = max(0, start - self.pad)
        audio = self.rings[channel].get(a0, end + self.pad)
        if len(audio) < SAMPLE_RATE // 10:
            return None
        self._job_seq += 1
        return TranscriptionJob(self._job_seq, channel, speaker or self.roles[channel], a0 / SAMPLE_RATE,
                                (a0 + len(audio)) / SAMPLE_RATE, audio.copy(), final, t)

    def submit(self, channel: int, start: int, end: int, *, final: bool, t: float,
               speaker: str | None = None) -> list[tuple[float, TranscriptSlot | TranscriptionResult]]:
        """Send samples ``[start, end)`` of ``channel``; what the output gets now (a slot, or early results)."""
        if self.worker is None:
            return []
        job = self._job(channel, start, end, final=final, t=t, speaker=speaker)
        if job is None:
            return []
        if final:
            self._next_interim[channel] = 0.0
        if self.batches is not None:
            self.batches.add(job)
            return [(t, TranscriptSlot(job.seq))]
        out: list[tuple[float, TranscriptSlot | TranscriptionResult]] = []
        if final and self.early is not None:
            covered, ready = self.early.close(channel, job.start, job.end, job.speaker)
            out += [(t, r) for r in ready]
            if covered:
                return out  # the early pass at the pause has (or will have) these very words
        self.worker.submit(job, drop_oldest=True)
        return out

    def at_pause(self, channel: int, speaker: str, t: float, vads: Sequence[SpeechActivity],
                 position: int) -> list[TranscriptionResult]:
        """At a pause on ``channel``, if the worker is idle: transcribe the utterance so far (see
        early_finals).

        Not while another channel's speaker is talking in an utterance that began before this
        one: they hold the floor and may end any moment, and their final would wait behind a
        pass that may turn out an interim (this speaker may go on: a reply inside their turn).
        One who started talking *after* this utterance began is taking the turn over: their
        utterance is young, and this one's final is the one due now."""
        if self.early is None or self.worker is None or self.worker.pending:
            return []
        span = vads[channel].paused_utterance()
        if span is None or position < span[1] + self.pad:
            return []  # still speaking, or the padding after the pause is not recorded yet
        if any(_holds_floor(v, span[0]) for c, v in enumerate(vads) if c != channel):
            return []
        job = self._job(channel, span[0], span[1], final=True, t=t, speaker=speaker)
        if job is None:
            return []
        released = self.early.started(job)
        self.worker.submit(job, drop_oldest=True)
        return released

    def interim(self, vads: Sequence[SpeechActivity], t: float) -> list[tuple[float, TranscriptSlot | TranscriptionResult]]:
        """Interim passes over long open utterances (live only: they serve latency)."""
        every = self.settings.interim_every_s
        if self.worker is None or every <= 0 or self.deterministic:
            return []
        out: list[tuple[float, TranscriptSlot | TranscriptionResult]] = []
        for c, vad in enumerate(vads):
            span = vad.open_utterance()
            if span is None:
                continue
            length = (span[1] - span[0]) / SAMPLE_RATE
            if self._next_interim[c] == 0.0:
                self._next_interim[c] = every
            if length >= self._next_interim[c] and self.worker.pending == 0:
                self._next_interim[c] = length + every
                out += self.submit(c, span[0], span[1], final=False, t=t)
        return out

    def send_stale(self, t: float) -> None:
        if self.batches is not None:
            self.batches.send_stale(t)

    # -- receiving ----------------------------------------------------------------------------------------

    def collect(self) -> list[TranscriptionResult]:
        """Results in from the worker that the output can take now (a replay holds them for their slot)."""
        if self.worker is None:
            return []
        ready: list[TranscriptionResult] = []
        for result in self.worker.results():
            if self.deterministic:
                self._results[result.job.seq] = result
            else:
                ready += self.early.result(result) if self.early is not None else [result]
        return ready

    def slot_result(self, slot: TranscriptSlot, *, behind_s: float, final: bool) -> tuple[bool, TranscriptionResult | None]:
        """``(ready, result)`` for a replay's slot: not ready while the pipeline is less than
        ``transcriber.max_lookahead_s`` ahead of it (unless ``final``); else its result, or None
        when it was skipped or failed (then nothing is published)."""
        if slot.job_seq not in self._results:
            if not final and behind_s < self.settings.max_lookahead_s:
                return False, None
            assert self.worker is not None and self.batches is not None
            self.batches.send_holding(slot.job_seq)  # normally sent already, by session time
            self.worker.wait_for(slot.job_seq)
            self.collect()
        return True, self._results.pop(slot.job_seq, None)

    def finish(self) -> list[TranscriptionResult]:
        """End of the session: send what is held, let the worker drain, return what is ready."""
        if self.batches is not None:
            self.batches.send_all()
        if self.worker is None:
            return []
        # a --speed max replay must have every transcript (its events wait for them in order); a
        # limit here left a worker on a loaded machine stopped with utterances queued, and the
        # replay waiting for them for ever (benchmarks/batch.py, 2 workers on 2 busy cores)
        self.worker.close(drain=True, timeout=float("inf") if self.deterministic else 60.0)
        ready = self.collect()
        if self.early is not None:
            ready += self.early.finish()
        return ready


def _holds_floor(vad: SpeechActivity, since: int) -> bool:
    """Whether ``vad``'s speaker is talking in an utterance open since before sample ``since``."""
    span = vad.open_utterance()
    return vad.speaking and span is not None and span[0] <= since


def to_transcript(result: TranscriptionResult, t: float) -> Transcript | None:
    """The ``transcript`` event of ``result``, known at session time ``t`` (None for no words)."""
    job = result.job
    if not result.text:
        return None
    words = result.words
    words_per_s = None
    if len(words) >= 2 and words[-1].end > words[0].start:
        words_per_s = len(words) / (words[-1].end - words[0].start)
    return Transcript(t=t, speaker=job.speaker, start=job.start, end=job.end, text=result.text, words=words,
                      final=job.final, words_per_s=words_per_s, asr_lag_s=t - job.end,
                      asr_compute_s=result.compute_s)
