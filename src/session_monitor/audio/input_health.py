"""Input health: is each channel giving usable audio? Problems a person can fix, with a hint.

Watched per channel, on the blocks as they arrive (session clock, from samples):

* **clipping**: at least ``clip_share`` of a second's samples at or above
  ``clip_level`` of full scale: the input gain is too high, the peaks are lost.
* **dead channel**: nothing but digital silence (every 32 ms chunk under ``dead_db``)
  for ``dead_s``: a microphone unplugged, muted or switched off. Cleared as soon as
  there is sound again.
* **too quiet**: after ``quiet_after_s`` of session, the loudest second so far (its
  95th percentile of chunk levels) is still under ``too_quiet_db``: the speech sits
  close to the noise and the 16-bit steps; speech is still found (the energy floor
  follows the noise), but transcripts suffer. Judged on the loudest second, not the
  latest, so a listener's silent channel is not "too quiet".
* **level jump**: the channel's noise floor (5th percentile of ``jump_window_s`` of
  chunk levels) moved by ``jump_db`` or more against the window before it: the
  microphone was knocked, moved, or its cable is failing.

A problem is reported once when it starts and once when it clears (``cleared``, after
``clear_s`` without it), never every second; the session goes on either way.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

import numpy as np

from session_monitor.settings.sections import InputHealthSettings

__all__ = ["InputHealth", "InputProblem", "PROBLEMS"]

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000  # the pipeline's rate (audio/frames.py)
CHUNK = 512  # 32 ms, as the VAD's chunks
_EPS = 1e-10

#: The problems reported, in the order they are checked.
PROBLEMS = ("dead_channel", "clipping", "too_quiet", "level_jump")


@dataclass(frozen=True, slots=True)
class InputProblem:
    """A problem with one input channel that started (or, ``cleared``, ended) at ``t``.

    ``value_db`` is the measure behind it (the level, the jump) in dB, where there is one.
    """

    t: float
    problem: str
    channel: int
    hint: str
    cleared: bool = False
    value_db: float | None = None


class _Channel:
    def __init__(self, settings: InputHealthSettings) -> None:
        per_s = SAMPLE_RATE / CHUNK
        self.levels: deque[float] = deque(maxlen=max(2, int(round(2 * settings.jump_window_s * per_s))))
        self.second: list[float] = []  # chunk levels of the second being filled
        self.clipped = 0
        self.samples = 0
        self.silent_s = 0.0
        self.best_p95_db = -np.inf
        self.clear_s = {p: 0.0 for p in PROBLEMS}
        self.active: dict[str, bool] = {p: False for p in PROBLEMS}
        self.judged = 0  # samples judged, in whole "seconds" of chunks


class InputHealth:
    """Watches every channel of the input for :data:`PROBLEMS`.

    Parameters
    ----------
    settings : InputHealthSettings
    channels : int
        Number of input channels.
    names : sequence of str, optional
        What to call each channel in a hint (its role); "channel N" by default.
    """

    def __init__(self, settings: InputHealthSettings, *, channels: int, names: tuple[str, ...] = ()) -> None:
        self.settings = settings
        self.names = tuple(names) or tuple(f"channel {c + 1}" for c in range(channels))
        self._ch = [_Channel(settings) for _ in range(channels)]
        self._pending = np.zeros((channels, 0), dtype=np.float32)  # samples short of a whole chunk

    def active(self) -> list[tuple[int, str]]:
        """(channel, problem) of every problem now open."""
        return [(c, p) for c, ch in enumerate(self._ch) for p in PROBLEMS if ch.active[p]]

    def process(self, block: np.ndarray, *, levels_db: np.ndarray | None = None) -> list[InputProblem]:
        """Take one block (shape ``(channels, n)``, float32); the problems it started or cleared.

        ``levels_db`` (shape ``(channels, k)``): the levels of the 32 ms chunks this block
        completes, counted from sample 0, when the caller has them already (the bleed
        detector does); computed here otherwise.
        """
        if not self.settings.enabled:
            return []
        out: list[InputProblem] = []
        clipped = np.count_nonzero(np.abs(block) >= self.settings.clip_level, axis=1)
        if levels_db is None:
            buf = np.concatenate([self._pending, block], axis=1) if self._pending.shape[1] else block
            n = buf.shape[1] // CHUNK
            self._pending = buf[:, n * CHUNK :].copy()
            levels = np.zeros((len(self._ch), 0))
            if n:
                chunks = buf[:, : n * CHUNK].reshape(len(self._ch), n, CHUNK).astype(np.float64)
                levels = 10 * np.log10(np.einsum("cnk,cnk->cn", chunks, chunks) / CHUNK + _EPS)
        else:
            levels = levels_db
        per_second = int(round(SAMPLE_RATE / CHUNK))
        for c, ch in enumerate(self._ch):
            ch.clipped += int(clipped[c])
            ch.samples += block.shape[1]
            ch.second.extend(levels[c].tolist())
            while len(ch.second) >= per_second:
                second, ch.second = ch.second[:per_second], ch.second[per_second:]
                self._judge_second(c, ch, np.array(second), out)
        return out

    # -- one second of one channel ----------------------------------------------------------

    def _judge_second(self, c: int, ch: _Channel, levels: np.ndarray, out: list[InputProblem]) -> None:
        s = self.settings
        ch.levels.extend(levels.tolist())
        ch.judged += len(levels) * CHUNK
        t = ch.judged / SAMPLE_RATE
        name = self.names[c]
        # dead: digital silence throughout
        if np.all(levels < s.dead_db):
            ch.silent_s += 1.0
        else:
            ch.silent_s = 0.0
        dead = ch.silent_s >= s.dead_s
        self._set(c, ch, "dead_channel", dead, t, out,
                  f"no signal on {name} for {ch.silent_s:.0f} s: check that its microphone is plugged in, "
                  "switched on and not muted")
        # clipping: share of samples at full scale since the last second judged
        share = ch.clipped / max(ch.samples, 1)
        ch.clipped = ch.samples = 0
        self._set(c, ch, "clipping", share >= s.clip_share, t, out,
                  f"{name} is clipping ({100 * share:.1f} % of samples at full scale): turn its input gain down")
        if dead:
            return
        # too quiet: the loudest second of the session so far
        p95 = float(np.percentile(levels, 95))
        ch.best_p95_db = max(ch.best_p95_db, p95)
        quiet = t >= s.quiet_after_s and ch.best_p95_db < s.too_quiet_db
        self._set(c, ch, "too_quiet", quiet, t, out,
                  f"{name} is very quiet (speech peaks at {ch.best_p95_db:.0f} dBFS): move its microphone closer "
                  f"or raise its input gain (aim above {s.too_quiet_db:.0f} dBFS)", value_db=ch.best_p95_db)
        # level jump: this window's noise floor against the window before it
        half = ch.levels.maxlen // 2
        if len(ch.levels) == ch.levels.maxlen:
            history = np.fromiter(ch.levels, float, len(ch.levels))
            live_before, live_now = history[:half], history[half:]
            live_before = live_before[live_before > s.dead_db]
            live_now = live_now[live_now > s.dead_db]
            if len(live_before) > half // 2 and len(live_now) > half // 2:
                jump = float(np.percentile(live_now, 5) - np.percentile(live_before, 5))
                if abs(jump) >= s.jump_db and not ch.active["level_jump"]:
                    direction = "dropped" if jump < 0 else "rose"
                    self._set(c, ch, "level_jump", True, t, out,
                              f"the level of {name} {direction} by {abs(jump):.0f} dB: its microphone may have "
                              "been knocked, moved or unplugged; check it", value_db=jump)
                    ch.levels.clear()  # judge the new level against itself from here
                    return
        if ch.active["level_jump"]:
            ch.clear_s["level_jump"] += 1.0
            if ch.clear_s["level_jump"] >= s.clear_s:
                self._set(c, ch, "level_jump", False, t, out, f"the level of {name} is steady again")

    def _set(self, c: int, ch: _Channel, problem: str, bad: bool, t: float, out: list[InputProblem],
             hint: str, *, value_db: float | None = None) -> None:
        """Report a problem when it starts; report it cleared after ``clear_s`` without it."""
        if problem == "level_jump":
            if bad:
                ch.active[problem] = True
                ch.clear_s[problem] = 0.0
                out.append(InputProblem(t, problem, c, hint, value_db=value_db))
                logger.warning("input health: %s", hint)
            else:
                ch.active[problem] = False
                out.append(InputProblem(t, problem, c, hint, cleared=True))
            return
        if bad:
            ch.clear_s[problem] = 0.0
            if not ch.active[problem]:
                ch.active[problem] = True
                out.append(InputProblem(t, problem, c, hint, value_db=value_db))
                logger.warning("input health: %s", hint)
            return
        if ch.active[problem]:
            ch.clear_s[problem] += 1.0
            if problem == "dead_channel" or ch.clear_s[problem] >= self.settings.clear_s:
                ch.active[problem] = False
                out.append(InputProblem(t, problem, c, f"{problem.replace('_', ' ')} on {self.names[c]} cleared",
                                        cleared=True))
