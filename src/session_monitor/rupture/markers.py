"""What the patient and the therapist evidence share: recognised cues into ``marker`` events.

- :class:`Cooldown`: each named marker at most once per ``repeat_s``;
- :class:`Once`: a bounded memory of what was already said about an utterance (a
  transcript can come twice: an interim pass, then the final);
- :func:`lexical_markers`: the lexicon's hits in a transcript, each a marker quoting its sentence;
- :class:`InterruptionRun` and :func:`interruption_marker`: one marker per interruption,
  however many overlaps it is made of;
- :class:`WaitForWords`: markers of a cue that counts in the context of the words said with
  it (a raised voice), held until those words are heard.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, replace

from session_monitor.events import RUPTURE_KINDS, Marker, Overlap, Transcript
from session_monitor.quotes import quoted
from session_monitor.rupture.lexicon import LexicalHit

__all__ = ["Cooldown", "InterruptionRun", "Once", "WaitForWords", "interruption_marker", "lexical_markers"]


def _clamp(strength: float) -> float:
    return max(0.0, min(1.0, strength))


class Cooldown:
    """Each named marker at most once per ``repeat_s`` seconds of session time."""

    def __init__(self, repeat_s: float) -> None:
        self.repeat_s = repeat_s
        self._last: dict[str, float] = {}

    def ready(self, name: str, t: float) -> bool:
        """True (and ``name`` counted as said at ``t``) unless it was said less than ``repeat_s`` ago."""
        last = self._last.get(name)
        if last is not None and t - last < self.repeat_s:
            return False
        self._last[name] = t
        return True


class Once:
    """Keys seen before, bounded to the last ``limit`` of them (only recent utterances repeat)."""

    def __init__(self, limit: int = 200) -> None:
        self.limit = limit
        self._seen: set[Hashable] = set()
        self._order: deque[Hashable] = deque()

    def first(self, key: Hashable) -> bool:
        """True the first time ``key`` is seen (and remember it)."""
        if key in self._seen:
            return False
        self._seen.add(key)
        self._order.append(key)
        while len(self._order) > self.limit:
            self._seen.discard(self._order.popleft())
        return True


def lexical_markers(tr: Transcript, hits: Iterable[LexicalHit], *, speaker: str, once: Once) -> list[Marker]:
    """One marker per hit not yet reported for this utterance, timed and quoting its sentence."""
    out: list[Marker] = []
    for hit in hits:
        if not once.first((round(tr.start, 3), hit.marker)):
            continue
        sent = hit.sentence
        start = sent.start if sent.start is not None else tr.start
        end = sent.end if sent.end is not None else tr.end
        out.append(Marker(t=tr.t, speaker=speaker, kind=hit.kind, marker=hit.marker, strength=_clamp(hit.strength),
                          start=start, end=max(start, end), explanation=f"{hit.explanation}: {quoted(sent.text)}",
                          cue="lexical"))
    return out


class InterruptionRun:
    """Talking over someone again within ``merge_s`` of the last time is the same interruption."""

    def __init__(self, merge_s: float = 2.0) -> None:
        self.merge_s = merge_s
        self._end = -1e9

    def is_new(self, start: float, end: float) -> bool:
        """Record an overlap ``[start, end]``; True when it starts a new interruption."""
        if start < self._end + self.merge_s:
            self._end = max(self._end, end)
            return False
        self._end = end
        return True


def interruption_marker(ov: Overlap, *, speaker: str, over: str, min_s: float, run: InterruptionRun,
                        kind: str, marker: str, explanation: str) -> list[Marker]:
    """``speaker`` talking over ``over`` for at least ``min_s`` seconds, once per interruption.

    Strength 0.5 plus 0.25 per second of overlap, at most 1.
    """
    if ov.speaker != speaker or ov.over_speaker != over or ov.duration_s < min_s:
        return []
    if not run.is_new(ov.start, ov.end):
        return []
    return [Marker(t=ov.t, speaker=speaker, kind=kind, marker=marker, strength=_clamp(0.5 + 0.25 * ov.duration_s),
                   start=ov.start, end=max(ov.start, ov.end), explanation=explanation, cue="turn_taking")]


class WaitForWords:
    """Markers held until the words said with them are heard, then weighted by what those words are.

    A final transcript of the marker's speaker that reaches a held marker (it ends after the
    marker's start) gives it words. With rupture words from the lexicon (high precision) it
    is released at once, at the transcript's time, in full. Otherwise it waits for the rest
    of the turn (a reply is often transcribed in pieces, and the complaint may come in a
    later one): it is released once the turn is over (:meth:`turn_over`) and its words are
    heard to the turn's end, or ``wait_s`` after it was held, or when the session ends: with
    ``alone_factor`` + (1 - ``alone_factor``) x the strongest classifier marker's strength
    where the classifiers heard sustain talk in the turn, with ``alone_factor`` of it where
    no words of the turn were rupture evidence or none came. The lexicon reports a phrase
    once an utterance, often on an interim transcript: :meth:`said` keeps its latest markers
    for the final one.
    """

    def __init__(self, *, alone_factor: float, wait_s: float) -> None:
        self.alone_factor = alone_factor
        self.wait_s = wait_s
        self._held: list[_Waiting] = []
        self._said: deque[Marker] = deque(maxlen=20)

    def hold(self, marker: Marker) -> None:
        self._held.append(_Waiting(marker))

    def said(self, markers: Iterable[Marker]) -> None:
        """The lexicon's markers of a transcript, interim or final."""
        self._said.extend(markers)

    def release(self, tr: Transcript, heard: list[Marker]) -> list[Marker]:
        """The held markers that a final transcript ``tr`` gives words to; ``heard``: its markers."""
        if not tr.final:
            return []

        def settled(w: _Waiting) -> bool:
            if tr.speaker != w.marker.speaker or tr.end < w.marker.start:
                return False
            w.words_end = max(w.words_end or tr.end, tr.end)
            w.back_with([*heard, *self._said])
            return w.backing >= 1.0 or w.all_heard()

        return self._settle(settled, tr.t)

    def turn_over(self, t: float, speaker: str, end: float) -> list[Marker]:
        """``speaker``'s turn ended at ``end`` (the other speaker began, at ``t``): the markers
        of that turn whose words are all heard count now; the others when the words that
        reach ``end`` are."""

        def settled(w: _Waiting) -> bool:
            if w.marker.speaker != speaker or w.marker.start > end or w.turn_end is not None:
                return False
            w.turn_end = end
            return w.all_heard()

        return self._settle(settled, t)

    def unheard(self, t: float) -> list[Marker]:
        """The held markers whose turn was not over and heard within ``wait_s``."""
        return self._settle(lambda w: t - w.marker.t >= self.wait_s, t)

    def finish(self, t: float) -> list[Marker]:
        return self._settle(lambda w: True, t)

    def _settle(self, settled: Callable[[_Waiting], bool], t: float) -> list[Marker]:
        """The held markers that ``settled`` (which may note what it learnt on them) lets go, at ``t``."""
        if not self._held:  # every tick: nothing to do, most of the time
            return []
        out: list[Marker] = []
        waiting: list[_Waiting] = []
        for w in self._held:
            if settled(w):
                out.append(self._in_words(w, t))
            else:
                waiting.append(w)
        self._held = waiting
        return out

    def _in_words(self, w: _Waiting, t: float) -> Marker:
        m = w.marker
        if w.words_end is None:
            return self._alone(m, t, "no words heard")
        if w.strongest is None:
            return self._alone(m, t, "with words that are no rupture evidence")
        factor = self.alone_factor + (1.0 - self.alone_factor) * w.backing
        name = w.strongest.marker.replace("_", " ")
        why = f"with {name}" if w.backing >= 0.5 else f"with words that are weak evidence of {name}"
        return replace(m, t=t, strength=m.strength * factor, explanation=f"{m.explanation}, {why}")

    def _alone(self, m: Marker, t: float, why: str) -> Marker:
        return replace(m, t=t, strength=m.strength * self.alone_factor, explanation=f"{m.explanation}, {why}")


#: A turn's words are all heard when its final transcripts reach this close to the end of its
#: speech (a transcript's last word may end before the speech detector's segment does).
_HEARD_S = 1.0


@dataclass
class _Waiting:
    """A held marker, and what its speaker's words said so far."""

    marker: Marker
    words_end: float | None = None  # the end of the latest final transcript that reached it
    turn_end: float | None = None  # the end of its turn's speech, once the other speaker began
    backing: float = 0.0  # the strongest rupture evidence in those words (lexicon: 1)
    strongest: Marker | None = None

    def all_heard(self) -> bool:
        """The turn is over and its words are transcribed to its end (within ``_HEARD_S``)."""
        if self.turn_end is None or self.words_end is None:
            return False
        return self.words_end >= self.turn_end - _HEARD_S

    def back_with(self, words: list[Marker]) -> None:
        m = self.marker
        for w in words:
            if (w.speaker == m.speaker and w.kind in RUPTURE_KINDS and w.cue in ("lexical", "classifier")
                    and w.end >= m.start):
                strength = 1.0 if w.cue == "lexical" else w.strength
                if self.strongest is None or strength > self.backing:
                    self.backing, self.strongest = strength, w
