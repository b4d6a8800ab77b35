"""Patient side: 3RS evidence from timing, voice, turn-taking and words, in context.

Every cue is judged against the patient's own running baseline, and a cue counts
in context, not alone (the literature warns that a silence, a short answer or
"I guess" is not a rupture by itself):

- **Response latency** after the therapist's question or invitation (Stivers et
  al. 2009: typical gaps ~200 ms; Roberts et al. 2006: beyond 600-1000 ms a
  response is heard as troubled). A long latency is held back until the reply
  shows what it was: followed by a quieter voice or a minimal reply it becomes
  ``minimal_response`` evidence; followed by a full answer at the usual level it
  was a reflective silence and is dropped. No answer at all (the therapist
  speaks again) counts too.
- **Minimal reply** (at most ``minimal_words`` words) to an open question.
- **Voice** of a reply against the patient's usual level, pitch and rate:
  ``lowered_voice`` (withdrawal) or ``raised_voice`` (confrontation), judged
  after ``voice_min_speech_s`` of speech, and again over several turns. Where the
  session has words, a raised voice waits for the reply's words as a long latency
  waits for the reply: with words that are rupture evidence it counts in full; with
  other words (emphasis, laughter, eager change talk), or none within
  ``voice_words_wait_s``, it counts ``voice_alone_factor`` of it.
- **Interrupting** the therapist (confrontation), **talk share collapse**
  (withdrawal, ``minimal_response``).
- **Words**: the patient entries of the markers file (all 3RS subtypes).

The paralinguistic cues are named for what they are (``lowered_voice``,
``raised_voice``, ``interrupting_therapist``) rather than forced onto a 3RS
subtype; timing cues are rated as 3RS minimal response.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from session_monitor.events import Event, Gap, Marker, Overlap, Prosody, Speech, SpeechOnset, Transcript
from session_monitor.quotes import quoted
from session_monitor.rupture.baselines import RunningMedian, VoiceBaseline
from session_monitor.rupture.lexicon import Lexicon, normalize
from session_monitor.rupture.markers import (
    InterruptionRun,
    Once,
    WaitForWords,
    interruption_marker,
    lexical_markers,
)
from session_monitor.rupture.therapist import Invitation, TherapistEvidence
from session_monitor.settings.loader import EvidenceSettings
from session_monitor.talk_time import TalkTime

__all__ = ["PatientEvidence"]


@dataclass
class _Turn:
    """The patient's reply: from their first onset after the therapist spoke."""

    onset: float
    gap_s: float | None = None
    latency_long: bool = False  # a long latency is pending its context
    latency_threshold_s: float = 0.0  # the threshold when the gap was measured
    latency_emitted: bool = False
    power: float = 0.0  # sum of 10^(dB/10) over speaking prosody frames
    frames: int = 0
    f0: list[float] = field(default_factory=list)
    voice: str | None = None  # None (not judged), "lowered", "raised", "usual"
    voice_drop_db: float = 0.0
    drop_threshold_db: float | None = None  # what counted as quieter when the voice was judged
    transcribed: bool = False
    words: int = 0
    words_per_s: float | None = None
    seg_db: list[float] = field(default_factory=list)


class PatientEvidence:
    """Patient markers. Feed every event in order; ``tick`` at block ends.

    Parameters
    ----------
    settings : the [evidence] section
    lexicon : phrases (patient entries)
    therapist : the therapist side, asked what the patient's reply followed
    features_hz : rate of the ``prosody`` events (``prosody.features_hz``): a turn's speaking
        time is counted in them
    words : whether the session has transcripts: a raised voice then waits for its words
        (:meth:`voice_in_context`); without, it counts at once
    """

    def __init__(self, settings: EvidenceSettings, lexicon: Lexicon, therapist: TherapistEvidence, *,
                 features_hz: float = 10.0, words: bool = True) -> None:
        self.s = settings
        self.words = words
        self._voices = WaitForWords(alone_factor=settings.voice_alone_factor, wait_s=settings.voice_words_wait_s)
        self.frame_s = 1.0 / features_hz
        self.lexicon = lexicon
        self.therapist = therapist
        n, m = settings.baseline_n, settings.baseline_min_n
        clamp_db = min(settings.voice_drop_db, settings.voice_rise_db) / 2
        #: the patient's usual voice over the first voice_min_speech_s of a reply (compared
        #: with the same window of each reply: onsets start higher in pitch) and over segments
        voice = {"min_n": m, "clamp_db": clamp_db, "clamp_st": settings.pitch_rise_st / 2,
                 "drop_db": settings.voice_drop_db, "rise_db": settings.voice_rise_db,
                 "spread_factor": settings.voice_spread_factor}
        self.onset_voice = VoiceBaseline(n, **voice)
        self.segment_voice = VoiceBaseline(n, **voice)
        self.rate_wps = RunningMedian(n, min_n=m)
        self.latency_s = RunningMedian(settings.latency_baseline_n, min_n=1)
        self._turn: _Turn | None = None
        self._last_turn: _Turn | None = None
        #: times of full patient turns in the usual voice with no rupture words (re-engagement);
        #: the rupture model drains this list
        self.engaged: list[float] = []
        #: (drop_db, rate_ratio, drop threshold) per turn
        self._trend: deque[tuple[float, float | None, float]] = deque(maxlen=8)
        self._once = Once()  # (utterance start, marker) already emitted
        self._last_therapist_end = -1.0
        self._last_patient_end = -1.0
        self._last_speaker: str | None = None
        self._interruptions = InterruptionRun()
        self._talk = TalkTime()  # speech within the share window
        self._before: dict[str, float] = {"patient": 0.0, "therapist": 0.0}  # speech before the window
        self._before_n: dict[str, int] = {"patient": 0, "therapist": 0}  # ... in this many segments
        self._next_share_check = 0.0
        self._last_share_emit = -1e9

    # -- helpers ---------------------------------------------------------------------------------------

    def _marker(self, t: float, kind: str, marker: str, strength: float, start: float, end: float,
                explanation: str, cue: str) -> Marker:
        return Marker(t=t, speaker="patient", kind=kind, marker=marker, strength=max(0.0, min(1.0, strength)),
                      start=start, end=max(start, end), explanation=explanation, cue=cue)

    def _latency_threshold(self) -> float:
        usual = self.latency_s.value
        return max(self.s.latency_min_s, self.s.latency_ratio * usual) if usual is not None else self.s.latency_min_s

    # -- events ---------------------------------------------------------------------------------------------

    def on_event(self, ev: Event) -> list[Marker]:
        if isinstance(ev, Prosody):
            return self._prosody(ev) if ev.speaker == "patient" else []
        if isinstance(ev, SpeechOnset):
            return self._onset(ev)
        if isinstance(ev, Gap):
            return self._gap(ev)
        if isinstance(ev, Speech):
            return self._speech(ev)
        if isinstance(ev, Transcript):
            return self._transcript(ev) if ev.speaker == "patient" else []
        if isinstance(ev, Overlap):
            return self._overlap(ev)
        return []

    def _onset(self, ev: SpeechOnset) -> list[Marker]:
        out: list[Marker] = []
        if ev.speaker == "therapist":
            out += self._close_turn(ev.t)
            inv = self.therapist.invitation_before(ev.start)
            pause = ev.start - self._last_therapist_end
            if (self._last_speaker == "therapist" and inv is not None and inv.question
                    and self._last_therapist_end > 0 and pause >= self._latency_threshold()):
                strength = self._latency_strength(pause, inv)
                out.append(self._marker(ev.t, "withdrawal", "minimal_response", strength, self._last_therapist_end,
                                        ev.start, f"no answer for {pause:.1f} s after {inv.phrase}", "timing"))
            self._last_speaker = "therapist"
        elif ev.speaker == "patient":
            if self._turn is None:
                self._turn = _Turn(onset=ev.start)
            self._last_speaker = "patient"
        return out

    def _latency_strength(self, gap_s: float, inv: Invitation | None, thr: float | None = None) -> float:
        thr = thr if thr is not None else self._latency_threshold()
        strength = min(1.0, 0.5 + 0.5 * (gap_s - thr) / thr)
        if inv is None or not inv.question:
            strength *= self.s.statement_factor
        return strength

    def _gap(self, gap: Gap) -> list[Marker]:
        if gap.to_speaker != "patient" or gap.from_speaker != "therapist":
            return []
        turn = self._turn
        if turn is None or abs(turn.onset - gap.end) > 0.5:
            turn = self._turn = _Turn(onset=gap.end)
        turn.gap_s = gap.duration_s
        turn.latency_threshold_s = self._latency_threshold()  # before this gap joins the baseline
        turn.latency_long = gap.duration_s >= turn.latency_threshold_s
        self.latency_s.add(gap.duration_s)
        return []

    def _emit_latency(self, turn: _Turn, t: float) -> list[Marker]:
        if not turn.latency_long or turn.latency_emitted or turn.gap_s is None:
            return []
        turn.latency_emitted = True
        # what the reply followed, asked now: the therapist's words are transcribed by now
        inv = self.therapist.invitation_before(turn.onset)
        after = inv.phrase if inv is not None else "your last words"
        strength = self._latency_strength(turn.gap_s, inv, turn.latency_threshold_s)
        return [self._marker(t, "withdrawal", "minimal_response", strength, turn.onset - turn.gap_s,
                             turn.onset, f"{turn.gap_s:.1f} s silence after {after}", "timing")]

    def _prosody(self, ev: Prosody) -> list[Marker]:
        turn = self._turn
        if turn is None or not ev.speaking or ev.intensity_db is None:
            return []
        turn.power += 10.0 ** (ev.intensity_db / 10.0)
        turn.frames += 1
        if ev.f0_hz:
            turn.f0.append(ev.f0_hz)
        if turn.voice is None and turn.frames * self.frame_s >= self.s.voice_min_speech_s - 1e-9:
            level = 10.0 * math.log10(turn.power / turn.frames)
            f0 = sorted(turn.f0)[len(turn.f0) // 2] if turn.f0 else None
            out = self._judge_voice(turn, ev.t, self.onset_voice, level, f0)
            self.onset_voice.add(level, f0)
            return out
        return []

    def _judge_voice(self, turn: _Turn, t: float, baseline: VoiceBaseline, level_db: float,
                     f0_hz: float | None) -> list[Marker]:
        diff = baseline.compare(level_db, f0_hz)
        if diff is None:
            return []
        delta, st = diff
        turn.voice_drop_db = -delta
        drop_db, rise_db = baseline.thresholds()
        turn.drop_threshold_db = drop_db
        if -delta >= drop_db:
            turn.voice = "lowered"
            out = self._emit_latency(turn, t)
            out.append(self._marker(t, "withdrawal", "lowered_voice", 0.3 + 0.08 * -delta, turn.onset, t,
                                    f"patient's voice {-delta:.0f} dB quieter than usual", "prosody"))
            return out
        if delta >= rise_db or (st >= self.s.pitch_rise_st and delta >= rise_db / 2):
            turn.voice = "raised"
            pitch = f" and {st:.0f} semitones higher" if st >= self.s.pitch_rise_st / 2 else ""
            strength = 0.3 + 0.1 * max(0.0, delta) + 0.05 * max(0.0, st)
            raised = self._marker(t, "confrontation", "raised_voice", strength, turn.onset, t,
                                  f"patient's voice {delta:.0f} dB louder{pitch} than usual", "prosody")
            if not self.words:
                return [raised]
            self._voices.hold(raised)
            return []
        turn.voice = "usual"
        return []

    def _speech(self, seg: Speech) -> list[Marker]:
        out: list[Marker] = []
        self._talk.add(seg.speaker, seg.start, seg.end)
        if seg.speaker == "therapist":
            self._last_therapist_end = max(self._last_therapist_end, seg.end)
            return out
        if seg.speaker != "patient":
            return out
        self._last_patient_end = max(self._last_patient_end, seg.end)
        turn = self._turn
        if turn is not None and seg.intensity_db is not None:
            turn.seg_db.append(seg.intensity_db)
            if turn.voice in (None, "usual") and seg.end - seg.start >= self.s.voice_min_speech_s:
                before = turn.voice
                turn.voice = None
                out += self._judge_voice(turn, seg.t, self.segment_voice, seg.intensity_db, seg.f0_hz)
                if turn.voice is None:
                    turn.voice = before
        if seg.end - seg.start >= 0.3:
            self.segment_voice.add(seg.intensity_db, seg.f0_hz)
        return out

    def _transcript(self, tr: Transcript) -> list[Marker]:
        hits = [h for h in self.lexicon.match(tr.text, speaker="patient", words=tr.words)
                if h.marker != "minimal_response"]  # that one only for short replies, below
        out = lexical_markers(tr, hits, speaker="patient", once=self._once)
        self._voices.said(out)  # an interim transcript's words back a raised voice its final one releases
        turn = self._turn
        if turn is None or turn.onset > tr.end:
            turn = self._last_turn
        if (tr.final and turn is not None and turn.voice == "usual" and not out
                and len(normalize(tr.text)[0]) > self.s.minimal_words):
            self.engaged.append(tr.t)  # a full reply in the usual voice, no rupture words
        if not tr.final or turn is None or turn.transcribed:
            return out
        turn.transcribed = True
        tokens, _ = normalize(tr.text)
        turn.words = len(tokens)
        turn.words_per_s = tr.words_per_s
        if tr.words_per_s is not None and len(tokens) >= 4:
            self.rate_wps.add(tr.words_per_s)
        if 0 < len(tokens) <= self.s.minimal_words:
            out += self._emit_latency(turn, tr.t)
            inv = self.therapist.invitation_before(turn.onset)
            if inv is not None and inv.open:
                minimal = self.lexicon.match(tr.text, speaker="patient")
                stock = any(h.marker == "minimal_response" for h in minimal)
                entry = self.lexicon.entry("patient", "minimal_response")
                strength = 0.5 + (0.5 * (entry.strength if entry else 0.5) if stock else 0.0)
                out.append(self._marker(tr.t, "withdrawal", "minimal_response", strength, tr.start, tr.end,
                                        f"short answer {quoted(tr.text, 40)} to {inv.phrase}", "lexical"))
        return out

    def _close_turn(self, t: float) -> list[Marker]:
        """The therapist speaks again: the patient's reply is over; judge the trend (and a raised
        voice of the reply whose words are all heard counts now)."""
        turn, self._turn = self._turn, None
        if turn is not None:
            self._last_turn = turn
        voices = self._voices.turn_over(t, "patient", self._last_patient_end)
        if turn is None or turn.frames == 0:
            return voices
        usual_rate = self.rate_wps.value
        drop = turn.voice_drop_db
        ratio = turn.words_per_s / usual_rate if turn.words_per_s and usual_rate else None
        thr = turn.drop_threshold_db if turn.drop_threshold_db is not None else self.s.voice_drop_db
        self._trend.append((drop, ratio, thr))
        streak = 0
        for d, r, need_db in reversed(self._trend):
            slower = r is not None and r <= self.s.rate_drop_ratio
            if d >= need_db / 2 and (slower or d >= need_db):
                streak += 1
            else:
                break
        if streak < 2:
            return voices
        mean_drop = sum(d for d, _, _ in list(self._trend)[-streak:]) / streak
        slower = " and slower" if any(r is not None and r <= self.s.rate_drop_ratio
                                      for _, r, _ in list(self._trend)[-streak:]) else ""
        return [*voices, self._marker(t, "withdrawal", "lowered_voice", 0.3 + 0.15 * streak, turn.onset, t,
                             f"patient quieter ({mean_drop:.0f} dB){slower} than usual for {streak} turns in a row",
                             "prosody")]

    def _overlap(self, ov: Overlap) -> list[Marker]:
        return interruption_marker(ov, speaker="patient", over="therapist", min_s=self.s.interrupt_min_s,
                                   run=self._interruptions, kind="confrontation", marker="interrupting_therapist",
                                   explanation=f"patient talked over you ({ov.duration_s:.1f} s)")

    # -- a raised voice in the context of its words -----------------------------------------------------------

    def voice_in_context(self, tr: Transcript, heard: list[Marker]) -> list[Marker]:
        """The raised voices that a final patient transcript ``tr`` settles (``heard``: every
        marker the transcript gave); see :class:`~session_monitor.rupture.markers.WaitForWords`."""
        return self._voices.release(tr, heard)  # it holds the patient's markers only

    def finish(self, t: float) -> list[Marker]:
        """The session ends: raised voices still waiting count alone."""
        return self._voices.finish(t)

    # -- session-level cues ------------------------------------------------------------------------------------

    def tick(self, t: float) -> list[Marker]:
        return self._voices.unheard(t) + self._talk_share(t)

    def _talk_share(self, t: float) -> list[Marker]:
        """The patient's share of the talk collapsed against its usual, *in shorter replies*.

        The share alone cannot say whose doing it was: the shares of two speakers add up to one,
        so a therapist who takes the floor collapses the patient's share as much as a patient
        who shuts down (and the therapist's own marker, ``therapist_dominance``, says that).
        3RS's minimal response is the patient's replies becoming short; so with
        ``share_reply_ratio`` > 0 the collapse counts only while the patient's speech segments
        in the window average at most that fraction of their usual length.
        """
        if t < self._next_share_check:
            return []
        self._next_share_check = t + 1.0
        lo = t - self.s.share_window_s
        for speaker, a, b in self._talk.evict_before(lo):
            if speaker in self._before:
                self._before[speaker] += b - a
                self._before_n[speaker] += 1
        recent = self._talk.in_window(lo, t, speakers=("patient", "therapist"))
        before_total = sum(self._before.values())
        recent_total = sum(recent.values())
        if lo < self.s.share_min_history_s or before_total <= 0 or recent_total < 0.3 * self.s.share_window_s:
            return []
        usual = self._before["patient"] / before_total
        now = recent["patient"] / recent_total
        if usual <= 0 or now >= self.s.share_drop_ratio * usual or t - self._last_share_emit < self.s.repeat_s:
            return []
        shorter = ""
        if self.s.share_reply_ratio > 0:
            lengths = self._talk.lengths("patient", lo)
            usual_len = self._before["patient"] / max(1, self._before_n["patient"])
            reply = sum(lengths) / len(lengths) if lengths else 0.0
            if reply > self.s.share_reply_ratio * usual_len:
                return []
            shorter = f", in replies {reply:.1f} s long (usually {usual_len:.1f} s)" if lengths else ", not replying"
        self._last_share_emit = t
        strength = min(1.0, 0.5 + (1 - now / (self.s.share_drop_ratio * usual)) * 0.5)
        return [self._marker(t, "withdrawal", "minimal_response", strength, lo, t,
                             f"patient spoke {now:.0%} of the last {self.s.share_window_s:.0f} s "
                             f"(usually {usual:.0%}){shorter}", "turn_taking")]
