"""Evidence from the utterance classifiers, and the session's running MI figures.

Every *final* transcript is classified (:mod:`session_monitor.rupture.utterances`):

- **patient sustain talk** in context becomes a 3RS marker: after a therapist
  suggestion (advice, information, options) it is ``rejecting_intervention``
  (confrontation); a reply that minimises ("only on weekends", "not that much") is
  ``denial`` (withdrawal); any other sustain talk after a therapist question or
  reflection is ``defending_self`` (confrontation). Without a therapist turn in the
  last ``context_s`` it counts ``no_context_factor`` as much, after a therapist turn
  that was not input ``not_after_input_factor`` as much (sustain talk in answer to a
  question is the ambivalence MI works with; in answer to advice it is discord). Strength rises with the
  classifier's P(sustain) from 0 at ``sustain_min_p`` to ``sustain_weight`` at 1 (graded:
  a reply need not be most probably sustain talk to count a little).
- **therapist contributions** (``speaker="therapist"``: fusion caps them with
  ``therapist_cap`` each and ``therapist_max_score`` together, so they never alert
  alone): each turn of input (information, advice, options; not negotiation, which asks
  permission) with no reflection and no asking permission in it or in the
  ``input_reflection_turns`` turns before it (``therapist_unreflected_input``; MI's
  ask-provide-ask gives information after asking whether the client wants it); input in
  at least ``input_min`` of the last ``window_turns`` turns with no reflection among them
  (``therapist_advising``);
  ``closed_run`` closed questions in a row (``therapist_closed_questions``).

The running figures a clinician knows from MI coding (reflection-to-question ratio,
share of complex reflections, share of open questions, client change vs sustain talk)
come as an ``mi_figures`` event after each classified transcript. They count turns, as MI
coding counts utterances: with ``whole_turn``, a turn heard as several transcripts is counted
once, with its latest label (the classification of the whole turn so far replaces the earlier
ones), and the therapist's "turns" in the evidence above are turns too.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

from session_monitor.events import Marker, MiFigures, Transcript
from session_monitor.quotes import quoted
from session_monitor.rupture.markers import Cooldown
from session_monitor.rupture.utterances import Prediction, UtteranceClassifiers
from session_monitor.settings.sections import UtteranceSettings

__all__ = ["UtteranceEvidence", "TherapistTurn"]

_MINIMISING = re.compile(
    r"\b(only|just|not (that|so|very|really) (much|many|bad|often)|not a (big )?(deal|problem)|"
    r"no big deal|hardly|barely|a little|a couple|it'?s fine|i'?m fine|under control|not really)\b")


#: Asking permission before giving information or advice (MI's "ask-provide-ask"): "is it okay
#: if I share...", "would you like to hear...". On AnnoMI's expert labels, 15 of the 254
#: unreflected input turns of high-quality sessions follow such a question, none of the 46 of
#: the low-quality ones.
_PERMISSION = re.compile(
    r"\b(is it (ok|okay|alright|all right) (if|with you)|would it be (ok|okay|alright|all right)|"
    r"(would|do) you mind if|mind if i|can i (share|tell|give|offer|mention|suggest)|may i|"
    r"would you like (me to (share|tell|give|explain|go over|talk about)|to hear|to know|"
    r"some (information|ideas|suggestions|feedback))|if it'?s (ok|okay|alright) with you)\b")


#: Words of a turn kept as the classifiers' context (its last ones): the longest utterance of
#: the AnnoMI training data is 246 words, 99.9 % are under 150.
_TURN_WORDS = 250


def _clock(t: float) -> str:
    return f"{int(t // 60)}:{int(t % 60):02d}"


@dataclass(frozen=True)
class TherapistTurn:
    """A classified therapist turn: with ``whole_turn``, from its first transcript to its latest (each
    further transcript replaces it); otherwise one transcript."""

    t: float
    start: float
    end: float
    text: str
    behaviour: str  # reflection | question | therapist_input | other ("" below the confidence floor)
    subtype: str  # simple/complex, open/closed, information/advice/negotiation/options, or ""
    probability: float
    asks_permission: bool = False  # a permission question in its words (_PERMISSION)


class UtteranceEvidence:
    """Classifier markers and MI figures from final transcripts.

    Parameters
    ----------
    settings : the [utterances] section
    classifiers : loaded model (:func:`session_monitor.rupture.utterances.load_classifiers`)
    """

    def __init__(self, settings: UtteranceSettings, classifiers: UtteranceClassifiers) -> None:
        self.s = settings
        self.clf = classifiers
        self._turns: deque[TherapistTurn] = deque(
            maxlen=max(settings.window_turns, settings.closed_run, settings.input_reflection_turns + 1))
        self._last_therapist: TherapistTurn | None = None
        # AnnoMI's utterances are turns: transcripts of one speaker in a row make one turn,
        # and the classifiers' context is the other speaker's last turn and the speaker's own previous one
        # (their last _TURN_WORDS words: a turn that never ends keeps a bounded context)
        self._turn: dict[str, deque[str]] = {s: deque(maxlen=_TURN_WORDS) for s in ("therapist", "patient")}
        self._prev_turn = {"therapist": "", "patient": ""}
        self._turn_start = {"therapist": 0.0, "patient": 0.0}
        self._speaking = ""
        self._last_reflection_t: float | None = None
        self._reflection_before_turn: float | None = None  # ... as it was when the therapist's turn began
        self._input_flagged = False  # the therapist's turn gave unreflected-input evidence already
        self._patient_label = ""  # the patient's turn so far, as counted
        self._counts = {"reflection": 0, "complex": 0, "question": 0, "open": 0, "change": 0, "sustain": 0,
                        "neutral": 0, "input": 0, "therapist_turns": 0}
        self._cooldown = Cooldown(self.s.repeat_s)

    def on_transcript(self, tr: Transcript) -> list:
        """Markers and one ``mi_figures`` event for a final transcript (nothing for interim ones)."""
        if not tr.final or not tr.text.strip() or tr.speaker not in ("therapist", "patient"):
            return []
        other = "patient" if tr.speaker == "therapist" else "therapist"
        # with whole turns, a transcript that continues its speaker's turn re-classifies that turn:
        # its new label replaces the turn's earlier one (counts, the therapist's turns)
        again = self.s.whole_turn and self._speaking == tr.speaker
        if self._speaking != tr.speaker:
            if self._turn[tr.speaker]:
                self._prev_turn[tr.speaker] = " ".join(self._turn[tr.speaker])
                self._turn[tr.speaker].clear()
            self._turn_start[tr.speaker] = tr.start
        context = (" ".join(self._turn[other]) or self._prev_turn[other], self._prev_turn[tr.speaker])
        self._turn[tr.speaker].extend(tr.text.split())
        self._speaking = tr.speaker
        if self.s.whole_turn:
            text, start = " ".join(self._turn[tr.speaker]), self._turn_start[tr.speaker]
        else:
            text, start = tr.text, tr.start
        out = (self._therapist(tr, text, start, again, *context) if tr.speaker == "therapist"
               else self._patient(tr, text, start, again, *context))
        out.append(self.figures(tr.t))
        return out

    # -- therapist ------------------------------------------------------------------------------------

    def _therapist(self, tr: Transcript, text: str, start: float, again: bool, previous: str,
                   own_previous: str) -> list:
        """``text`` from ``start``: the turn so far (``again``: its earlier transcripts were
        classified already, and this classification replaces theirs), or the transcript alone."""
        pred = self.clf.therapist(text, previous, own_previous)
        b = pred["behaviour"]
        sub = {"reflection": "reflection_type", "question": "question_type",
               "therapist_input": "input_type"}.get(b.label)
        ok = b.probability >= self.s.therapist_min_p
        label, subtype = b.label if ok else "", pred[sub].label if (ok and sub) else ""
        turn = TherapistTurn(tr.t, start, tr.end, text, label, subtype, b.probability,
                             asks_permission=bool(_PERMISSION.search(text.lower())))
        if again:  # the turn's earlier classification is the last one kept
            self._count_therapist(self._turns.pop(), -1)
        else:
            self._reflection_before_turn = self._last_reflection_t
            self._input_flagged = False
        self._count_therapist(turn)
        self._turns.append(turn)
        self._last_therapist = turn
        self._last_reflection_t = tr.end if turn.behaviour == "reflection" else self._reflection_before_turn
        return self._unreflected(tr, turn) + self._advising(tr) + self._closed(tr)

    def _unreflected(self, tr: Transcript, turn: TherapistTurn) -> list[Marker]:
        """Input (not negotiation) with no reflection and no asking permission in it or in the turns just before it."""
        if (turn.behaviour != "therapist_input" or turn.subtype == "negotiation" or turn.asks_permission
                or self._input_flagged):
            return []
        before = list(self._turns)[:-1][-self.s.input_reflection_turns:]
        if any(t.behaviour == "reflection" or t.asks_permission for t in before):
            return []
        self._input_flagged = True  # once a turn
        since = (f"no reflection since {_clock(self._last_reflection_t)}" if self._last_reflection_t is not None
                 else "no reflection yet this session")
        what = turn.subtype or "input"
        return [Marker(t=tr.t, speaker="therapist", kind="confrontation", marker="therapist_unreflected_input",
                       strength=min(1.0, self.s.input_strength * turn.probability), start=turn.start, end=tr.end,
                       cue="classifier",
                       explanation=f"{what} (p={turn.probability:.2f}) without a reflection or asking permission "
                                   f"first; {since}: {quoted(turn.text, 80)}")]

    def _count_therapist(self, turn: TherapistTurn, n: int = 1) -> None:
        """Count ``turn`` in the MI figures (``n = -1``: take it back out)."""
        c = self._counts
        c["therapist_turns"] += n
        if turn.behaviour == "reflection":
            c["reflection"] += n
            c["complex"] += n * (turn.subtype == "complex")
        elif turn.behaviour == "question":
            c["question"] += n
            c["open"] += n * (turn.subtype == "open")
        elif turn.behaviour == "therapist_input":
            c["input"] += n

    def _advising(self, tr: Transcript) -> list[Marker]:
        recent = list(self._turns)[-self.s.window_turns:]
        if len(recent) < self.s.window_turns or recent[-1].behaviour != "therapist_input":
            return []
        n_input = sum(t.behaviour == "therapist_input" for t in recent)
        if n_input < self.s.input_min or any(t.behaviour == "reflection" for t in recent):
            return []
        if not self._cooldown.ready("therapist_advising", tr.t):
            return []
        since = (f"no reflection since {_clock(self._last_reflection_t)}" if self._last_reflection_t is not None
                 else "no reflection yet this session")
        last = recent[-1]
        return [Marker(t=tr.t, speaker="therapist", kind="confrontation", marker="therapist_advising",
                       strength=min(1.0, self.s.therapist_strength * n_input / len(recent)),
                       start=recent[0].start, end=tr.end, cue="classifier",
                       explanation=(f"{n_input} of your last {len(recent)} turns gave advice or information; "
                                    f"{since} (input p={last.probability:.2f}: {quoted(last.text, 80)})"))]

    def _closed(self, tr: Transcript) -> list[Marker]:
        n = self.s.closed_run
        recent = list(self._turns)[-n:]
        if len(recent) < n or not all(t.behaviour == "question" and t.subtype == "closed" for t in recent):
            return []
        if not self._cooldown.ready("therapist_closed_questions", tr.t):
            return []
        return [Marker(t=tr.t, speaker="therapist", kind="withdrawal", marker="therapist_closed_questions",
                       strength=min(1.0, self.s.therapist_strength), start=recent[0].start, end=tr.end,
                       cue="classifier",
                       explanation=f"your last {n} turns were closed questions ({quoted(recent[-1].text, 50)})")]

    # -- patient ----------------------------------------------------------------------------------------

    def _patient(self, tr: Transcript, text: str, start: float, again: bool, previous: str,
                 own_previous: str) -> list:
        """``text`` from ``start``: what was classified (the turn so far, or the transcript alone;
        ``again``: the turn's earlier label is replaced in the counts)."""
        prev = self._last_therapist
        pred = self.clf.patient(text, previous, own_previous)
        if again and self._patient_label:
            self._counts[self._patient_label] -= 1
        self._counts[pred.label] += 1
        self._patient_label = pred.label
        p = pred.probabilities.get("sustain", 0.0)
        if p <= self.s.sustain_min_p:
            return []
        return [self._sustain_marker(tr, text, start, pred, prev)]

    def _sustain_marker(self, tr: Transcript, text: str, start: float, pred: Prediction,
                        prev: TherapistTurn | None) -> Marker:
        """The marker spans and quotes what the classifier read; its context is what came before it."""
        p = pred.probabilities["sustain"]
        in_context = prev is not None and start - prev.end <= self.s.context_s
        ramp = (p - self.s.sustain_min_p) / max(1e-9, 1.0 - self.s.sustain_min_p)
        after_input = in_context and prev.behaviour == "therapist_input"
        factor = 1.0 if after_input else self.s.not_after_input_factor if in_context else self.s.no_context_factor
        strength = min(1.0, self.s.sustain_weight * ramp * factor)
        words = quoted(text, 80)
        if in_context and prev.behaviour == "therapist_input":
            kind, marker = "confrontation", "rejecting_intervention"
            why = f"sustain talk (p={p:.2f}) right after your {prev.subtype or 'suggestion'}"
        elif _MINIMISING.search(text.lower()):
            kind, marker = "withdrawal", "denial"
            why = f"minimising sustain talk (p={p:.2f})"
        else:
            kind, marker = "confrontation", "defending_self"
            after = {"question": "your question", "reflection": "your reflection"}.get(
                prev.behaviour if in_context else "", "")
            why = f"sustain talk (p={p:.2f})" + (f" after {after}" if after else "")
        return Marker(t=tr.t, speaker="patient", kind=kind, marker=marker, strength=strength,
                      start=start, end=tr.end, cue="classifier", explanation=f"{why}: patient: {words}")

    # -- figures ----------------------------------------------------------------------------------------

    def figures(self, t: float) -> MiFigures:
        """The running MI figures at session time ``t``."""
        c = self._counts

        def share(a: int, b: int) -> float | None:
            return round(a / b, 3) if b else None

        client = c["change"] + c["sustain"]
        return MiFigures(t=t, reflections=c["reflection"], questions=c["question"],
                         reflection_to_question=share(c["reflection"], c["question"]),
                         complex_reflection_share=share(c["complex"], c["reflection"]),
                         open_question_share=share(c["open"], c["question"]),
                         change_talk=c["change"], sustain_talk=c["sustain"],
                         change_share=share(c["change"], client),
                         input_share=share(c["input"], c["therapist_turns"]))
