"""Fusion: weighted evidence -> withdrawal and confrontation scores -> likelihood, alerts.

An interpretable model, every number in the [fusion] settings:

1. Each marker contributes ``c = min(cap, weight[cue] * strength)`` to the score of
   its kind. ``cap`` is ``cue_cap`` for patient evidence and ``therapist_cap`` for
   therapist contributions; with ``cue_cap < alert_on`` no single cue can raise an
   alert.
2. Evidence of one kind accumulates as independent evidence (noisy-OR: the score
   is ``1 - prod(1 - c_i)``), kept as ``E = sum(-ln(1 - c_i))`` so that the score is
   ``1 - exp(-E)``. ``E`` leaks with time constant ``evidence_tau_s`` and saturates
   at the level of ``max_score``, so a long episode does not keep the alert on
   long after its evidence stops. Therapist contributions accumulate apart, in
   ``E_t``, which leaks more slowly (``therapist_tau_s``: a therapist's style is
   a climate over minutes, a patient's reply a moment) and saturates at the level
   of ``therapist_max_score`` (below ``alert_on``): the score is
   ``1 - exp(-(E + E_t))``, so what the therapist does raises the likelihood and
   joins the patient's evidence, but never alerts alone.
3. A full patient turn in their usual voice with no rupture words (re-engaging)
   keeps only ``engaged_factor`` of the accumulated evidence.
4. Therapist repair markers combine by noisy-OR into ``R`` (fading with
   ``repair_tau_s``) and lower both scores: ``score *= 1 - repair_damping * R``.
5. Each score is smoothed (time constant ``attack_s`` while rising, ``release_s``
   while falling); the likelihood is the larger of the two.
6. Alerts per kind with hysteresis: on at ``alert_on``; off when below ``alert_off``
   for ``off_hold_s``.

``signal`` events come at ``signal_hz`` of session time and carry the markers that
contribute most at that moment (each marker's ``c`` faded by its age).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from session_monitor.events import RUPTURE_KINDS, Alert, Event, Marker, Signal
from session_monitor.settings.loader import FusionSettings

__all__ = ["CUES", "KINDS", "MIN_CONTRIBUTION", "Contribution", "Fusion"]

KINDS = RUPTURE_KINDS
#: Below this a faded marker is dropped (bounds the active list).
MIN_CONTRIBUTION = 0.002
#: The patient's cues, each weighted by its ``<cue>_weight`` setting; any other cue counts as lexical.
CUES = ("lexical", "timing", "prosody", "turn_taking", "classifier")


@dataclass(frozen=True)
class Contribution:
    """A marker and the most it adds (before fading)."""

    marker: Marker
    weight: float  # c at the marker's time

    def at(self, t: float, tau_s: float) -> float:
        return self.weight * math.exp(-max(0.0, t - self.marker.t) / tau_s)


class Fusion:
    """Markers in, ``signal`` and ``alert`` events out. Deterministic in session time."""

    def __init__(self, settings: FusionSettings) -> None:
        self.s = settings
        self._active: list[Contribution] = []
        self._repairs: list[Contribution] = []
        self._pending: list[Contribution] = []  # added since the last tick
        self.evidence = {k: 0.0 for k in KINDS}  # E per kind (patient evidence)
        self.therapist_evidence = {k: 0.0 for k in KINDS}  # E_t per kind (therapist contributions)
        self.raw = {k: 0.0 for k in KINDS}
        self.smooth = {k: 0.0 for k in KINDS}
        self.alert_on = {k: False for k in KINDS}
        self._below_since: dict[str, float | None] = {k: None for k in KINDS}
        self._last_t: float | None = None
        self._next_signal = 0.0
        self.repair_level = 0.0

    def weight_of(self, m: Marker) -> float:
        """Contribution of ``m`` at its own time (before fading)."""
        s = self.s
        if m.kind == "repair":
            return min(1.0, s.repair_weight * m.strength)
        if m.speaker == "therapist":
            return min(s.therapist_cap, s.therapist_weight * m.strength)
        w = getattr(s, f"{m.cue}_weight") if m.cue in CUES else s.lexical_weight
        return min(s.cue_cap, w * m.strength)

    def add(self, marker: Marker) -> None:
        """Take one marker into account from its time ``t`` on."""
        if marker.kind not in KINDS and marker.kind != "repair":
            return
        c = Contribution(marker, self.weight_of(marker))
        if c.weight <= 0:
            return
        if marker.kind == "repair":
            self._repairs.append(c)
        else:
            self._active.append(c)
            self._pending.append(c)

    def engaged(self) -> None:
        """The patient took a full turn in their usual voice: discount the evidence so far."""
        for kind in KINDS:
            self.evidence[kind] *= self.s.engaged_factor
            self.therapist_evidence[kind] *= self.s.engaged_factor

    def tau_of(self, m: Marker) -> float:
        """The time constant a (non-repair) marker's contribution fades with."""
        return self.s.therapist_tau_s if m.speaker == "therapist" else self.s.evidence_tau_s

    def contributions(self, t: float) -> list[tuple[float, Marker]]:
        """(current contribution, marker) of every active marker, largest first."""
        out = [(c.at(t, self.tau_of(c.marker)), c.marker) for c in self._active]
        out += [(c.at(t, self.s.repair_tau_s), c.marker) for c in self._repairs]
        return sorted(out, key=lambda x: (-x[0], x[1].t, x[1].marker))

    def _scores(self, t: float, dt: float) -> dict[str, float]:
        tau, rtau = self.s.evidence_tau_s, self.s.repair_tau_s
        self._active = [c for c in self._active if c.at(t, self.tau_of(c.marker)) >= MIN_CONTRIBUTION]
        self._repairs = [c for c in self._repairs if c.at(t, rtau) >= MIN_CONTRIBUTION]
        keep = 1.0
        for c in self._repairs:
            keep *= 1.0 - c.at(t, rtau)
        self.repair_level = 1.0 - keep
        damp = 1.0 - self.s.repair_damping * self.repair_level
        e_max = -math.log(max(1e-9, 1.0 - self.s.max_score))
        et_max = -math.log(max(1e-9, 1.0 - self.s.therapist_max_score))
        leak = math.exp(-dt / tau)
        t_leak = math.exp(-dt / self.s.therapist_tau_s)
        out = {}
        for kind in KINDS:
            e = self.evidence[kind] * leak
            et = self.therapist_evidence[kind] * t_leak
            for c in self._pending:
                if c.marker.kind == kind:
                    add = -math.log(max(1e-9, 1.0 - c.at(t, self.tau_of(c.marker))))
                    if c.marker.speaker == "therapist":
                        et += add
                    else:
                        e += add
            self.evidence[kind] = min(e_max, e)
            self.therapist_evidence[kind] = min(et_max, et)
            total = min(e_max, self.evidence[kind] + self.therapist_evidence[kind])
            out[kind] = (1.0 - math.exp(-total)) * damp
        self._pending = []
        return out

    def _smooth(self, kind: str, raw: float, dt: float) -> float:
        prev = self.smooth[kind]
        tau = self.s.attack_s if raw > prev else self.s.release_s
        if tau <= 0 or dt <= 0:
            return raw if tau <= 0 else prev
        return prev + (raw - prev) * (1.0 - math.exp(-dt / tau))

    def tick(self, t: float) -> list[Event]:
        """Advance to session time ``t``: alerts that change, and a signal when due."""
        dt = 0.0 if self._last_t is None else max(0.0, t - self._last_t)
        self._last_t = t
        self.raw = self._scores(t, dt)
        out: list[Event] = []
        for kind in KINDS:
            self.smooth[kind] = self._smooth(kind, self.raw[kind], dt)
            out += self._hysteresis(kind, t)
        if t >= self._next_signal:
            step = 1.0 / self.s.signal_hz
            self._next_signal = max(self._next_signal + step, t - step / 2)
            out.append(self.signal(t))
        return out

    def _hysteresis(self, kind: str, t: float) -> list[Event]:
        level = self.smooth[kind]
        if not self.alert_on[kind]:
            if level >= self.s.alert_on:
                self.alert_on[kind] = True
                self._below_since[kind] = None
                return [Alert(t=t, state="on", kind=kind)]
            return []
        if level >= self.s.alert_off:
            self._below_since[kind] = None
            return []
        since = self._below_since[kind]
        if since is None:
            self._below_since[kind] = since = t
        if t - since >= self.s.off_hold_s:
            self.alert_on[kind] = False
            self._below_since[kind] = None
            return [Alert(t=t, state="off", kind=kind)]
        return []

    def signal(self, t: float) -> Signal:
        w, c = self.smooth["withdrawal"], self.smooth["confrontation"]
        top = []
        for value, m in self.contributions(t)[: self.s.evidence_top_n]:
            if value < 0.01:
                break
            top.append({"marker": m.marker, "kind": m.kind, "strength": m.strength, "contribution": value,
                        "explanation": m.explanation, "speaker": m.speaker, "t": m.t, "cue": m.cue})
        return Signal(t=t, likelihood=max(w, c), withdrawal=w, confrontation=c, evidence=tuple(top))

    def finish(self, t: float) -> list[Event]:
        """End of session: every open alert goes off."""
        out: list[Event] = []
        for kind in KINDS:
            if self.alert_on[kind]:
                self.alert_on[kind] = False
                out.append(Alert(t=t, state="off", kind=kind))
        return out
