"""Fit a clinician's [fusion] settings to annotated sessions, with leave-one-session-out validation.

The evidence of each session is computed once from its recorded events
(:func:`fusion_replay.record_trace`, no re-transcription); only fusion is re-run per
candidate. The search (docs/tuning.md):

- **What moves**: the parameters in :data:`SEARCH`, each over its fixed grid plus its
  starting value: the alert thresholds (``alert_on``, ``alert_off``, ``off_hold_s``),
  the weight of each kind of cue, and two time constants. Caps, ``max_score``,
  re-engagement and repair stay as they are. Candidates keep ``alert_off <
  alert_on`` and ``alert_on`` above ``cue_cap`` and ``therapist_max_score`` (no single cue,
  and no therapist contribution alone, may raise an alert).
- **How**: steepest ascent from the starting settings. Each step scores every
  one-parameter change of the current settings on the training sessions and takes
  the best, if it beats the current one; it stops when none does (at most
  :data:`MAX_STEPS` steps). Deterministic: same sessions and start, same result.
- **Objective** (pooled over the training sessions, :class:`Objective`): ``f1`` ranks
  by F1, then fewer false alarms per hour, then shorter mean delay, then closeness
  to the start; ``recall`` ranks candidates within ``max_false_alarms_per_hour`` by
  recall, then F1, delay and closeness, and those outside it by fewer false alarms.
- **Validation**: for each session, the settings fitted on the others are scored on
  it; the figures pooled over those held-out sessions are the cross-validated
  result. A fold whose training sessions hold no rupture keeps the start. The
  profile written is fitted on all the sessions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from session_monitor.clinician.annotations import SessionAnnotations
from session_monitor.clinician.fusion_rerun import (
    SCORE_KEYS,
    Trace,
    batch_levels,
    hysteresis_spans,
    record_trace,
    replay_alerts,
)
from session_monitor.clinician.metrics import Interval, alert_episodes, score
from session_monitor.rupture.fusion import KINDS
from session_monitor.settings.loader import EvaluateSettings, FusionSettings, Settings

__all__ = ["MAX_STEPS", "SEARCH", "Objective", "Param", "TuneResult", "TuneSession", "pool", "prepare_session", "tune"]

MAX_STEPS = 40


def _steps(lo: float, hi: float, step: float) -> tuple[float, ...]:
    n = round((hi - lo) / step)
    return tuple(round(lo + i * step, 6) for i in range(n + 1))


@dataclass(frozen=True)
class Param:
    """One [fusion] setting the search moves, and the values it may take (besides its start)."""

    key: str
    grid: tuple[float, ...]


SEARCH: tuple[Param, ...] = (
    Param("alert_on", _steps(0.30, 0.80, 0.05)),
    Param("alert_off", _steps(0.10, 0.60, 0.05)),
    Param("off_hold_s", (0.0, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0)),
    Param("lexical_weight", _steps(0.1, 1.0, 0.1)),
    Param("timing_weight", _steps(0.1, 1.0, 0.1)),
    Param("prosody_weight", _steps(0.1, 1.0, 0.1)),
    Param("turn_taking_weight", _steps(0.1, 1.0, 0.1)),
    Param("classifier_weight", _steps(0.1, 1.0, 0.1)),
    Param("therapist_weight", _steps(0.0, 0.5, 0.1)),
    Param("evidence_tau_s", (5.0, 7.5, 10.0, 12.5, 15.0, 20.0, 30.0)),
    Param("release_s", (0.5, 1.0, 2.0, 4.0, 8.0)),
)
_KEYS = tuple(p.key for p in SEARCH)
_SCORE_IDX = tuple(i for i, p in enumerate(SEARCH) if p.key in SCORE_KEYS)


@dataclass(frozen=True)
class Objective:
    """``f1`` (default), or ``recall`` at no more than ``max_false_alarms_per_hour``."""

    name: str = "f1"
    max_false_alarms_per_hour: float = 6.0

    def describe(self) -> str:
        if self.name == "f1":
            return "best F1"
        return f"highest recall at <= {self.max_false_alarms_per_hour:g} false alarms per hour"

    def key(self, fig: dict[str, Any], distance: float) -> tuple:
        f1 = fig["f1"] or 0.0
        recall = fig["recall"] or 0.0
        fa = fig["false_alarms_per_hour"] or 0.0
        delay = fig["mean_delay_s"] or 0.0
        def r(x: float) -> float:
            return round(x, 9)

        if self.name == "f1":
            return (r(f1), -r(fa), -r(delay), -r(distance))
        if fa <= self.max_false_alarms_per_hour + 1e-9:
            return (1, r(recall), r(f1), -r(delay), -r(distance))
        return (0, -r(fa), r(recall), r(f1), -r(delay), -r(distance))


@dataclass
class TuneSession:
    """One annotated session, ready to tune on: its evidence trace and ruptures."""

    folder: Path
    annotations: SessionAnnotations
    duration_s: float
    trace: Trace

    @property
    def ruptures(self) -> list[Interval]:
        return self.annotations.intervals


def prepare_session(folder: Path, events: list[dict[str, Any]], annotations: SessionAnnotations,
                    settings: Settings, *, tick_s: float) -> TuneSession:
    """The evidence trace of a recorded session under ``settings`` (its [evidence] part)."""
    _, duration = alert_episodes(events)
    return TuneSession(Path(folder), annotations, duration, record_trace(events, settings, tick_s=tick_s,
                                                                         end_t=duration))


_COUNTS = ("alerts", "false_alarms", "ruptures", "detected", "delay_sum_s", "duration_s")


def _counts(result: dict[str, Any]) -> tuple[float, ...]:
    delay = (result["mean_delay_s"] or 0.0) * result["detected"]
    return (result["alerts"], result["false_alarms"], result["ruptures"], result["detected"], delay,
            result["_duration_s"])


def pool(counts: Sequence[tuple[float, ...]]) -> dict[str, Any]:
    """Figures pooled over sessions (sums of counts; see clinician/metrics.py for the definitions)."""
    alerts, fa, ruptures, detected, delay_sum, duration = (sum(c[i] for c in counts) for i in range(6))
    precision = (alerts - fa) / alerts if alerts else None
    recall = detected / ruptures if ruptures else None
    f1 = None
    if precision is not None and recall is not None:
        f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return {"precision": precision, "recall": recall, "f1": f1,
            "mean_delay_s": delay_sum / detected if detected else None,
            "false_alarms_per_hour": fa / (duration / 3600.0) if duration > 0 else None,
            "ruptures": int(ruptures), "detected": int(detected), "alerts": int(alerts),
            "false_alarms": int(fa), "duration_s": duration}


def _session_counts(session: TuneSession, spans: list[Interval], settings: EvaluateSettings) -> tuple[float, ...]:
    result = score(spans, session.ruptures, session.duration_s, settings)
    result["_duration_s"] = session.duration_s
    return _counts(result)


@dataclass
class TuneResult:
    """What ``tune`` found: settings, figures (pooled) and per-session detail."""

    start: FusionSettings
    fitted: FusionSettings
    objective: Objective
    before: dict[str, Any]  # the start, on every session (nothing fitted, so out of sample)
    after_cv: dict[str, Any]  # each session scored with the settings fitted on the others
    in_sample: dict[str, Any]  # the fitted settings on every session
    sessions: list[dict[str, Any]] = field(default_factory=list)

    def changes(self) -> dict[str, tuple[float, float]]:
        return {k: (getattr(self.start, k), getattr(self.fitted, k)) for k in _KEYS
                if getattr(self.start, k) != getattr(self.fitted, k)}


class _Search:
    """Candidate settings scored on sessions; results cached per (session, candidate)."""

    def __init__(self, sessions: list[TuneSession], start: FusionSettings, evaluate: EvaluateSettings,
                 objective: Objective) -> None:
        self.sessions, self.start, self.evaluate, self.objective = sessions, start, evaluate, objective
        self.start_vec = tuple(float(getattr(start, k)) for k in _KEYS)
        self.grids = [tuple(sorted(set(p.grid) | {v})) for p, v in zip(SEARCH, self.start_vec)]
        self.spans = [max(g) - min(g) or 1.0 for g in self.grids]
        self._fast: dict[tuple[int, tuple], tuple] = {}
        self._exact: dict[tuple[int, tuple], tuple] = {}
        self.evaluations = 0

    def settings(self, vec: tuple[float, ...]) -> FusionSettings:
        return dataclasses.replace(self.start, **dict(zip(_KEYS, vec)))

    def _valid(self, vec: tuple[float, ...]) -> bool:
        v = dict(zip(_KEYS, vec))
        return (v["alert_off"] < v["alert_on"] and v["alert_on"] > self.start.cue_cap
                and v["alert_on"] > self.start.therapist_max_score)

    def neighbours(self, vec: tuple[float, ...]) -> list[tuple[float, ...]]:
        out = []
        for i, grid in enumerate(self.grids):
            for value in grid:
                if value != vec[i]:
                    cand = vec[:i] + (value,) + vec[i + 1:]
                    if self._valid(cand):
                        out.append(cand)
        return out

    def _fill(self, s: int, vecs: list[tuple[float, ...]]) -> None:
        """Score ``vecs`` on session ``s`` with the batch (one pass per distinct score settings)."""
        missing = [v for v in dict.fromkeys(vecs) if (s, v) not in self._fast]
        if not missing:
            return
        session = self.sessions[s]
        columns = list(dict.fromkeys(tuple(v[i] for i in _SCORE_IDX) for v in missing))
        base = {k: float(getattr(self.start, k)) for k in SCORE_KEYS}
        params = {k: np.full(len(columns), base[k]) for k in SCORE_KEYS}
        for j, col in enumerate(columns):
            for i, value in zip(_SCORE_IDX, col):
                params[_KEYS[i]][j] = value
        levels = batch_levels(session.trace, params)
        where = {col: j for j, col in enumerate(columns)}
        for v in missing:
            j = where[tuple(v[i] for i in _SCORE_IDX)]
            d = dict(zip(_KEYS, v))
            spans = [Interval(on, off, kind) for k, kind in enumerate(KINDS)
                     for on, off in hysteresis_spans(session.trace.times, levels[:, k, j], alert_on=d["alert_on"],
                                                alert_off=d["alert_off"], off_hold_s=d["off_hold_s"],
                                                end_t=session.trace.end_t)]
            self._fast[(s, v)] = _session_counts(session, spans, self.evaluate)
            self.evaluations += 1

    def exact(self, s: int, vec: tuple[float, ...]) -> tuple[float, ...]:
        """Counts of ``vec`` on session ``s`` from the real fusion (what ``evaluate --rerun`` gives)."""
        if (s, vec) not in self._exact:
            session = self.sessions[s]
            events = [{"type": "alert", "t": a.t, "state": a.state, "kind": a.kind}
                      for a in replay_alerts(session.trace, self.settings(vec))]
            spans, _ = alert_episodes(events + [{"type": "session", "state": "ended", "t": session.duration_s}])
            self._exact[(s, vec)] = _session_counts(session, spans, self.evaluate)
        return self._exact[(s, vec)]

    def _distance(self, vec: tuple[float, ...]) -> float:
        return sum(abs(a - b) / span for a, b, span in zip(vec, self.start_vec, self.spans))

    def _key(self, train: list[int], vec: tuple[float, ...]) -> tuple:
        return self.objective.key(pool([self._fast[(s, vec)] for s in train]), self._distance(vec))

    def fit(self, train: list[int]) -> tuple[float, ...]:
        """Steepest ascent from the start on the sessions ``train`` (see the module docstring)."""
        current = self.start_vec
        if not any(self.sessions[s].ruptures for s in train):
            return current
        for s in train:
            self._fill(s, [current])
        best_key = self._key(train, current)
        for _ in range(MAX_STEPS):
            candidates = self.neighbours(current)
            for s in train:
                self._fill(s, candidates)
            best = None
            for cand in candidates:  # the first of equals wins: deterministic
                key = self._key(train, cand)
                if key > best_key:
                    best, best_key = cand, key
            if best is None:
                break
            current = best
        return current


def tune(sessions: list[TuneSession], start: FusionSettings, evaluate: EvaluateSettings, *,
         objective: Objective = Objective(),
         on_progress: Callable[[str], None] | None = None) -> TuneResult:
    """Fit on all ``sessions`` and cross-validate (leave one session out); see the module docstring.

    The caller checks that there are at least two sessions and at least one rupture.
    """
    say = on_progress or (lambda msg: None)
    search = _Search(sessions, start, evaluate, objective)
    everyone = list(range(len(sessions)))
    say(f"fitting on all {len(sessions)} sessions")
    fitted = search.fit(everyone)
    held_out = []
    for s in everyone:
        say(f"cross-validation {s + 1}/{len(sessions)}: fitting without {sessions[s].folder.name}")
        held_out.append(search.fit([t for t in everyone if t != s]))
    rows = []
    for s, session in enumerate(sessions):
        before, cv, ins = (search.exact(s, v) for v in (search.start_vec, held_out[s], fitted))
        rows.append({"session": str(session.folder), "annotations": session.annotations.source,
                     "before": pool([before]), "after_cv": pool([cv]), "in_sample": pool([ins]),
                     "fold_changes": {k: [a, b] for k, a, b in zip(_KEYS, search.start_vec, held_out[s]) if a != b}})
    say(f"{search.evaluations} candidate evaluations")
    return TuneResult(
        start=start, fitted=search.settings(fitted), objective=objective,
        before=pool([search.exact(s, search.start_vec) for s in everyone]),
        after_cv=pool([search.exact(s, held_out[s]) for s in everyone]),
        in_sample=pool([search.exact(s, fitted) for s in everyone]),
        sessions=rows,
    )
