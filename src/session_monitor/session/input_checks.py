"""What the pipeline checks on the input before its stages: health, bleed, dual mono.

* every block goes to :class:`~session_monitor.audio.input_health.InputHealth`; each
  problem it starts or clears becomes one ``health`` event with a hint;
* two-channel input: the first seconds are held back until
  :class:`~session_monitor.speech.bleed.DualMonoDetector` has decided whether both
  channels carry one signal; if they do, the session is analysed as one microphone
  (the mean of the two) with speaker attribution, and a ``dual_mono`` health event
  says so once;
* otherwise, per block, :class:`~session_monitor.speech.bleed.BleedDetector` says for
  each 32 ms chunk which channel carries its own speaker; the speech activity of a
  channel ignores chunks that are the other microphone's bleed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from session_monitor.audio.frames import SAMPLE_RATE
from session_monitor.audio.input_health import InputHealth
from session_monitor.events import Health
from session_monitor.settings.sections import Settings
from session_monitor.speech.bleed import BleedDetector, DualMonoDetector, DualMonoVerdict

__all__ = ["InputChecks"]

logger = logging.getLogger(__name__)

#: Longest the start of a session is held back for the dual-mono verdict, in multiples of
#: ``bleed.dual_mono_window_s`` (a channel silent at the start gives no chunk to compare).
_MAX_HOLD = 4
#: Input problems listed in session.json at most (each starts and clears; a few per session).
_MAX_SEEN = 100


class InputChecks:
    """Input health, bleed and dual mono for one session.

    Parameters
    ----------
    settings : Settings
        Its ``input_health`` and ``bleed`` sections are used.
    roles : speaker of each input channel, in order (named in the hints)
    dual_mono : whether the two channels may be one signal saved twice (one recording, one
        device); two devices are two signals, so their start is not held for the verdict
    """

    def __init__(self, settings: Settings, roles: Sequence[str], *, dual_mono: bool = True) -> None:
        self.roles = list(roles)
        channels = len(self.roles)
        names = tuple(r if r in ("therapist", "patient") else f"channel {c + 1}" for c, r in enumerate(self.roles))
        self.health = InputHealth(settings.input_health, channels=channels, names=names)
        two = channels == 2
        self.bleed = (BleedDetector(settings.bleed, speech=settings.speech_activity)
                      if two and settings.bleed.enabled else None)
        self.dual = DualMonoDetector(settings.bleed) if two and dual_mono and settings.bleed.enabled else None
        self._hold_s = _MAX_HOLD * settings.bleed.dual_mono_window_s
        self.verdict: DualMonoVerdict | None = None
        self._said_dual_mono = False
        self.seen: list[dict[str, Any]] = []  # every problem that started, for session.json

    @property
    def dual_mono(self) -> bool:
        return self.verdict is not None and self.verdict.dual_mono

    def hold(self, blocks: Iterator[np.ndarray], *, stop: threading.Event | None = None) -> list[np.ndarray]:
        """Two channels: read ``blocks`` until the dual-mono verdict; return the blocks read.

        The caller processes them first, then the rest of ``blocks``. One channel: nothing is
        read. At most ``4 * dual_mono_window_s`` of audio is held, less if ``stop`` is set
        (the verdict is then taken on what was read).
        """
        if self.dual is None:
            return []
        held: list[np.ndarray] = []
        n = 0
        for block in blocks:
            held.append(block)
            n += block.shape[1]
            if self.dual.process(block) is not None or n >= self._hold_s * SAMPLE_RATE:
                break
            if stop is not None and stop.is_set():
                break
        self.verdict = self.dual.finish()
        return held

    def ownership(self, block: np.ndarray) -> np.ndarray | None:
        """Per channel and 32 ms chunk of ``block``: True where the channel carries its own
        speaker (shape ``(2, n)``); None when every chunk is its own (one channel, dual mono,
        bleed detection off)."""
        if self.bleed is None or self.dual_mono:
            return None
        return self.bleed.process(block).own

    def process(self, block: np.ndarray, t: float, *,
                channel_ok: tuple[bool, ...] | None = None) -> tuple[np.ndarray | None, list[Health]]:
        """One block (shape ``(channels, n)``) ending at session time ``t``: the bleed
        ownership of its chunks (see :meth:`ownership`) and its health events (see
        :meth:`health_events`), the chunk levels computed once for both."""
        if self.bleed is None or self.dual_mono:
            return None, self.health_events(block, t, channel_ok=channel_ok)
        decided = self.bleed.process(block)
        return decided.own, self.health_events(block, t, levels_db=decided.level_db, channel_ok=channel_ok)

    def health_events(self, block: np.ndarray, t: float, *, levels_db: np.ndarray | None = None,
                      channel_ok: tuple[bool, ...] | None = None) -> list[Health]:
        """The input problems ``block`` started or cleared, as health events at ``t`` (the
        block's end, so they keep the stream's order); with, once, the dual-mono verdict.

        ``channel_ok`` is the source's per-channel state (:attr:`AudioSource.channel_ok`):
        each event says whether its channel's device delivers (``audio_ok``), as every
        health event does; the whole input's is ok only when every channel is."""
        ok = tuple(channel_ok) if channel_ok is not None else (True,) * len(self.roles)
        out = []
        if self.dual_mono and not self._said_dual_mono and t >= self.verdict.decided_at_s:
            self._said_dual_mono = True
            out.append(Health(t=t, problem="dual_mono", hint=self.verdict.hint, audio_ok=all(ok)))
        for p in self.health.process(block, levels_db=levels_db):
            if not p.cleared and len(self.seen) < _MAX_SEEN:
                self.seen.append({"t": round(p.t, 3), "channel": p.channel, "problem": p.problem})
            out.append(Health(t=t, problem=p.problem, channel=p.channel, speaker=self.roles[p.channel],
                              hint=p.hint, cleared=p.cleared,
                              audio_ok=ok[p.channel] if p.channel is not None and p.channel < len(ok) else all(ok)))
        return out

    def summary(self) -> dict[str, Any]:
        """What ``session.json`` says about the input: dual mono, share of bleed per channel."""
        out: dict[str, Any] = {"channels": len(self.roles)}
        if self.verdict is not None:
            out["dual_mono"] = self.verdict.dual_mono
            out["dual_mono_share"] = round(self.verdict.share, 3)
        if self.bleed is not None and self.bleed.chunks:
            out["bleed_share"] = [round(float(b) / self.bleed.chunks, 3) for b in self.bleed.bleed_chunks]
        out["problems"] = list(self.seen)
        return out
