"""The command line: ``session-monitor`` and one module per command."""

from session_monitor.cli.main import main

__all__ = ["main"]
