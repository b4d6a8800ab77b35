"""Exceptions: one base class, a few subclasses, messages that say how to fix it.

The CLI turns any :class:`SessionMonitorError` into one line on stderr and exit
code 2; anything else reaching the top is a bug.
"""

from __future__ import annotations

__all__ = [
    "SessionMonitorError",
    "ConfigError",
    "InputError",
    "DeviceError",
    "SessionDirError",
]


class SessionMonitorError(Exception):
    """Base class of every error a user can cause; the message is one line."""


class ConfigError(SessionMonitorError):
    """A settings file or option is invalid (names file, key and allowed range)."""


class InputError(SessionMonitorError):
    """An input file or argument cannot be used (names the file and the fix)."""


class DeviceError(SessionMonitorError):
    """A capture device is missing, busy or unusable."""


class SessionDirError(SessionMonitorError):
    """A session folder cannot be created or written."""
