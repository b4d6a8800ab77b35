"""Synthetic conversations for the rupture model's tests: events with known answers.

A :class:`Conversation` lays out turns on a session clock and produces the events
the pipeline would (onset, gap, 10 Hz prosody, speech segment, transcript), so a
test states "the patient answered 3.8 s late, 8 dB quieter" and checks the markers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from session_monitor.events import Event, Gap, Overlap, Prosody, Speech, SpeechOnset, Transcript, Word
from session_monitor.rupture.model import RuptureModel, run_on_events
from session_monitor.settings.loader import load_settings


@dataclass
class Conversation:
    """Turns in order; ``events`` sorted by the time each became known."""

    t: float = 1.0
    last: str | None = None
    events: list[Event] = field(default_factory=list)

    def turn(self, speaker: str, text: str, *, gap_s: float = 0.5, level_db: float = -30.0,
             f0_hz: float | None = None, duration_s: float | None = None, rising: bool = False,
             interrupt_s: float = 0.0) -> tuple[float, float]:
        """Add one turn; returns its (start, end). ``interrupt_s`` > 0 starts it that long before
        the previous turn ended (an overlap onto the other speaker)."""
        words = text.split()
        dur = duration_s if duration_s is not None else max(0.6, len(words) / 3.0)
        f0 = f0_hz if f0_hz is not None else (200.0 if speaker == "therapist" else 110.0)
        start = self.t - interrupt_s if interrupt_s > 0 else self.t + gap_s
        end = start + dur
        ev: list[Event] = [SpeechOnset(t=start + 0.1, speaker=speaker, start=start)]
        if interrupt_s <= 0 and self.last is not None and self.last != speaker:
            ev.append(Gap(t=start + 0.1, from_speaker=self.last, to_speaker=speaker, start=self.t, end=start,
                          duration_s=start - self.t))
        n = round(dur * 10)
        for k in range(1, n + 1):
            ft = round(start + k * 0.1, 4)
            f = f0 * (1.25 if rising and ft > end - 0.4 else 1.0)
            ev.append(Prosody(t=ft, speaker=speaker, intensity_db=level_db, intensity_z=0.0, f0_semitones=0.0,
                              f0_hz=f, speaking=True))
        ev.append(Speech(t=end + 0.2, speaker=speaker, start=start, end=end, intensity_db=level_db, f0_hz=f0,
                         syllable_rate_hz=4.0))
        if interrupt_s > 0 and self.last is not None:
            ev.append(Overlap(t=end + 0.2, speaker=speaker, over_speaker=self.last, start=start, end=self.t,
                              duration_s=interrupt_s, yielded=True))
        step = dur / max(1, len(words))
        tw = tuple(Word(start + i * step, start + (i + 1) * step, w) for i, w in enumerate(words))
        ev.append(Transcript(t=end + 0.8, speaker=speaker, start=start, end=end, text=text, words=tw, final=True,
                             words_per_s=len(words) / dur))
        self.events.extend(ev)
        self.t, self.last = end, speaker
        return start, end

    def warm_up(self, exchanges: int = 4) -> None:
        """Ordinary exchanges so the patient's baselines exist."""
        for i in range(exchanges):
            self.turn("therapist", "That sounds important to you, and I appreciate you sharing it.")
            self.turn("patient", f"Yes, the week went well and I managed to see friends on day {i} which helped.")

    def sorted_events(self) -> list[Event]:
        return sorted(self.events, key=lambda e: e.t)


def run(conv: Conversation, *, overrides: dict | None = None, tail_s: float = 5.0) -> list[Event]:
    """The rupture model's output over the conversation (ticks at 96 ms, as the pipeline)."""
    model = RuptureModel.from_settings(load_settings(overrides=overrides))
    return run_on_events(model, conv.sorted_events(), end_t=conv.t + tail_s)
