"""Terminal view (rich): levels, current silence, the rupture likelihood and why, the running
MI figures, last transcript lines, health.

Subscribes to the event bus and only updates its state there (cheap, on the
pipeline thread); rich redraws at 4 Hz on its own thread. At ``--speed max`` a
progress bar shows the real-time factor. Without a terminal it stays silent.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from session_monitor.dashboard.feed import shown_evidence
from session_monitor.events import Event, Health, MiFigures, Prosody, Signal, Speech, SpeechOnset, Transcript
from session_monitor.mi_text import mi_line

__all__ = ["TerminalView"]


def _bar(db: float, width: int = 20) -> str:
    """A level meter from -70 to -10 dBFS."""
    filled = int(max(0.0, min(1.0, (db + 70.0) / 60.0)) * width)
    return "█" * filled + "·" * (width - filled)


class TerminalView:
    """Live terminal display of one session.

    Parameters
    ----------
    console : where to draw (stderr by default, so stdout stays for data)
    total_s : session length for the progress bar (replay), or None (live)
    title : headline, e.g. the file replayed
    min_marker_strength : evidence weaker than this is not shown as "why"
        (``display.min_marker_strength``, as on the dashboard)
    """

    def __init__(self, *, console: Console | None = None, total_s: float | None = None, title: str = "",
                 min_marker_strength: float = 0.0) -> None:
        self.console = console or Console(stderr=True)
        self.enabled = self.console.is_terminal
        self.title = title
        self.total_s = total_s
        self.now = 0.0
        self.levels: dict[str, float] = {}
        self.speaking: dict[str, bool] = {}
        self.last_end: float | None = None
        self.lines: deque[str] = deque(maxlen=4)  # one row each: the view must fit a small terminal
        self._last_key: tuple[str, float] | None = None
        self.health: Health | None = None
        self.input_problems: dict[tuple[str, int | None], Health] = {}  # open, until cleared
        self.signal: Signal | None = None
        self.figures: MiFigures | None = None
        self.min_marker_strength = min_marker_strength
        self.rtf = 0.0
        self._progress = None
        self._task = None
        if total_s:
            self._progress = Progress(
                TextColumn("replay"), BarColumn(), TextColumn("{task.fields[clock]}"),
                TextColumn("{task.fields[rtf]}"), TimeRemainingColumn(), console=self.console,
            )
            self._task = self._progress.add_task("replay", total=total_s, clock="", rtf="")
        self._live: Live | None = None

    # -- bus side ---------------------------------------------------------------------------------

    def __call__(self, event: Event) -> None:
        self.now = max(self.now, event.t)
        if isinstance(event, Prosody):
            self.levels[event.speaker] = event.intensity_db
        elif isinstance(event, SpeechOnset):
            self.speaking[event.speaker] = True
        elif isinstance(event, Speech):
            self.speaking[event.speaker] = False
            self.last_end = max(self.last_end or 0.0, event.end)
        elif isinstance(event, Transcript):
            line = f"[{event.start:7.1f}s] {event.speaker}: {event.text or '(words not kept)'}"
            key = (event.speaker, round(event.start, 2))
            if self._last_key == key and self.lines:  # the final pass replaces its interim line
                self.lines[-1] = line
            else:
                self.lines.append(line)
            self._last_key = key
        elif isinstance(event, Health) and event.problem:
            self._input_problem(event)
        elif isinstance(event, Health):
            self.health = event
        elif isinstance(event, Signal):
            self.signal = event
        elif isinstance(event, MiFigures):
            self.figures = event

    def _input_problem(self, event: Health) -> None:
        """An input problem is kept on the view until it clears; without a live view
        (output not a terminal) it is printed once, as one line, when it starts."""
        key = (event.problem, event.channel)
        if event.cleared:
            self.input_problems.pop(key, None)
            return
        if key not in self.input_problems and not self.enabled:
            self.console.print(f"session-monitor: input at {event.t:.1f} s: {event.hint}", highlight=False,
                               soft_wrap=True)
        self.input_problems[key] = event

    def progress(self, audio_s: float, stats: Any) -> None:
        self.rtf = stats.rtf
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=audio_s, clock=f"{audio_s:7.1f}s",
                                  rtf=f"{stats.rtf:5.1f}x real time")

    # -- drawing --------------------------------------------------------------------------------------

    def silence_s(self) -> float | None:
        if any(self.speaking.values()) or self.last_end is None:
            return None
        return max(0.0, self.now - self.last_end)

    def why(self) -> str:
        """The strongest evidence of the latest signal that the display shows, and how many more."""
        items = shown_evidence(self.signal.evidence if self.signal else (), self.min_marker_strength)
        if not items:
            return ""
        more = f"  (+{len(items) - 1} more)" if len(items) > 1 else ""
        return f"{items[0]['explanation']} [{items[0]['kind']}]{more}"

    def __rich__(self) -> Group:
        table = Table.grid(padding=(0, 2))
        table.add_column(justify="right")
        table.add_column()
        for speaker in sorted(self.levels):
            talking = "speaking" if self.speaking.get(speaker) else ""
            table.add_row(speaker, f"{_bar(self.levels[speaker])} {self.levels[speaker]:6.1f} dBFS {talking}")
        silence = self.silence_s()
        table.add_row("silence", f"{silence:4.1f} s" if silence is not None else "-")
        if self.signal is not None:
            s = self.signal
            table.add_row("rupture", f"{s.likelihood:4.2f}  (withdrawal {s.withdrawal:4.2f}, "
                                     f"confrontation {s.confrontation:4.2f})")
            why = self.why()
            if why:
                table.add_row("why", Text(why, no_wrap=True, overflow="ellipsis"))
        if self.figures is not None:
            table.add_row("MI", mi_line(dataclasses.asdict(self.figures)))  # wraps on a narrow terminal
        h = self.health
        if h is not None:
            lag = f"{h.asr_lag_s:4.1f} s" if h.asr_lag_s is not None else "-"
            state = "ok" if h.audio_ok else "AUDIO LOST"
            table.add_row("health", f"audio {state}  overflows {h.overflows}  ASR queue {h.asr_queue}  "
                                    f"lag {lag}  skipped {h.asr_skipped}  errors {h.asr_errors}")
            if h.message:
                table.add_row("", h.message)
        for p in self.input_problems.values():
            table.add_row("input", Text(p.hint, style="" if p.problem == "dual_mono" else "bold yellow"))
        transcript = Text("\n".join(self.lines) or "(no transcript yet)", no_wrap=True, overflow="ellipsis")
        parts: list[Any] = [Panel(table, title=f"session-monitor  {self.title}  t={self.now:7.1f}s"),
                            Panel(transcript, title="transcript")]
        if self._progress is not None:
            parts.append(self._progress)
        return Group(*parts)

    def __enter__(self) -> "TerminalView":
        if self.enabled:
            self._live = Live(self, console=self.console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None
