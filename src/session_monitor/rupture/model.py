"""The rupture model: the analyzer the pipeline runs over its event stream.

Evidence (patient and therapist side, :mod:`session_monitor.rupture.patient` and
:mod:`session_monitor.rupture.therapist`) turns speech, prosody, turn-taking and
transcripts into ``marker`` events; fusion (:mod:`session_monitor.rupture.fusion`) turns
markers into ``signal`` and ``alert`` events; closed rupture episodes become ``episode``
events (:mod:`session_monitor.rupture.episodes`). The utterance classifiers
(:mod:`session_monitor.rupture.utterance_evidence`) read every final transcript: their
markers join the others, their running MI figures are ``mi_figures`` events. Everything runs on session
time only, so the same events in give the same markers, signal and alerts out.

Speakers named ``unknown`` (mono input before attribution) yield no evidence: the
model does not guess who the patient is. The signal still flows (at zero).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from session_monitor.events import EVENT_TYPES, Alert, Event, Marker, Transcript, event_from_dict
from session_monitor.rupture.episodes import EpisodeTracker
from session_monitor.rupture.fusion import Fusion
from session_monitor.rupture.lexicon import Lexicon, load_lexicon
from session_monitor.rupture.patient import PatientEvidence
from session_monitor.rupture.therapist import TherapistEvidence
from session_monitor.rupture.utterance_evidence import UtteranceEvidence
from session_monitor.rupture.utterances import UtteranceClassifiers, classifiers_for
from session_monitor.settings.loader import (
    EvidenceSettings,
    FusionSettings,
    Settings,
    UtteranceSettings,
    config_dir,
)

__all__ = ["OUTPUT_TYPES", "RuptureModel", "build_analyzers", "markers_path", "run_on_events"]

#: Event types the rupture model produces (dropped when re-running it over a session).
OUTPUT_TYPES = frozenset({"marker", "signal", "alert", "episode", "mi_figures"})
_TICK_S = 0.096  # the pipeline's default block: analyzers are ticked at block ends
_KNOWN = frozenset(EVENT_TYPES)


def markers_path(settings: EvidenceSettings) -> Path:
    """``evidence.markers_file``: absolute, relative to the current folder, or in the config folder."""
    path = Path(settings.markers_file)
    if path.is_absolute() or path.exists():
        return path
    return config_dir() / path


class RuptureModel:
    """Analyzer: ``on_event`` / ``tick`` / ``finish`` (see :class:`session_monitor.session.stages.Analyzer`).

    Parameters
    ----------
    evidence : the [evidence] section
    fusion : the [fusion] section
    features_hz : rate of the ``prosody`` events (``prosody.features_hz``)
    lexicon : phrases; loaded from ``evidence.markers_file`` when None
    fusion_stage : the fusion to feed (``tune`` passes one that records its calls); a new
        :class:`~session_monitor.rupture.fusion.Fusion` with ``fusion`` when None
    utterances : the [utterances] section; None (or ``enabled = false``): no utterance classifiers
    classifiers : the classifiers to use; loaded as ``utterances`` says when None
    transcripts : whether the session has words (speech recognition): a raised voice then
        waits for them; re-running recorded events, :func:`transcribed` tells
    """

    def __init__(self, evidence: EvidenceSettings, fusion: FusionSettings, *, features_hz: float,
                 lexicon: Lexicon | None = None, fusion_stage: Fusion | None = None,
                 utterances: UtteranceSettings | None = None,
                 classifiers: UtteranceClassifiers | None = None, transcripts: bool = True) -> None:
        self.lexicon = lexicon if lexicon is not None else load_lexicon(markers_path(evidence))
        self.therapist = TherapistEvidence(evidence, self.lexicon)
        self.patient = PatientEvidence(evidence, self.lexicon, self.therapist, features_hz=features_hz,
                                       words=transcripts)
        self.fusion = fusion_stage if fusion_stage is not None else Fusion(fusion)
        self.episodes = EpisodeTracker(grace_s=fusion.episode_repair_grace_s)
        self.utterances: UtteranceEvidence | None = None
        if utterances is not None and utterances.enabled:
            clf = classifiers if classifiers is not None else classifiers_for(utterances)
            self.utterances = UtteranceEvidence(utterances, clf)

    @classmethod
    def from_settings(cls, settings: Settings, *, lexicon: Lexicon | None = None,
                      fusion_stage: Fusion | None = None, transcripts: bool = True) -> RuptureModel:
        """The model with its sections of ``settings`` ([evidence], [fusion], [utterances], ``prosody.features_hz``).

        ``transcripts=False`` (a session without speech recognition): no utterance classifiers,
        which would never run, so their sentence encoder is not loaded.
        """
        return cls(settings.evidence, settings.fusion, features_hz=settings.prosody.features_hz, lexicon=lexicon,
                   fusion_stage=fusion_stage, utterances=settings.utterances if transcripts else None,
                   transcripts=transcripts)

    def on_event(self, event: Event) -> list[Event]:
        if event.type in OUTPUT_TYPES:
            return []
        markers = self.therapist.on_event(event) + self.patient.on_event(event)
        figures: list[Event] = []
        if self.utterances is not None and isinstance(event, Transcript):
            for ev in self.utterances.on_transcript(event):
                (markers if isinstance(ev, Marker) else figures).append(ev)
        if isinstance(event, Transcript):
            markers += self.patient.voice_in_context(event, markers)
        if self.patient.engaged:
            self.patient.engaged.clear()
            self.fusion.engaged()
        for m in markers:
            self.fusion.add(m)
            self.episodes.marker(m)
        return list(markers) + figures

    def tick(self, t: float) -> list[Event]:
        out: list[Event] = []
        for m in self.patient.tick(t):
            self.fusion.add(m)
            self.episodes.marker(m)
            out.append(m)
        for ev in self.fusion.tick(t):
            if isinstance(ev, Alert):
                out += self.episodes.alert(ev.kind, ev.state, t)
            out.append(ev)
        self.episodes.update(t, self.fusion.smooth, self.fusion.contributions(t))
        out += self.episodes.tick(t)
        return out

    def finish(self, t: float) -> list[Event]:
        out: list[Event] = []
        for m in self.patient.finish(t):
            self.fusion.add(m)
            self.episodes.marker(m)
            out.append(m)
        for ev in self.fusion.finish(t):
            if isinstance(ev, Alert):
                out += self.episodes.alert(ev.kind, ev.state, t)
            out.append(ev)
        out += self.episodes.finish(t)
        return out


def build_analyzers(settings: Settings, *, transcripts: bool = True) -> list[RuptureModel]:
    """The analyzers a session runs (the pipeline's ``analyzers=``); ``transcripts``: whether it has words."""
    return [RuptureModel.from_settings(settings, transcripts=transcripts)]


def transcribed(events: Iterable[dict[str, Any] | Event]) -> bool:
    """Whether recorded ``events`` are of a session with speech recognition (a transcript among
    them): what ``transcripts=`` of :meth:`RuptureModel.from_settings` is for a re-run."""
    return any((ev.get("type") if isinstance(ev, dict) else ev.type) == "transcript" for ev in events)


def _typed(events: Iterable[dict[str, Any] | Event]) -> Iterator[Event]:
    for ev in events:
        if isinstance(ev, dict):
            if ev.get("type") in OUTPUT_TYPES or ev.get("type") not in _KNOWN:
                continue
            yield event_from_dict(ev)
        elif ev.type not in OUTPUT_TYPES:
            yield ev


def run_on_events(model: Any, events: Iterable[dict[str, Any] | Event], *, tick_s: float = _TICK_S,
                  end_t: float | None = None) -> list[Event]:
    """Feed recorded events (e.g. a session's ``events.jsonl``) to ``model`` as the pipeline would.

    Ticks come at multiples of ``tick_s`` (the pipeline's block ends), each after the
    events known by then; earlier outputs of the model in ``events`` are ignored.
    Returns what the model emitted, in order.
    """
    out: list[Event] = []
    k = 1
    last_t = 0.0
    for ev in _typed(events):
        while k * tick_s < ev.t - 1e-9:
            out += model.tick(round(k * tick_s, 6))
            k += 1
        out += model.on_event(ev)
        last_t = max(last_t, ev.t)
    stop = end_t if end_t is not None else last_t
    while k * tick_s <= stop + 1e-9:
        out += model.tick(round(k * tick_s, 6))
        k += 1
    out += model.finish(stop)
    return out
