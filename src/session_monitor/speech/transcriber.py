"""Transcription worker: the ASR backend on its own thread, with a streaming policy.

:class:`TranscriptionWorker` runs one utterance (or one packed batch, on a
``--speed max`` replay) at a time on its own thread (CTranslate2 releases the GIL, so
prosody keeps running), keeps a bounded queue that skips the *oldest* pending utterance
when full (a live monitor wants the newest words), restarts a failing backend, and
counts what ``health`` reports. The backend itself is :mod:`session_monitor.speech.asr_backend`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from session_monitor.events import Word
from session_monitor.settings.loader import TranscriberSettings
from session_monitor.speech.asr_backend import AsrBackend, AsrSegment, filter_segments, transcribe_packed

__all__ = ["TranscriptionJob", "TranscriptionResult", "TranscriptionWorker", "release_free_memory"]

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class TranscriptionJob:
    """An utterance waiting for ASR; times are session seconds."""

    seq: int
    channel: int
    speaker: str
    start: float
    end: float
    audio: np.ndarray
    final: bool
    submitted_t: float  # session time at which the utterance became available
    submitted_wall: float = field(default_factory=time.monotonic)


@dataclass(slots=True)
class TranscriptionResult:
    job: TranscriptionJob
    segments: list[AsrSegment]
    compute_s: float
    error: str = ""

    @property
    def words(self) -> tuple[Word, ...]:
        """Words in session time."""
        off = self.job.start
        return tuple(
            Word(start=w.start + off, end=w.end + off, word=w.word, probability=w.probability)
            for seg in self.segments
            for w in seg.words
        )

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments).strip()


def _malloc_trim() -> Callable[[], None]:
    """glibc's ``malloc_trim(0)``, or a no-op where there is none (not glibc)."""
    try:
        import ctypes

        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return lambda: None

    def release() -> None:
        trim(0)

    return release


#: Hand memory freed after a Whisper pass back to the system. Without it the allocator keeps
#: the high-water mark of the largest pass so far, and RSS steps up over a long session
#: (benchmarks/RESULTS.md, "RSS over 60 minutes"); a call costs well under a millisecond.
release_free_memory = _malloc_trim()


class TranscriptionWorker:
    """Runs a backend on its own thread over a bounded queue of utterances.

    When the queue is full the *oldest* pending job is skipped (``skipped`` counts
    them). A backend exception is logged and counted in ``errors``; the job yields no
    words and the worker goes on. After ``restart_after`` failures in a row the backend
    is rebuilt with ``backend_factory`` (``restarts`` counts that), and a worker thread
    that died is started again by :meth:`ensure_running`. Results are collected with
    :meth:`results`.
    """

    def __init__(self, backend: AsrBackend, settings: TranscriberSettings, *,
                 backend_factory: Callable[[], AsrBackend] | None = None, restart_after: int = 2) -> None:
        self.backend = backend
        self.settings = settings
        self.backend_factory = backend_factory
        self.restart_after = restart_after
        self.restarts = 0
        self._failures_in_row = 0
        # each queue entry is a unit of work: one utterance, or a packed batch of one speaker's
        self._units: deque[list[TranscriptionJob]] = deque()
        self._results: deque[TranscriptionResult] = deque()
        self._cond = threading.Condition()
        self._busy: list[TranscriptionJob] = []
        self._stop = False
        self.skipped = 0
        self.errors = 0
        self._thread = threading.Thread(target=self._run, name="transcriber", daemon=True)
        self._thread.start()

    def ensure_running(self) -> bool:
        """Restart the worker thread if it died; True when it had to."""
        if self._thread.is_alive() or self._stop:
            return False
        logger.error("transcriber thread died; restarting it")
        with self._cond:
            self._busy = []
        self.restarts += 1
        self._thread = threading.Thread(target=self._run, name="transcriber", daemon=True)
        self._thread.start()
        return True

    # -- producer side (pipeline thread) ---------------------------------------------------------

    def submit(self, job: TranscriptionJob, *, drop_oldest: bool = True) -> None:
        """Queue one utterance; with ``drop_oldest`` a full queue skips its oldest entry."""
        self.submit_batch([job], drop_oldest=drop_oldest)

    def submit_batch(self, jobs: list[TranscriptionJob], *, drop_oldest: bool = False) -> None:
        """Queue utterances of one speaker to be transcribed in one packed pass."""
        if not jobs:
            return
        with self._cond:
            if drop_oldest:
                while len(self._units) >= self.settings.queue_size:
                    for old in self._units.popleft():
                        self.skipped += 1
                        logger.warning("ASR behind: skipped %.1f s utterance of %s", old.end - old.start,
                                       old.speaker)
            self._units.append(list(jobs))
            self._cond.notify_all()

    @property
    def pending(self) -> int:
        """Utterances queued or being transcribed."""
        with self._cond:
            return sum(len(u) for u in self._units) + len(self._busy)

    def oldest_pending_t(self) -> float | None:
        with self._cond:
            times = [j.submitted_t for unit in self._units for j in unit] + [j.submitted_t for j in self._busy]
            return min(times) if times else None

    def results(self) -> list[TranscriptionResult]:
        with self._cond:
            out = list(self._results)
            self._results.clear()
        return out

    def wait_for(self, seq: int, timeout: float | None = None) -> None:
        """Block until job ``seq`` has a result, was skipped, or ``timeout`` passes."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._done(seq):
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return
                self._cond.wait(remaining)

    def _done(self, seq: int) -> bool:
        """Neither queued nor being transcribed: its result is in, or it was skipped."""
        if any(j.seq == seq for j in self._busy):
            return False
        return all(j.seq != seq for unit in self._units for j in unit)

    def cancel_pending(self) -> int:
        """Drop every queued utterance (counted in ``skipped``); the one in hand finishes.

        For an aborted session: :meth:`close` then waits only for the utterance being
        transcribed. Safe to call from a signal handler in the main thread (the lock is
        re-entrant and held only briefly). Returns how many utterances were dropped.
        """
        with self._cond:
            dropped = [job for unit in self._units for job in unit]
            self._units.clear()
            self.skipped += len(dropped)
            self._cond.notify_all()
        return len(dropped)

    def close(self, *, drain: bool = True, timeout: float = 60.0) -> None:
        """Stop the thread; with ``drain`` finish pending jobs first (up to ``timeout`` s)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while drain and (self._units or self._busy) and time.monotonic() < deadline:
                self._cond.wait(0.1)
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout=5)

    # -- worker thread ---------------------------------------------------------------------------------

    def _rebuild_backend(self) -> None:
        assert self.backend_factory is not None
        try:
            self.backend = self.backend_factory()
            self.restarts += 1
            self._failures_in_row = 0
            logger.warning("transcriber restarted after repeated failures")
        except Exception:
            logger.exception("rebuilding the transcriber failed; keeping the old one")

    def _transcribe_unit(self, unit: list[TranscriptionJob]) -> list[list[AsrSegment]]:
        if len(unit) == 1:
            return [self.backend.transcribe(unit[0].audio)]
        return transcribe_packed(self.backend, [j.audio for j in unit])

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._units and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                unit = self._units.popleft()
                self._busy = unit
            t0 = time.perf_counter()
            error = ""
            try:
                per_job = [filter_segments(segs, self.settings) for segs in self._transcribe_unit(unit)]
            except Exception as exc:  # a failing backend must not stop the session
                logger.exception("transcriber failed on %d utterance(s) of %.1f s", len(unit),
                                 sum(j.end - j.start for j in unit))
                per_job, error = [[] for _ in unit], f"{type(exc).__name__}: {exc}"[:200]
            self._failures_in_row = self._failures_in_row + 1 if error else 0
            if error and self.backend_factory is not None and self._failures_in_row >= self.restart_after:
                self._rebuild_backend()
            compute_s = (time.perf_counter() - t0) / len(unit)
            release_free_memory()
            with self._cond:
                if error:
                    self.errors += 1
                for job, segments in zip(unit, per_job):
                    self._results.append(TranscriptionResult(job, segments, compute_s, error))
                self._busy = []
                self._cond.notify_all()
