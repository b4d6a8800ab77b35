"""Live transcripts sooner: an utterance's final Whisper pass starts at its first pause.

An utterance closes after ``speech_activity.utterance_end_ms`` of silence (500 ms), but
its speech segment already ended after ``min_pause_ms`` (200 ms). If the speaker says
nothing more, the audio the final pass gets is exactly the audio known at that
pause: the same span, the same padding. So when the transcriber is idle at a pause,
the pipeline sends the utterance so far at once (an *early final*) and, when the
utterance does close on that same span, publishes its result as the final
transcript instead of transcribing it again: the transcript comes up to
``utterance_end_ms - min_pause_ms`` sooner, with the same words.

If the speaker goes on instead, the early pass covered the first part of a longer
utterance: its result is published as an interim transcript (``final = false``),
and the utterance's own final pass runs when it closes, as always.

Only live sessions use this; a ``--speed max`` replay packs its passes instead.
"""

from __future__ import annotations

from dataclasses import replace

from session_monitor.speech.transcriber import TranscriptionJob, TranscriptionResult

__all__ = ["EarlyFinals"]


class EarlyFinals:
    """Book-keeping of early final passes: which are confirmed, which became interim."""

    def __init__(self) -> None:
        self._open: dict[int, TranscriptionJob] = {}  # channel -> early job not yet decided
        self._confirmed: set[int] = set()
        self._interim: set[int] = set()
        self._held: dict[int, TranscriptionResult] = {}  # results that came before the decision

    def started(self, job: TranscriptionJob) -> list[TranscriptionResult]:
        """An early pass was sent for ``job``'s channel; an older undecided one on that channel
        becomes an interim, returned if its result is already in."""
        released = self._demote(job.channel)
        self._open[job.channel] = job
        return released

    def close(self, channel: int, start: float, end: float, speaker: str) -> tuple[bool, list[TranscriptionResult]]:
        """The utterance of ``channel`` closed on ``[start, end]`` (padded, seconds).

        Returns whether an early pass covers exactly that (then send nothing) and the
        results now ready to publish (the early one, if it came already).
        """
        job = self._open.get(channel)
        if job is not None and job.start == start and job.end == end and job.speaker == speaker:
            del self._open[channel]
            held = self._held.pop(job.seq, None)
            if held is not None:
                return True, [held]
            self._confirmed.add(job.seq)
            return True, []
        return False, self._demote(channel)

    def result(self, result: TranscriptionResult) -> list[TranscriptionResult]:
        """A result from the worker: what to publish now (as final or interim), if anything."""
        seq = result.job.seq
        if seq in self._confirmed:
            self._confirmed.discard(seq)
            return [result]
        if seq in self._interim:
            self._interim.discard(seq)
            return [_as_interim(result)]
        if any(job.seq == seq for job in self._open.values()):
            self._held[seq] = result
            return []
        return [result]

    def _demote(self, channel: int) -> list[TranscriptionResult]:
        job = self._open.pop(channel, None)
        if job is None:
            return []
        held = self._held.pop(job.seq, None)
        if held is not None:
            return [_as_interim(held)]
        self._interim.add(job.seq)
        return []

    def finish(self) -> list[TranscriptionResult]:
        """End of session: undecided early results become interim ones."""
        out: list[TranscriptionResult] = []
        for channel in list(self._open):
            out += self._demote(channel)
        return out


def _as_interim(result: TranscriptionResult) -> TranscriptionResult:
    return TranscriptionResult(replace(result.job, final=False), result.segments, result.compute_s, result.error)
