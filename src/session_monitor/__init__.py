"""session-monitor: a quiet rupture indicator for therapy sessions.

The public API is a few typed objects; the command line (``session-monitor``) is
built on them.
"""

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
from session_monitor.session.bus import EventBus
from session_monitor.settings.loader import Settings, load_settings

__version__ = "0.1.0"

__all__ = [
    "EventBus", "ConfigError", "DeviceError", "InputError", "SessionDirError", "SessionMonitorError",
    "Alert", "Annotation", "Episode", "Event", "Gap", "Health", "Marker", "Overlap", "Prosody", "SessionEvent",
    "Signal", "Speech", "SpeechOnset", "TalkShare", "Transcript", "Word", "Settings", "load_settings",
    "__version__",
]
