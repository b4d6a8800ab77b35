"""How a running session is asked to end, by the user or the system, and how each way is recorded.

Every way a session can end ends cleanly; ``session.json`` records which (``end_reason``):

==================  =========================================================  =========
end_reason          what happened                                              exit code
==================  =========================================================  =========
``end_of_input``    the recording (or ``--duration``) ended                    0
``stopped_by_user`` Ctrl-C (SIGINT) once: the pipeline stops at the next       0
                    block, pending transcription is finished, the report
                    written
``terminated``      SIGTERM: as Ctrl-C once                                    0
``hangup``          SIGHUP (the terminal was closed): as Ctrl-C once           0
``aborted``         a second signal while ending: pending transcription is     130
                    dropped, worker threads are stopped, the events written
                    so far are kept and valid to the last line
``device_lost``     the capture device is gone for good                        2
``truncated_input`` a recording turned out damaged or cut short mid-decode     2
``error``           any other fatal error                                      2 (1 for a bug)
==================  =========================================================  =========

``complete`` is true when every block read was processed and every pending
transcription finished (the first four rows); ``aborted`` is true only for the
fifth. The signal handlers never raise into the program (a ``KeyboardInterrupt``
inside a native library's thread used to end the process with ``abort()``), and
core dumps are off for the process (:func:`no_core_dumps`): a core file would hold
transcript text outside the private session folder.
"""

from __future__ import annotations

import logging
import resource
import signal
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["EXIT_ABORTED", "EndRequest", "exit_code", "no_core_dumps"]

logger = logging.getLogger(__name__)

#: Exit code of an aborted session (128 + SIGINT, as shells report an interrupted program).
EXIT_ABORTED = 130

_REASONS = {signal.SIGINT: "stopped_by_user", signal.SIGTERM: "terminated", signal.SIGHUP: "hangup"}


def no_core_dumps() -> None:
    """Set this process's core-file limit to 0 (soft and hard): no session data in a core file."""
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ValueError, OSError):  # pragma: no cover - a platform without the limit
        logger.warning("could not turn core dumps off for this process")


class EndRequest:
    """The signals that end a session: the first asks for a clean end, a second aborts.

    Install in the main thread with :meth:`install` (a context manager restores the
    previous handlers). ``stop`` is the event the pipeline polls after every block;
    ``on_abort`` callbacks run (in the main thread, from the handler) when a second
    signal arrives, e.g. to drop pending transcription so the ending is quick.

    Parameters
    ----------
    say : called with one line for the user (the CLI prints it to stderr)
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self, *, say: Callable[[str], None] | None = None) -> None:
        self.stop = threading.Event()
        self.abort = threading.Event()
        self.signal: int | None = None
        self._say = say or (lambda line: None)
        self._on_abort: list[Callable[[], None]] = []
        self._previous: dict[int, Any] = {}

    @property
    def reason(self) -> str | None:
        """``end_reason`` asked for by a signal, or None when none arrived."""
        if self.abort.is_set():
            return "aborted"
        return _REASONS.get(self.signal) if self.signal is not None else None

    def on_abort(self, callback: Callable[[], None]) -> None:
        self._on_abort.append(callback)
        if self.abort.is_set():
            callback()

    def request(self, signum: int, frame: Any = None) -> None:
        """The signal handler: never raises, never blocks."""
        if not self.stop.is_set():
            self.signal = signum
            self.stop.set()
            name = signal.Signals(signum).name
            self._say(f"stopping ({name}); the session ends cleanly - press Ctrl-C again to abort")
            return
        if self.abort.is_set():
            return
        self.abort.set()
        self._say("aborting: pending transcription is dropped; the events so far are kept")
        for callback in self._on_abort:
            try:
                callback()
            except Exception:  # a handler must not raise into whatever the main thread was doing
                logger.exception("abort callback failed")

    def install(self) -> EndRequest:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._previous[signum] = signal.signal(signum, self.request)
        return self

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def __enter__(self) -> EndRequest:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.restore()


def exit_code(reason: str | None) -> int:
    """The process exit code for ``end_reason`` (see the module docstring)."""
    return EXIT_ABORTED if reason == "aborted" else 0
