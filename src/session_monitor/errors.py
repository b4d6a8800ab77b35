"""Exceptions: one base class, a few subclasses, messages that say how to fix it.

The CLI turns any :class:`SessionMonitorError` into one line on stderr and exit
code 2; anything else reaching the top is a bug.
"""

from __future__ import annotations

from session_monitor.shorten import shorten

__all__ = [
    "SessionMonitorError",
    "ConfigError",
    "InputError",
    "DeviceError",
    "SessionDirError",
    "reason",
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


def reason(exc: BaseException, limit: int = 160) -> str:
    """What a library's exception says, for one line of ours: its first line, cut to ``limit``
    characters at the end of a sentence or else of a word (never mid-word), or its type's name."""
    text = str(exc).strip().splitlines()[0].strip() if str(exc).strip() else type(exc).__name__
    if len(text) <= limit:
        return text
    sentence = text[: limit - 1].rfind(". ")
    if sentence >= limit // 2:
        return text[: sentence + 1]
    return shorten(text, limit)
