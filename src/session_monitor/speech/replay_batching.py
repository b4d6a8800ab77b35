"""``--speed max`` replay: each speaker's utterances packed into few Whisper passes.

Whisper's encoder always sees a 30 s window, so one pass over up to
``transcriber.batch_s`` seconds of one speaker's utterances (with the short gaps
between them, ``asr_backend.transcribe_packed``) costs about what a pass over one
short utterance does. What goes into a batch, and when it is sent, depends only on
session time, never on how fast the worker is, so a replay stays deterministic: a
batch is sent when the next utterance would not fit, when its first utterance has
waited half of ``transcriber.max_lookahead_s`` (the outbox will need it soon), when
the outbox waits for one of its utterances, and at the end.
"""

from __future__ import annotations

from session_monitor.settings.loader import TranscriberSettings
from session_monitor.speech.asr_backend import PACK_GAP_S
from session_monitor.speech.transcriber import TranscriptionJob, TranscriptionWorker

__all__ = ["ReplayBatches"]


def packed_length(jobs: list[TranscriptionJob]) -> float:
    """Seconds of audio Whisper gets for these utterances packed into one pass (gaps included)."""
    return sum(j.end - j.start for j in jobs) + PACK_GAP_S * (len(jobs) - 1)


class ReplayBatches:
    """Open batches per (channel, speaker): one voice per pass, also on an attributed mono channel."""

    def __init__(self, worker: TranscriptionWorker, settings: TranscriberSettings) -> None:
        self.worker = worker
        self.settings = settings
        self._open: dict[tuple[int, str], list[TranscriptionJob]] = {}

    def add(self, job: TranscriptionJob) -> None:
        limit = self.settings.batch_s
        if limit <= 0:
            self.worker.submit_batch([job])
            return
        key = (job.channel, job.speaker)
        batch = self._open.get(key, [])
        if batch and packed_length([*batch, job]) > limit:
            self._send(key)
        self._open.setdefault(key, []).append(job)

    def send_stale(self, t: float) -> None:
        """Send each batch whose first utterance waited half the lookahead by session time ``t``."""
        wait = self.settings.max_lookahead_s / 2
        for key, batch in list(self._open.items()):
            if batch and t - batch[0].submitted_t >= wait:
                self._send(key)

    def send_holding(self, seq: int) -> None:
        """Send the batch that holds job ``seq``, and no other (what else is sent must not
        depend on how fast the worker is)."""
        for key, batch in list(self._open.items()):
            if any(j.seq == seq for j in batch):
                self._send(key)

    def send_all(self) -> None:
        for key in list(self._open):
            self._send(key)

    def _send(self, key: tuple[int, str]) -> None:
        batch = self._open.pop(key, [])
        if batch:
            self.worker.submit_batch(batch)
