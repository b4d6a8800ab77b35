"""Rupture episodes: what each alert was about, and whether a repair followed.

An episode of ``kind`` runs from its alert's ``on`` to its ``off``. While it is open
we note its peak (smoothed score) and the subtypes of the markers that drove it.
Repair markers during the episode, or within ``grace_s`` after it, count as the
repair that followed; the ``episode`` event is emitted ``grace_s`` after the
episode closed (or at the end of the session), so the report can use it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from session_monitor.events import Episode, Marker

__all__ = ["EpisodeTracker"]

_MIN_SHARE = 0.05  # a subtype is listed when it contributed at least this much at some point


@dataclass
class _Open:
    kind: str
    start: float
    end: float | None = None
    peak_t: float = 0.0
    peak: float = 0.0
    subtypes: dict[str, float] = field(default_factory=dict)  # marker -> largest contribution
    repair_t: float | None = None
    repair_markers: list[str] = field(default_factory=list)


class EpisodeTracker:
    """Follows alerts, scores and markers; returns ``Episode`` events when they are complete."""

    def __init__(self, *, grace_s: float = 15.0) -> None:
        self.grace_s = grace_s
        self._open: dict[str, _Open] = {}
        self._closed: list[_Open] = []

    def alert(self, kind: str, state: str, t: float) -> list[Episode]:
        out: list[Episode] = []
        if state == "on":
            # a new episode of the same kind ends the grace period of the last one
            out += self._emit(lambda e: e.kind == kind, t)
            self._open[kind] = _Open(kind=kind, start=t, peak_t=t)
        elif kind in self._open:
            ep = self._open.pop(kind)
            ep.end = t
            self._closed.append(ep)
        return out

    def update(self, t: float, scores: dict[str, float], contributions: list[tuple[float, Marker]]) -> None:
        """Per tick: the smoothed scores and the (contribution, marker) pairs now active."""
        for kind, ep in self._open.items():
            if scores.get(kind, 0.0) > ep.peak:
                ep.peak, ep.peak_t = scores[kind], t
            for value, m in contributions:
                if m.kind == kind and value >= _MIN_SHARE:
                    ep.subtypes[m.marker] = max(ep.subtypes.get(m.marker, 0.0), value)

    def marker(self, m: Marker) -> None:
        if m.kind != "repair":
            return
        for ep in list(self._open.values()) + self._closed:
            if ep.end is None or m.t <= ep.end + self.grace_s:
                if ep.repair_t is None:
                    ep.repair_t = m.t
                if m.marker not in ep.repair_markers:
                    ep.repair_markers.append(m.marker)

    def tick(self, t: float) -> list[Episode]:
        return self._emit(lambda e: e.end is not None and t >= e.end + self.grace_s, t)

    def finish(self, t: float) -> list[Episode]:
        for kind in list(self._open):
            ep = self._open.pop(kind)
            ep.end = t
            self._closed.append(ep)
        return self._emit(lambda e: True, t)

    def _emit(self, ready: Callable[[_Open], bool], t: float) -> list[Episode]:
        out, keep = [], []
        for ep in self._closed:
            if ready(ep):
                assert ep.end is not None
                subtypes = tuple(k for k, _ in sorted(ep.subtypes.items(), key=lambda kv: (-kv[1], kv[0])))
                out.append(Episode(t=t, kind=ep.kind,
                                   start=ep.start, end=ep.end, peak_t=ep.peak_t, peak_likelihood=ep.peak,
                                   subtypes=subtypes, repaired=ep.repair_t is not None, repair_t=ep.repair_t,
                                   repair_markers=tuple(ep.repair_markers)))
            else:
                keep.append(ep)
        self._closed = keep
        return out
