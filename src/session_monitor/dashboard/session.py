"""The dashboard of one session: starting it, and its buttons' way into the session's events.

Kept out of the ``dashboard`` package so that a session without ``--dashboard`` does not
import the web server.
"""

from __future__ import annotations

import threading
from typing import Any

from session_monitor.errors import InputError
from session_monitor.events import Annotation

__all__ = ["DashboardAnnotations", "EARLY_MAX", "start_dashboard"]

#: Presses kept from before the session starts (stamped at t = 0); one more is refused.
EARLY_MAX = 100


def start_dashboard(*, host: str, port: int, token: str | None, on_annotation: Any, title: str,
                    min_marker_strength: float = 0.0) -> Any:
    """Serve the page; a non-loopback ``host`` needs a token (``"generate"`` makes one). Markers
    weaker than ``min_marker_strength`` (``display.min_marker_strength``) are not shown."""
    from session_monitor.dashboard import Dashboard, is_loopback, new_token

    if token is None and not is_loopback(host):
        raise InputError(f"--dashboard-host {host} is not loopback: add --dashboard-token TOKEN, "
                         "or --dashboard-token generate for a random one")
    if token == "generate":
        token = new_token()
    dashboard = Dashboard(host=host, port=port, token=token, on_annotation=on_annotation, title=title,
                          min_marker_strength=min_marker_strength)
    dashboard.start()
    return dashboard


class DashboardAnnotations:
    """The dashboard's buttons: annotation events into the session's one stream.

    A press before the pipeline exists (the page is up while the model loads) is
    kept and stamped at session time 0 when the pipeline is attached (at most
    :data:`EARLY_MAX` of them; one more is refused, and the page shows the error).
    While the pipeline runs, the event is injected at the current session time and
    published in order by the pipeline thread; after the session ended (the page
    stays open on the timeline) it is appended at the end time.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pipeline: Any = None
        self._store: Any = None
        self._dashboard: Any = None
        self._ended_at: float | None = None
        self._early: list[tuple[str, str]] = []

    def attach(self, pipeline: Any, store: Any, dashboard: Any) -> None:
        with self._lock:
            self._pipeline, self._store, self._dashboard = pipeline, store, dashboard
            early, self._early = self._early, []
            for label, note in early:
                pipeline.inject(lambda t, label=label, note=note: Annotation(
                    t=0.0, label=label, source="dashboard", note=note))

    def session_ended(self, t: float) -> None:
        with self._lock:
            self._ended_at = t
            leftovers = self._pipeline.drain_inbox() if self._pipeline is not None else []
        for event in leftovers:
            self._write(event)

    def __call__(self, label: str, note: str = "") -> None:
        with self._lock:
            if self._pipeline is None:
                if len(self._early) >= EARLY_MAX:
                    raise InputError(f"{EARLY_MAX} presses are waiting for the session to start; "
                                     "wait until it runs")
                self._early.append((label, note))
                return
            if self._ended_at is None:
                self._pipeline.inject(lambda t: Annotation(t=t, label=label, source="dashboard", note=note))
                return
            event = Annotation(t=self._ended_at, label=label, source="dashboard", note=note)
        self._write(event)

    def _write(self, event: Any) -> None:
        self._store.write(event)
        if self._dashboard is not None:
            self._dashboard.publish(event)
