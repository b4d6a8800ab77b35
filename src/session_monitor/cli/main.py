"""Command line: ``session-monitor replay|live|devices|report|evaluate|tune|enroll|batch``.

One module per command in this package, each with ``add_parser(sub)`` and its
``cmd_*`` function. Every command exits 0 on success and 2 on bad input with a
one-line reason on stderr; a traceback a user can trigger is a bug.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from session_monitor import __version__
from session_monitor.cli import batch, devices, enroll, evaluate, report, session, tune
from session_monitor.errors import SessionMonitorError

__all__ = ["build_parser", "main"]

logger = logging.getLogger("session_monitor")

EXIT_OK, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 2, 130

_DESCRIPTION = ("A quiet indicator of therapeutic alliance ruptures (withdrawal, confrontation) from session audio, "
                "live or replayed, with the evidence for it. Exit codes: 0 done, 2 bad input or a session ended "
                "on an error, 130 aborted.")


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"session-monitor: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="session-monitor", description=_DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"session-monitor {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    session.add_parsers(sub)
    report.add_parser(sub)
    devices.add_parser(sub)
    evaluate.add_parser(sub)
    tune.add_parser(sub)
    enroll.add_parser(sub)
    batch.add_parser(sub)
    return parser


COMMANDS = {
    "replay": session.cmd_replay, "live": session.cmd_live, "devices": devices.cmd_devices,
    "report": report.cmd_report, "evaluate": evaluate.cmd_evaluate, "tune": tune.cmd_tune,
    "enroll": enroll.cmd_enroll, "batch": batch.cmd_batch,
}


def main(argv: Sequence[str] | None = None) -> int:
    from session_monitor.session.ending import no_core_dumps

    no_core_dumps()  # a core file would hold session data outside the private session folder
    if hasattr(signal, "SIGXFSZ") and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file-size limit is an error to report, not a kill
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return COMMANDS[args.command](args)
    except SessionMonitorError as exc:
        from session_monitor.schema import show

        # one printable line whatever the message holds (a file name with a newline or bad UTF-8)
        print(f"session-monitor: error: {show(str(exc), limit=2000)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("session-monitor: aborted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if argv is None and threading.current_thread() is threading.main_thread():
            # the process is ending: a late Ctrl-C must not raise into the interpreter's shutdown
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(signum, signal.SIG_IGN)


if __name__ == "__main__":
    sys.exit(main())
