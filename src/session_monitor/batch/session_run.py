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
from session_monitor.shorten import shorten

__all__ = ["Outcome", "Task", "run_task", "worker_backend"]

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


def _replay(task: Task, path: Path, folder: Path) -> tuple[float, int]:
    """The session of ``path`` into ``folder`` (as ``replay --speed max --no-view``); returns
    (audio seconds, models loaded)."""
    from session_monitor.audio.file_source import FileSource
    from session_monitor.session.roles import parse_roles
    from session_monitor.session.runner import SessionRun

    settings = task.settings
    source = FileSource(path, block_ms=settings.audio.block_ms, speed=None)
    source.name = task.source  # the events name the recording as the user gave it, also on a remote worker
    roles_text = ",".join(task.roles) if task.roles is not None else None
    try:
        roles = parse_roles(roles_text, source.channels, settings.roles)
    except InputError as exc:
        raise InputError(f"{task.source}: {exc}") from None
    meta = {"mode": "replay", "source": task.source, "speed": "max",
            "source_rate": source.native_rate, "source_channels": source.channels}
    backend, loads = worker_backend(settings.transcriber) if settings.transcriber.enabled else (None, 0)
    run = SessionRun(settings, source, roles, meta=meta, deterministic=True, backend=backend)
    try:
        # an earlier, interrupted or other-settings session of this name is moved aside
        # (NAME.replaced-STAMP), never deleted
        run.claim(folder, force=True)
        run.start(extra_meta={"dashboard": None, "batch": task.key,
                              "batch_worker": {"pid": os.getpid(), "model_loaded": bool(loads)}})
        try:
            stats = run.run()
        except BaseException as exc:
            run.finish(None, error=str(exc) or type(exc).__name__)
            raise
        finally:
            run.close()
        run.finish(stats)
    finally:
        run.release()
    return stats.audio_s, loads


def _one_line(exc: BaseException, task: Task, path: Path | None) -> str:
    """The error's first line, naming the recording as the user did (not a worker's temporary copy)."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if path is not None and str(path) != task.source:
        text = text.replace(str(path), task.source)
    if not isinstance(exc, SessionMonitorError):
        text = f"{task.source}: {type(exc).__name__}: {text}"
    return shorten(text, 300)


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
