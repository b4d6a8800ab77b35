"""Settings: validated, typed sections loaded from TOML (:mod:`.loader`, :mod:`.sections`)."""

from session_monitor.settings.loader import *  # noqa: F403 - re-exported
from session_monitor.settings.loader import __all__  # noqa: F401
