"""Therapist side: questions and invitations, contributions to ruptures, and repair.

The 3RS rates the therapist too (Eubanks, Muran & Safran 2015): directive or
lecturing talk, arguing, interrupting the patient and few reflections of the
patient's own words raise the risk of a rupture before the patient shows it, and
they are what a therapist can change at once. Repair (clarifying, changing the
task, giving a rationale, meta-communication, acknowledging one's own part,
validating) comes from the phrases in the markers file.

This module also tells the patient side what the therapist's last utterance was:
a question or invitation (from the transcript, or from rising pitch at its end,
which is known before the words are) or a statement.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from session_monitor.events import Event, Marker, Overlap, Prosody, Speech, TalkShare, Transcript
from session_monitor.rupture.lexicon import Lexicon, normalize, split_sentences
from session_monitor.rupture.markers import (
    Cooldown,
    InterruptionRun,
    Once,
    interruption_marker,
    lexical_markers,
)
from session_monitor.settings.loader import EvidenceSettings

__all__ = ["Invitation", "TherapistEvidence"]

_AUX = ("is", "are", "was", "were", "do", "does", "did", "can", "could", "would", "will", "have", "has",
        "should", "shall", "may", "might")
_STOP = frozenset([
    "about", "after", "again", "also", "always", "because", "been", "before", "being", "could",
    "does", "doing", "down", "even", "every", "from", "going", "have", "into", "just", "know",
    "like", "made", "make", "more", "most", "much", "never", "only", "other", "over", "really",
    "same", "some", "than", "that", "their", "them", "then", "there", "these", "they", "thing",
    "think", "this", "those", "time", "very", "want", "well", "were", "what", "when", "where",
    "which", "while", "will", "with", "would", "your", "yours", "you're", "yourself",
])


@dataclass(frozen=True)
class Invitation:
    """The therapist's last utterance before a reply: was it a question, and how open?"""

    end: float
    question: bool  # a question or an invitation to speak (else a statement)
    open: bool  # open question or invitation (invites more than yes/no)
    source: str  # "text", "pitch" or "text+pitch"
    text: str = ""

    @property
    def phrase(self) -> str:
        """'your question', 'your invitation' or 'your statement', for explanations."""
        if not self.question:
            return "your statement"
        return "your question" if self.source != "text" or self.text.rstrip().endswith("?") else "your invitation"


def _stem(tok: str) -> str:
    return tok[:5]


def content_words(text: str) -> set[str]:
    """Crude stems of the content words of ``text`` (for reflection overlap)."""
    tokens, _ = normalize(text)
    return {_stem(t) for t in tokens if len(t) >= 4 and t not in _STOP}


class TherapistEvidence:
    """Therapist markers from transcripts, prosody and turn-taking.

    Parameters
    ----------
    settings : the [evidence] section
    lexicon : phrases, including the therapist entries and the question lists
    """

    def __init__(self, settings: EvidenceSettings, lexicon: Lexicon) -> None:
        self.s = settings
        self.lexicon = lexicon
        self._f0: deque[tuple[float, float]] = deque(maxlen=400)  # (t, f0_hz) of the last ~40 s
        self._last_seg: tuple[float, bool, float] | None = None  # (end, rising, rise_st)
        self._last_utt: Invitation | None = None
        self._once = Once()  # (utterance start, marker) already emitted
        self._last_patient_text = ""
        self._patient_since_turn = False
        self._turns_without_reflection = 0
        self._last_patient_end = 0.0
        self._monologue_flagged_at = -1.0
        self._cooldown = Cooldown(self.s.repeat_s)
        self._interruptions = InterruptionRun()

    # -- what the patient side asks ------------------------------------------------------------------

    def invitation_before(self, t: float) -> Invitation | None:
        """The therapist's last utterance that ended before ``t`` (text and pitch combined)."""
        utt = self._last_utt if self._last_utt is not None and self._last_utt.end <= t + 0.5 else None
        seg = self._last_seg if self._last_seg is not None and self._last_seg[0] <= t else None
        rising = seg is not None and seg[1] and (utt is None or abs(seg[0] - utt.end) < 1.5 or seg[0] > utt.end)
        if utt is None:
            if seg is None:
                return None
            return Invitation(end=seg[0], question=rising, open=False, source="pitch")
        if rising and not utt.question:
            return Invitation(utt.end, True, utt.open, "pitch", utt.text)
        if rising:
            return Invitation(utt.end, True, utt.open, "text+pitch", utt.text)
        return utt

    # -- events ---------------------------------------------------------------------------------------------

    def on_event(self, ev: Event) -> list[Marker]:
        if isinstance(ev, Prosody):
            if ev.speaker == "therapist" and ev.speaking and ev.f0_hz:
                self._f0.append((ev.t, ev.f0_hz))
            return []
        if isinstance(ev, Speech):
            if ev.speaker == "therapist":
                return self._therapist_speech(ev)
            if ev.speaker == "patient":
                self._last_patient_end = max(self._last_patient_end, ev.end)
            return []
        if isinstance(ev, Transcript):
            if ev.speaker == "therapist":
                return self._therapist_transcript(ev)
            if ev.speaker == "patient" and ev.final:
                self._last_patient_text = ev.text
                self._patient_since_turn = True
            return []
        if isinstance(ev, Overlap):
            return self._overlap(ev)
        if isinstance(ev, TalkShare):
            return self._talk_share(ev)
        return []

    def _therapist_speech(self, seg: Speech) -> list[Marker]:
        frames = [(t, f) for t, f in self._f0 if seg.start <= t <= seg.end + 0.1]
        rising, rise = False, 0.0
        if len(frames) >= 6:
            tail = [f for t, f in frames if t > seg.end - 0.4]
            body = [f for t, f in frames if t <= seg.end - 0.4]
            if len(tail) >= 2 and len(body) >= 3:
                rise = 12.0 * float(np.log2(np.median(tail) / np.median(body)))
                rising = rise >= self.s.question_rise_st
        self._last_seg = (seg.end, rising, rise)
        out: list[Marker] = []
        span = seg.end - self._last_patient_end
        if span >= self.s.lecture_s and self._monologue_flagged_at < self._last_patient_end:
            self._monologue_flagged_at = seg.end
            out.append(Marker(t=seg.t, speaker="therapist", kind="withdrawal", marker="therapist_dominance",
                              strength=min(1.0, 0.5 + 0.5 * (span - self.s.lecture_s) / self.s.lecture_s),
                              start=self._last_patient_end, end=seg.end, cue="turn_taking",
                              explanation=f"you have talked for {span:.0f} s without the patient speaking"))
        return out

    def _classify(self, text: str) -> tuple[bool, bool]:
        """(question or invitation, open) from the words of a therapist utterance."""
        question = is_open = False
        for sentence in split_sentences(text):
            tokens, _ = normalize(sentence.text)
            if not tokens:
                continue
            routine = self.lexicon.contains("routine_questions", sentence.text, at_start=True)
            if routine is not None and len(tokens) > len(normalize(routine)[0]) + 1:
                routine = None  # "how are you feeling about ..." is not a greeting
            opener = self.lexicon.contains("open_question_starts", sentence.text, at_start=True)
            asks = sentence.text.rstrip().endswith("?") or tokens[0] in _AUX or opener is not None
            if asks:
                question = True
                is_open = is_open or (opener is not None and routine is None)
            if self.lexicon.contains("invitations", sentence.text):
                question = is_open = True
        return question, is_open

    def _therapist_transcript(self, tr: Transcript) -> list[Marker]:
        question, is_open = self._classify(tr.text)
        end = tr.words[-1].end if tr.words else tr.end
        self._last_utt = Invitation(end=end, question=question, open=is_open, source="text", text=tr.text)
        out = self._lexical(tr)
        if tr.final:
            out += self._reflections(tr)
        return out

    def _lexical(self, tr: Transcript) -> list[Marker]:
        hits = self.lexicon.match(tr.text, speaker="therapist", words=tr.words)
        return lexical_markers(tr, hits, speaker="therapist", once=self._once)

    def _reflections(self, tr: Transcript) -> list[Marker]:
        if not self._patient_since_turn:
            return []
        self._patient_since_turn = False
        stem = self.lexicon.contains("reflection_stems", tr.text)
        shared = content_words(tr.text) & content_words(self._last_patient_text)
        if stem is not None or len(shared) >= 2:
            self._turns_without_reflection = 0
            return []
        self._turns_without_reflection += 1
        n = self._turns_without_reflection
        if n < self.s.reflection_turns or not self._cooldown.ready("therapist_few_reflections", tr.t):
            return []
        return [Marker(t=tr.t, speaker="therapist", kind="withdrawal", marker="therapist_few_reflections",
                       strength=0.5, start=tr.start, end=tr.end, cue="lexical",
                       explanation=f"your last {n} turns did not reflect the patient's own words")]

    def _overlap(self, ov: Overlap) -> list[Marker]:
        return interruption_marker(ov, speaker="therapist", over="patient", min_s=self.s.interrupt_min_s,
                                   run=self._interruptions, kind="confrontation", marker="therapist_interrupting",
                                   explanation=f"you talked over the patient ({ov.duration_s:.1f} s)")

    def _talk_share(self, ts: TalkShare) -> list[Marker]:
        share = ts.shares.get("therapist")
        if share is None or ts.t < min(ts.window_s, 60.0) or share < self.s.dominance_share:
            return []
        if not self._cooldown.ready("therapist_dominance_share", ts.t):
            return []
        return [Marker(t=ts.t, speaker="therapist", kind="withdrawal", marker="therapist_dominance",
                       strength=min(1.0, 0.5 + (share - self.s.dominance_share) * 2.5),
                       start=max(0.0, ts.t - ts.window_s), end=ts.t, cue="turn_taking",
                       explanation=f"you did {share:.0%} of the talking over the last {ts.window_s:.0f} s")]

