"""Fusion re-run over a session's recorded evidence, for ``tune``: once exactly, or for many settings at once.

Evidence (markers) depends only on the ``[evidence]`` settings; fusion turns markers
into scores and alerts with the ``[fusion]`` settings. So a session's evidence is
computed once (:func:`record_trace`: the rupture model over the recorded events,
noting every call it makes to fusion) and fusion alone is re-run for each candidate:

- :func:`replay_alerts` drives the real :class:`~session_monitor.rupture.fusion.Fusion` with
  the trace: the same alerts as the whole rupture model re-run over the events
  (``evaluate --rerun``). Used for every figure ``tune`` reports.
- :func:`batch_levels` computes the smoothed withdrawal/confrontation scores for K
  settings at once (numpy, vectorized over the settings) and :func:`hysteresis_spans`
  applies the alert hysteresis to one of them. The same arithmetic as fusion.py,
  up to rounding (within 1e-9); used only to rank candidates during the search.
  ``tests/clinician/test_tuning.py`` holds the two paths together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from session_monitor.events import Alert, Marker
from session_monitor.rupture.fusion import CUES, KINDS, MIN_CONTRIBUTION, Fusion
from session_monitor.rupture.model import RuptureModel, run_on_events, transcribed
from session_monitor.settings.loader import FusionSettings, Settings

__all__ = ["SCORE_KEYS", "THRESHOLD_KEYS", "Trace", "hysteresis_spans", "batch_levels", "fusion_params", "record_trace",
           "replay_alerts"]

#: [fusion] settings that shape the scores (each candidate needs its own pass over the trace)
SCORE_KEYS = ("evidence_tau_s", "repair_tau_s", "cue_cap", "therapist_cap", "lexical_weight", "timing_weight",
              "prosody_weight", "turn_taking_weight", "classifier_weight", "therapist_weight", "repair_weight",
              "repair_damping", "max_score", "therapist_max_score", "therapist_tau_s", "engaged_factor", "attack_s", "release_s")
#: [fusion] settings applied to the scores afterwards (hysteresis): cheap to vary
THRESHOLD_KEYS = ("alert_on", "alert_off", "off_hold_s")

_ADD, _ENGAGED, _TICK = 0, 1, 2
_CUES = {cue: i for i, cue in enumerate(CUES)}  # weight rows: the patient's cues, then the therapist's
_THERAPIST = len(CUES)
_QUIET = 1e-12  # the batch treats evidence and scores below this as zero (skips idle ticks)


class _Recorder(Fusion):
    """The real fusion, noting every call the rupture model makes to it."""

    def __init__(self, settings: FusionSettings) -> None:
        super().__init__(settings)
        self.ops: list[tuple[int, Any]] = []

    def add(self, marker: Marker) -> None:
        self.ops.append((_ADD, marker))
        super().add(marker)

    def engaged(self) -> None:
        self.ops.append((_ENGAGED, None))
        super().engaged()

    def tick(self, t: float) -> list:
        self.ops.append((_TICK, t))
        return super().tick(t)


@dataclass(frozen=True)
class Trace:
    """The calls a rupture model made to fusion over one session, in order, and its end time.

    Compiled for the batch: ``times`` (T,) of the ticks, and per tick the markers added
    and the re-engagements since the previous one.
    """

    ops: tuple[tuple[int, Any], ...]
    end_t: float
    times: np.ndarray
    pending: tuple[tuple[tuple[int, int, float, float], ...], ...]  # per tick: (kind, cue, strength, t)
    engaged: tuple[int, ...]  # per tick
    repairs: tuple[tuple[int, float, float], ...]  # (tick index it is first used at, strength, t)


def record_trace(events: list[dict[str, Any]], settings: Settings, *, tick_s: float, end_t: float) -> Trace:
    """Run the rupture model over a session's recorded events and keep what it fed to fusion."""
    recorder = _Recorder(settings.fusion)
    model = RuptureModel.from_settings(settings, fusion_stage=recorder, transcripts=transcribed(events))
    run_on_events(model, events, tick_s=tick_s, end_t=end_t)
    times: list[float] = []
    pending: list[tuple] = []
    engaged: list[int] = []
    repairs: list[tuple[int, float, float]] = []
    now: list[tuple[int, int, float, float]] = []
    n_engaged = 0
    for op, arg in recorder.ops:
        if op == _TICK:
            times.append(arg)
            pending.append(tuple(now))
            engaged.append(n_engaged)
            now, n_engaged = [], 0
        elif op == _ENGAGED:
            n_engaged += 1
        elif arg.kind == "repair":
            repairs.append((len(times), float(arg.strength), float(arg.t)))
        elif arg.kind in KINDS:
            cue = _THERAPIST if arg.speaker == "therapist" else _CUES.get(arg.cue, 0)
            now.append((KINDS.index(arg.kind), cue, float(arg.strength), float(arg.t)))
    return Trace(tuple(recorder.ops), end_t, np.asarray(times, dtype=float), tuple(pending), tuple(engaged),
                 tuple(repairs))


class _NoSignal(Fusion):
    """Fusion without building signal events (nothing in its state depends on them)."""

    def signal(self, t: float) -> Any:  # type: ignore[override]
        return None


def replay_alerts(trace: Trace, settings: FusionSettings) -> list[Alert]:
    """The alert events of the real fusion with ``settings`` over ``trace``, in order."""
    fusion = _NoSignal(settings)
    out: list[Alert] = []
    for op, arg in trace.ops:
        if op == _TICK:
            out += [e for e in fusion.tick(arg) if isinstance(e, Alert)]
        elif op == _ADD:
            fusion.add(arg)
        else:
            fusion.engaged()
    out += [e for e in fusion.finish(trace.end_t) if isinstance(e, Alert)]
    return out


def batch_levels(trace: Trace, params: dict[str, np.ndarray]) -> np.ndarray:
    """Smoothed scores for K settings at once: shape (T, 2, K), kinds in ``fusion.KINDS`` order.

    ``params`` maps every name in :data:`SCORE_KEYS` to an array of K values.
    """
    p = {k: np.asarray(params[k], dtype=float) for k in SCORE_KEYS}
    k_n = len(p["evidence_tau_s"])
    weight = np.stack([p[f"{cue}_weight"] for cue in CUES] + [p["therapist_weight"]])
    cap = np.stack([p["cue_cap"]] * len(CUES) + [p["therapist_cap"]])
    tau, rtau, ttau = p["evidence_tau_s"], p["repair_tau_s"], p["therapist_tau_s"]
    e_max = -np.log(np.maximum(1e-9, 1.0 - p["max_score"]))
    et_max = -np.log(np.maximum(1e-9, 1.0 - p["therapist_max_score"]))
    attack, release = p["attack_s"], p["release_s"]
    attack_safe, release_safe = np.where(attack > 0, attack, 1.0), np.where(release > 0, release, 1.0)
    out = np.zeros((len(trace.times), 2, k_n))
    evidence = np.zeros((2, k_n))  # patient evidence per kind
    ther = np.zeros((2, k_n))  # therapist contributions per kind, saturating at therapist_max_score
    smooth = np.zeros((2, k_n))
    repairs: list[tuple[np.ndarray, float]] = []
    next_repair = 0
    last_t: float | None = None
    quiet = True
    for k, t in enumerate(trace.times):
        t = float(t)
        dt = 0.0 if last_t is None else max(0.0, t - last_t)
        last_t = t
        while next_repair < len(trace.repairs) and trace.repairs[next_repair][0] <= k:
            _, strength, t_r = trace.repairs[next_repair]
            repairs.append((np.minimum(1.0, p["repair_weight"] * strength), t_r))
            next_repair += 1
        if quiet and not repairs and not trace.pending[k]:
            continue  # nothing yet, or everything faded below _QUIET: the scores stay 0
        quiet = False
        if trace.engaged[k]:
            evidence *= p["engaged_factor"] ** trace.engaged[k]
            ther *= p["engaged_factor"] ** trace.engaged[k]
        damp: Any = 1.0
        if repairs:
            keep = np.ones(k_n)
            live = []
            for c, t_r in repairs:
                a = c * np.exp(-max(0.0, t - t_r) / rtau)
                alive = a >= MIN_CONTRIBUTION
                if alive.any():
                    keep *= np.where(alive, 1.0 - a, 1.0)
                    live.append((c, t_r))
            repairs = live
            damp = 1.0 - p["repair_damping"] * (1.0 - keep)
        evidence *= np.exp(-dt / tau)
        ther *= np.exp(-dt / ttau)
        for kind, cue, strength, t_m in trace.pending[k]:
            c = np.minimum(cap[cue], weight[cue] * strength)
            fade = np.exp(-max(0.0, t - t_m) / (ttau if cue == _THERAPIST else tau))
            (ther if cue == _THERAPIST else evidence)[kind] += -np.log(np.maximum(1e-9, 1.0 - c * fade))
        np.minimum(evidence, e_max, out=evidence)
        np.minimum(ther, et_max, out=ther)
        raw = (1.0 - np.exp(-np.minimum(e_max, evidence + ther))) * damp
        rising = raw > smooth
        tau_s = np.where(rising, attack, release)
        if dt > 0:
            alpha = 1.0 - np.exp(-dt / np.where(rising, attack_safe, release_safe))
            smooth = np.where(tau_s <= 0, raw, smooth + (raw - smooth) * alpha)
        else:
            smooth = np.where(tau_s <= 0, raw, smooth)
        out[k] = smooth
        if not repairs and evidence.max() < _QUIET and ther.max() < _QUIET and smooth.max() < _QUIET:
            evidence[:] = 0.0
            ther[:] = 0.0
            smooth[:] = 0.0
            quiet = True
    return out


def hysteresis_spans(times: np.ndarray, level: np.ndarray, *, alert_on: float, alert_off: float, off_hold_s: float,
                end_t: float) -> list[tuple[float, float]]:
    """(on, off) times of one kind's alerts over its smoothed score ``level`` (T,): the hysteresis
    of :meth:`Fusion._hysteresis`, with an alert still on at the end closed at ``end_t``.

    On at the first tick with ``level >= alert_on``; off at the first later tick that ends a
    run of ticks below ``alert_off`` lasting ``off_hold_s`` (needs ``alert_off < alert_on``).
    """
    above = np.flatnonzero(level >= alert_on)
    if not above.size:
        return []
    below = level < alert_off
    index = np.arange(len(level))
    run_start = np.maximum.accumulate(np.where(below & ~np.concatenate(([False], below[:-1])), index, 0))
    off_ok = np.flatnonzero(below & (times - times[run_start] >= off_hold_s))
    spans = []
    i = 0
    while True:
        j = int(np.searchsorted(above, i))
        if j >= above.size:
            return spans
        on = int(above[j])
        m = int(np.searchsorted(off_ok, on + 1))
        if m >= off_ok.size:
            spans.append((float(times[on]), end_t))
            return spans
        off = int(off_ok[m])
        spans.append((float(times[on]), float(times[off])))
        i = off + 1


def fusion_params(settings: FusionSettings) -> dict[str, float]:
    """The score settings of ``settings`` as a dict (one candidate)."""
    return {k: float(getattr(settings, k)) for k in SCORE_KEYS}

