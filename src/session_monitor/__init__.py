"""session-monitor: a quiet rupture indicator for therapy sessions.

The package is laid out the way the data flows, one folder per stage::

    errors, events, event_log, quotes,     values every stage shares (exceptions, the event types,
    talk_time                              reading events.jsonl back, quoted words in explanations,
                                           talk time over a window)
    settings/    typed settings sections loaded and validated from TOML
    audio/       the AudioSource protocol, frames, the audio ring, microphone, file replay,
                 read-ahead, the audio recorder
    speech/      speech activity (Silero VAD), turn-taking, the ASR backend and transcription worker,
                 early finals, replay batching
    prosody/     the prosody tracker, pitch (YIN), syllable peaks
    speakers/    speaker attribution on one microphone, clustering, enrolment (the library half)
    rupture/     the rupture model: patient and therapist evidence, the lexicon, baselines, fusion,
                 episodes
    session/     the pipeline, the stage interfaces, the event bus, the session store, consent,
                 the session runner
    clinician/   annotations, evaluation metrics, fusion re-run for tuning, tuning, profiles
    report/      the session summary and the HTML/CSV report
    dashboard/   the web page: server, feed, access, the session's buttons
    cli/         the command line: one module per command, the terminal view

What may import what (``tests/test_layout.py`` checks it from the source):

- ``errors``, ``events``, ``event_log``, ``quotes``, ``talk_time`` and ``settings`` import nothing else of
  the package;
- ``audio`` imports only those;
- ``rupture`` never imports ``audio``, ``speech``, ``prosody``, ``speakers`` or ``session``;
- the stages (``audio``, ``speech``, ``prosody``, ``speakers``, ``rupture``) never import
  ``session``, ``clinician``, ``report``, ``dashboard`` or ``cli``;
- ``report`` and ``dashboard`` read events only (the shared values above);
- nothing imports ``cli``; there is no import cycle.

The public API is below (``__all__``); the command line (``session-monitor``) is built on it.
The heavier objects are imported when first used.
"""

from __future__ import annotations

from typing import Any

from session_monitor.errors import ConfigError, DeviceError, InputError, SessionDirError, SessionMonitorError
from session_monitor.events import (
    Alert,
    Annotation,
    Episode,
    Event,
    Gap,
    Health,
    Marker,
    Overlap,
    Prosody,
    SessionEvent,
    Signal,
    Speech,
    SpeechOnset,
    TalkShare,
    Transcript,
    Word,
)
from session_monitor.settings import Settings, load_settings

__version__ = "0.1.0"

#: Public names imported on first use (they pull in numpy, onnxruntime, sounddevice, ...).
_LAZY = {
    "EventBus": "session_monitor.session.bus",
    "Pipeline": "session_monitor.session.pipeline",
    "SessionRun": "session_monitor.session.runner",
    "SessionStore": "session_monitor.session.store",
    "FileSource": "session_monitor.audio.file_source",
    "MicrophoneSource": "session_monitor.audio.microphone",
    "RuptureModel": "session_monitor.rupture.model",
}

__all__ = [
    "ConfigError", "DeviceError", "InputError", "SessionDirError", "SessionMonitorError",
    "Alert", "Annotation", "Episode", "Event", "Gap", "Health", "Marker", "Overlap", "Prosody", "SessionEvent",
    "Signal", "Speech", "SpeechOnset", "TalkShare", "Transcript", "Word", "Settings", "load_settings",
    *_LAZY, "__version__",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'session_monitor' has no attribute {name!r}")
