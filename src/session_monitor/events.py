"""Typed events: the one stream that every stage produces and every sink reads.

Each event is a frozen dataclass with a ``type`` tag and ``t``, the session time in
seconds (counted from samples, never from the wall clock) at which it became known.
What it describes is timed by ``start``/``end``. The JSON form is one object a line
in ``events.jsonl`` (see ../shared/DESIGN.md, "Event stream").

Fields whose value depends on the wall clock (how fast the machine was) are listed
in :data:`TIMING_FIELDS`; two ``--speed max`` replays agree on everything else.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = [
    "Event",
    "SessionEvent",
    "SpeechOnset",
    "Speech",
    "Gap",
    "Overlap",
    "Prosody",
    "TalkShare",
    "Word",
    "Transcript",
    "Marker",
    "Signal",
    "Alert",
    "Episode",
    "Annotation",
    "Health",
    "MiFigures",
    "TIMING_FIELDS",
    "EVENT_TYPES",
    "event_to_dict",
    "event_to_json",
    "event_from_dict",
    "SPEAKERS",
    "RUPTURE_KINDS",
    "AlertSpan",
    "alert_spans",
]

#: Who an event can be about; ``unknown`` where attribution is unsure (or a channel unused).
SPEAKERS = ("therapist", "patient", "unknown")

#: The two kinds of rupture (3RS): moving away from, and moving against, the therapist.
RUPTURE_KINDS = ("withdrawal", "confrontation")

#: Fields measured on the wall clock; they differ between two otherwise equal runs.
TIMING_FIELDS = frozenset({"asr_lag_s", "asr_compute_s", "asr_queue", "rtf", "wall_s", "wall_time"})

_DECIMALS = 4


@dataclass(frozen=True, slots=True)
class Event:
    """Base of all events: ``t`` is session seconds at which the event became known."""

    type: ClassVar[str] = "event"
    t: float


@dataclass(frozen=True, slots=True)
class SessionEvent(Event):
    """Session start or end."""

    type: ClassVar[str] = "session"
    state: str  # "started" | "ended"
    source: str
    sample_rate: int
    channels: int
    roles: tuple[str, ...] = ()
    complete: bool = True


@dataclass(frozen=True, slots=True)
class SpeechOnset(Event):
    """A speaker started talking at ``start`` (known at ``t``, after VAD confirmation)."""

    type: ClassVar[str] = "speech_onset"
    speaker: str
    start: float


@dataclass(frozen=True, slots=True)
class Speech(Event):
    """One speech segment (speech with no pause >= ``speech_activity.min_pause_ms``).

    Emitted when the segment has ended. ``intensity_db`` is the mean frame level in
    dBFS over the segment, ``f0_hz`` the median pitch of its voiced frames (None when
    none), ``syllable_rate_hz`` syllable nuclei per second from intensity peaks.
    """

    type: ClassVar[str] = "speech"
    speaker: str
    start: float
    end: float
    intensity_db: float | None = None
    f0_hz: float | None = None
    syllable_rate_hz: float | None = None
    speaker_confidence: float | None = None  # mono attribution, 0..1 (None: speaker from the channel)


@dataclass(frozen=True, slots=True)
class Gap(Event):
    """Silence at a change of speaker: the response latency of ``to_speaker``."""

    type: ClassVar[str] = "gap"
    from_speaker: str
    to_speaker: str
    start: float
    end: float
    duration_s: float


@dataclass(frozen=True, slots=True)
class Overlap(Event):
    """``speaker`` started while ``over_speaker`` was talking; emitted when one stops.

    ``yielded`` is True when ``over_speaker`` stopped first (an interruption that
    took the floor), False when the incoming speaker gave up first.
    """

    type: ClassVar[str] = "overlap"
    speaker: str
    over_speaker: str
    start: float
    end: float
    duration_s: float
    yielded: bool


@dataclass(frozen=True, slots=True)
class Prosody(Event):
    """Per-speaker features over the last ``1/features_hz`` seconds.

    ``intensity_db`` is dBFS of the loudest 10 ms hop, ``intensity_z`` its z-score
    against the speaker's running speech baseline (None while silent or before a
    baseline exists), ``f0_semitones`` median F0 of voiced hops in semitones against
    the speaker's running F0 baseline (None when unvoiced). ``intensity_db`` is the
    power mean of the 10 ms hops in dBFS.
    """

    type: ClassVar[str] = "prosody"
    speaker: str
    intensity_db: float
    intensity_z: float | None
    f0_semitones: float | None
    f0_hz: float | None = None
    speaking: bool = False


@dataclass(frozen=True, slots=True)
class TalkShare(Event):
    """Each speaker's share of all speech over the last ``window_s`` seconds."""

    type: ClassVar[str] = "talk_share"
    window_s: float
    shares: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Word:
    start: float
    end: float
    word: str
    probability: float | None = None


@dataclass(frozen=True, slots=True)
class Transcript(Event):
    """Words of one utterance; ``final`` is False for an interim pass on a long one."""

    type: ClassVar[str] = "transcript"
    speaker: str
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()
    final: bool = True
    words_per_s: float | None = None
    asr_lag_s: float | None = None
    asr_compute_s: float | None = None
    speaker_confidence: float | None = None  # mono attribution, 0..1 (None: speaker from the channel)


@dataclass(frozen=True, slots=True)
class Marker(Event):
    """One piece of 3RS evidence with a sentence a therapist understands."""

    type: ClassVar[str] = "marker"
    speaker: str
    kind: str  # withdrawal | confrontation | repair
    marker: str
    strength: float
    start: float
    end: float
    explanation: str
    cue: str = ""  # lexical | timing | prosody | turn_taking (what the evidence came from)


@dataclass(frozen=True, slots=True)
class Signal(Event):
    """The fused rupture likelihood and its sub-scores, each in [0, 1]."""

    type: ClassVar[str] = "signal"
    likelihood: float
    withdrawal: float
    confrontation: float
    evidence: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class Alert(Event):
    type: ClassVar[str] = "alert"
    state: str  # on | off
    kind: str


@dataclass(frozen=True, slots=True)
class Annotation(Event):
    type: ClassVar[str] = "annotation"
    label: str
    source: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class Health(Event):
    """Pipeline health: dropped audio, ASR backlog and lag, capture state.

    An input problem a person can fix (audio/input_health.py, speech/bleed.py) comes as
    its own health event, once when it starts and once when it clears: ``problem``
    (``clipping``, ``too_quiet``, ``dead_channel``, ``level_jump``, ``dual_mono``), the
    ``channel`` (0-based; None for the whole input) and its ``speaker``, a plain
    ``hint`` saying what to do, ``cleared`` when it is over.
    A lost device of two: ``audio_ok`` is that channel's, ``channel``/``speaker`` name it.
    """

    type: ClassVar[str] = "health"
    overflows: int = 0
    asr_queue: int = 0
    asr_skipped: int = 0
    asr_errors: int = 0
    asr_restarts: int = 0
    asr_lag_s: float | None = None
    audio_ok: bool = True
    message: str = ""
    rtf: float | None = None
    problem: str = ""
    channel: int | None = None
    speaker: str | None = None
    hint: str = ""
    cleared: bool = False


@dataclass(frozen=True, slots=True)
class Episode(Event):
    """A closed rupture episode: one alert of ``kind`` from ``start`` to ``end``.

    ``peak_t``/``peak_likelihood`` is its highest smoothed score, ``subtypes`` the
    markers that drove it, and ``repair_t`` the first therapist repair marker during
    it or within the grace period after it (None when no repair followed).
    """

    type: ClassVar[str] = "episode"
    kind: str
    start: float
    end: float
    peak_t: float
    peak_likelihood: float
    subtypes: tuple[str, ...] = ()
    repaired: bool = False
    repair_t: float | None = None
    repair_markers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MiFigures(Event):
    """Running MI figures of the session so far, from the utterance classifiers.

    Shares are 0..1 (None while their denominator is 0): reflections per question,
    complex among reflections, open among questions, change among change + sustain
    client turns, input (advice, information) among therapist turns.
    """

    type: ClassVar[str] = "mi_figures"
    reflections: int = 0
    questions: int = 0
    reflection_to_question: float | None = None
    complex_reflection_share: float | None = None
    open_question_share: float | None = None
    change_talk: int = 0
    sustain_talk: int = 0
    change_share: float | None = None
    input_share: float | None = None


EVENT_TYPES: dict[str, type[Event]] = {
    cls.type: cls
    for cls in (
        SessionEvent, SpeechOnset, Speech, Gap, Overlap, Prosody, TalkShare, Transcript,
        Marker, Signal, Alert, Annotation, Health, Episode, MiFigures,
    )
}


def _clean(value: Any) -> Any:
    if value is None or value.__class__ in _PLAIN:
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return None
        return round(value, _DECIMALS)
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value):
        return {name: _clean(getattr(value, name)) for name in _field_names(type(value))}
    return value


_PLAIN = (str, int, bool)
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def event_to_dict(event: Event) -> dict[str, Any]:
    """JSON-ready dict with ``type`` first; floats rounded to 4 decimals, NaN -> null."""
    out: dict[str, Any] = {"type": event.type}
    for name in _field_names(type(event)):
        out[name] = _clean(getattr(event, name))
    return out


def event_to_json(event: Event) -> str:
    return json.dumps(event_to_dict(event), separators=(",", ":"), ensure_ascii=False)


def event_from_dict(data: dict[str, Any]) -> Event:
    """Rebuild a typed event from its JSON form; unknown fields are ignored.

    Raises ``KeyError``/``TypeError`` on a malformed object; readers of
    ``events.jsonl`` turn that into an :class:`~session_monitor.errors.InputError`.
    """
    cls = EVENT_TYPES[data["type"]]
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in data.items() if k in names}
    if cls is Transcript and "words" in kwargs:
        kwargs["words"] = tuple(Word(**w) for w in kwargs["words"])
    for key in ("roles", "evidence", "subtypes", "repair_markers"):
        if key in kwargs and isinstance(kwargs[key], list):
            kwargs[key] = tuple(kwargs[key])
    return cls(**kwargs)


@dataclass(frozen=True, slots=True)
class AlertSpan:
    """One alert of ``kind`` from its ``on`` to its ``off`` (seconds); ``open_at_end`` when no
    ``off`` came before the session's end (``end`` is then that end)."""

    kind: str
    start: float
    end: float
    open_at_end: bool = False


def alert_spans(events: Any, end_s: float) -> list[AlertSpan]:
    """The alert spans of a session's event dicts (as read from ``events.jsonl``).

    An ``on`` opens a span of its kind (a repeated ``on`` is ignored), an ``off`` closes
    it; spans still open at ``end_s`` end there. Closed spans come in the order they
    closed, then the open ones in the order they opened. Evaluation, the summary and the
    report all pair alerts here.
    """
    opened: dict[str, float] = {}
    out: list[AlertSpan] = []
    for ev in events:
        if ev.get("type") != "alert":
            continue
        kind, state = ev.get("kind"), ev.get("state")
        if state == "on" and kind not in opened:
            opened[kind] = float(ev["t"])
        elif state == "off" and kind in opened:
            out.append(AlertSpan(kind, opened.pop(kind), float(ev["t"])))
    return out + [AlertSpan(kind, start, max(start, end_s), True) for kind, start in opened.items()]
