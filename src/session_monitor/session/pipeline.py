"""The pipeline: blocks of audio in, one ordered event stream out.

For every block, per speaker channel: speech activity, then prosody (which takes
the VAD's state); finished speech segments get their prosodic summary; closed
utterances go to the transcription worker. Turn-taking runs across channels.
Analyzers (the rupture model) see every event in order and may add their own.

Everything is ordered by session time through an *outbox* (:mod:`~session_monitor.session.outbox`).
Live, a transcript enters the stream when the worker returns it (``t`` = the session time then). On a
``--speed max`` replay the stream is made deterministic: each utterance holds a
place at the time it closed, and events after it wait until its transcript is in
(the pipeline runs ahead by at most ``transcriber.max_lookahead_s`` of audio), so
the same file and config give the same events.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from session_monitor.audio.frames import SAMPLE_RATE, Frame
from session_monitor.audio.read_ahead import read_ahead
from session_monitor.audio.source import AudioSource
from session_monitor.events import Event, Health, SessionEvent, Speech, Transcript
from session_monitor.prosody.tracker import ProsodyTracker
from session_monitor.prosody.tracker import warm_up as warm_up_prosody
from session_monitor.session.bus import EventBus
from session_monitor.session.input_checks import InputChecks
from session_monitor.session.outbox import TICK, Outbox, OutboxItem
from session_monitor.session.stages import Analyzer, RunStats
from session_monitor.session.transcript_feed import TranscriptFeed, TranscriptSlot, to_transcript
from session_monitor.settings import ProsodySettings, Settings, SpeechActivitySettings, TranscriberSettings
from session_monitor.speakers.attribution import MonoAttribution, RoleProsody
from session_monitor.speakers.stage import attribution_for
from session_monitor.speech.activity import SpeechActivity, UtteranceReady
from session_monitor.speech.call_echo import CallEchoDetector
from session_monitor.speech.transcriber import TranscriptionResult, TranscriptionWorker
from session_monitor.speech.turns import TurnTracker

__all__ = ["Pipeline"]

logger = logging.getLogger(__name__)


#: Audio read ahead and scored by the VAD at once on a --speed max replay (samples).
_SCORE_AHEAD = 4 * SAMPLE_RATE


class Pipeline:
    """Runs one session from ``source`` and publishes its events on ``bus``.

    Parameters
    ----------
    source : AudioSource
    bus : EventBus
    roles : speaker of each source channel, in order
    speech_activity, prosody, transcriber : the settings sections of those stages
    attribution : the speaker attribution of a mono input (``build_attribution``), else None
    input_checks : input health, bleed and dual mono (``InputChecks``); None checks nothing
    dual_mono_attribution : the attribution used if two channels turn out to carry one signal
    call_echo : for a telehealth input (microphone, call audio): the echo of the therapist's voice
        in the call audio is turned down before the speech stages (speech/call_echo.py)
    worker : transcription worker, or None for prosody only
    analyzers : stages over the event stream
    deterministic : order transcripts by utterance close time (``--speed max``)
    """

    def __init__(
        self,
        source: AudioSource,
        bus: EventBus,
        *,
        roles: Sequence[str],
        speech_activity: SpeechActivitySettings,
        prosody: ProsodySettings,
        transcriber: TranscriberSettings,
        attribution: MonoAttribution | None = None,
        input_checks: InputChecks | None = None,
        dual_mono_attribution: MonoAttribution | None = None,
        call_echo: CallEchoDetector | None = None,
        worker: TranscriptionWorker | None = None,
        analyzers: Sequence[Analyzer] = (),
        deterministic: bool = False,
        health_every_s: float = 1.0,
        on_progress: Callable[[float, RunStats], None] | None = None,
        audio_sink: Callable[[np.ndarray], None] | None = None,
    ) -> None:
        self.source = source
        self.bus = bus
        self.roles = list(roles)
        self.worker = worker
        self.analyzers = list(analyzers)
        self.deterministic = deterministic
        self.health_every_s = health_every_s
        self.on_progress = on_progress
        self.audio_sink = audio_sink
        self.checks = input_checks
        self._dual_mono_attribution = dual_mono_attribution
        self._sections = (speech_activity, prosody, transcriber)
        self._downmix = False  # dual mono: both channels analysed as one microphone
        self.call_echo = call_echo
        self.vads = [SpeechActivity(speech_activity, channel=c, speaker=r) for c, r in enumerate(self.roles)]
        self.prosody = [ProsodyTracker(prosody, speaker=r) for r in self.roles]
        # speaker attribution (mono input labelled "unknown"): relabels the VAD's events and
        # routes the channel's prosody to one tracker per role (see speakers/attribution.py)
        self.attribution = attribution
        if attribution is not None:
            self.prosody[0] = RoleProsody(prosody, attribution)
        self.turns = TurnTracker(talk_window_s=prosody.talk_window_s)
        self._keep_s = speech_activity.max_utterance_s + 5.0 + transcriber.pad_ms / 1000
        self.feed = TranscriptFeed(worker, transcriber, roles=self.roles, deterministic=deterministic,
                                   keep_s=self._keep_s)
        self._next_health = 0.0
        self._inbox: list[Event] = []  # events from other threads (dashboard annotations)
        self._inbox_lock = threading.Lock()
        self.position = 0  # samples processed per channel
        self._audio_ok = True
        self._channel_ok = (True,) * len(self.roles)
        self._lost_since: float | None = None
        self.stats = RunStats()
        self._outbox = Outbox(bus, self.analyzers, self.stats)

    @classmethod
    def from_settings(cls, settings: Settings, source: AudioSource, bus: EventBus, *, roles: Sequence[str],
                      **kwargs: Any) -> Pipeline:
        """A pipeline with the sections of ``settings``, the attribution its roles need and the
        input checks (with the attribution a dual-mono stereo input would need)."""
        roles = list(roles)
        mono = attribution_for(settings, ["unknown"]) if len(roles) == 2 else None
        return cls(source, bus, roles=roles, speech_activity=settings.speech_activity, prosody=settings.prosody,
                   transcriber=settings.transcriber, attribution=attribution_for(settings, roles),
                   input_checks=InputChecks(settings, roles), dual_mono_attribution=mono, **kwargs)

    # -- other threads ----------------------------------------------------------------------------

    def inject(self, make_event: Callable[[float], Event]) -> None:
        """Queue an event built at the current session time (thread-safe)."""
        with self._inbox_lock:
            self._inbox.append(make_event(self.position / SAMPLE_RATE))

    def drain_inbox(self) -> list[Event]:
        """Injected events that arrived after the last block (thread-safe)."""
        with self._inbox_lock:
            events, self._inbox = self._inbox, []
        return events

    @property
    def now_s(self) -> float:
        return self.position / SAMPLE_RATE

    # -- run ------------------------------------------------------------------------------------------

    @staticmethod
    def warm_up(prosody: ProsodySettings | None = None) -> None:
        """The pitch tracker (librosa's numba compilation, if chosen), before any audio flows."""
        warm_up_prosody(prosody.pitch if prosody is not None else "yin")

    def run(self, stop: threading.Event | None = None) -> RunStats:
        """Process the whole source (or until ``stop`` is set); returns run statistics."""
        wall0 = time.perf_counter()
        source_blocks: Iterator[np.ndarray] = iter(self.source.blocks())
        held: list[np.ndarray] = []
        if self.checks is not None:
            try:  # two channels: the first seconds are held back for the dual-mono verdict
                held = self.checks.hold(source_blocks, stop=stop)
            except KeyboardInterrupt:  # Ctrl-C that early: the session still starts and ends cleanly
                stop = threading.Event()
                stop.set()
            if self.checks.dual_mono:
                self._as_mono()
        self._push(0.0, SessionEvent(t=0.0, state="started", source=self.source.name, sample_rate=SAMPLE_RATE,
                                     channels=self.source.channels, roles=tuple(self.roles)))
        self._flush(final=False)
        interrupted = False
        blocks: Iterator[np.ndarray] = itertools.chain(held, source_blocks)
        if self.deterministic:
            blocks = read_ahead(blocks, self._prime, group_samples=_SCORE_AHEAD)
        try:
            for block in blocks:
                self._process_block(block)
                self._flush(final=False)
                self.stats.audio_s = self.now_s
                self.stats.wall_s = time.perf_counter() - wall0
                if self.on_progress is not None:
                    self.on_progress(self.now_s, self.stats)
                if stop is not None and stop.is_set():
                    interrupted = True
                    break
        except KeyboardInterrupt:
            interrupted = True
        finally:
            for it in (blocks, source_blocks):
                if isinstance(it, Generator):
                    it.close()  # a --speed max replay's reader thread stops here, then the source
            self._finish(complete=not interrupted)
            self.stats.wall_s = time.perf_counter() - wall0
            self.stats.completed = not interrupted
        return self.stats

    def _as_mono(self) -> None:
        """Dual mono: one microphone (the mean of both channels) with speaker attribution."""
        speech_activity, prosody, transcriber = self._sections
        logger.info("dual-mono input: analysed as one microphone")
        self.roles = ["unknown"]
        self._downmix = True
        self.vads = [SpeechActivity(speech_activity, channel=0, speaker="unknown")]
        self.attribution = self._dual_mono_attribution
        self.prosody = [ProsodyTracker(prosody, speaker="unknown") if self.attribution is None
                        else RoleProsody(prosody, self.attribution)]
        self.feed = TranscriptFeed(self.worker, transcriber, roles=self.roles, deterministic=self.deterministic,
                                   keep_s=self._keep_s)

    def _prime(self, blocks: list[np.ndarray]) -> None:
        """Score every channel's VAD over blocks read ahead (on the reader thread)."""
        audio = np.concatenate(blocks, axis=1)
        if self._downmix:
            audio = audio.mean(axis=0, keepdims=True)
        for c, vad in enumerate(self.vads):
            vad.prime(audio[c])

    def _finish(self, *, complete: bool) -> None:
        t = self.now_s
        if self.checks is not None:
            self.stats.input = self.checks.summary()
        out: list[Any] = []
        for c in range(len(self.roles)):
            flushed = self.vads[c].flush()
            out.extend(self.attribution.process(None, flushed) if self.attribution is not None else flushed)
        self._handle_stage_output(out, t)
        self._push_results(self.feed.finish(), t)
        self._push(t, TICK)
        self._flush(final=True)
        for analyzer in self.analyzers:
            self._outbox.publish_all(analyzer.finish(t))
        self._outbox.publish(SessionEvent(t=t, state="ended", source=self.source.name, sample_rate=SAMPLE_RATE,
                                   channels=self.source.channels, roles=tuple(self.roles), complete=complete))

    # -- one block ---------------------------------------------------------------------------------------

    def _process_block(self, block: np.ndarray) -> None:
        start = self.position
        n = block.shape[1]
        if self.audio_sink is not None:
            self.audio_sink(block)  # what was captured, echo and all
        if self.call_echo is not None:
            block = self.call_echo.gate(block)
        own = None  # two channels: where each carries its own speaker (not the other's bleed)
        if self.checks is not None:
            own, health = self.checks.process(block, (start + n) / SAMPLE_RATE, channel_ok=self.source.channel_ok)
            for ev in health:
                self._push(ev.t, ev)
        if self._downmix:
            block = block.mean(axis=0, keepdims=True)
        out: list[Any] = []
        for c in range(len(self.roles)):
            samples = block[c]
            frame = Frame(start, c, samples)
            self.feed.rings[c].append(samples)
            vad_out = self.vads[c].process(frame, own=None if own is None else own[c])
            if self.attribution is not None:  # mono: who is speaking
                vad_out = self.attribution.process(frame, vad_out)
            for ev in self.prosody[c].process(frame, speaking=self.vads[c].speaking):
                self._push(ev.t, ev)
            out.extend(vad_out)
        self.position = start + n
        t = self.position / SAMPLE_RATE
        self._watch_audio(start / SAMPLE_RATE)
        if self.worker is not None and self.worker.ensure_running():
            self._next_health = 0.0
        self._handle_stage_output(out, t)
        self._push_all(self.feed.interim(self.vads, t))
        self.feed.send_stale(t)
        self._push_results(self.feed.collect(), t)
        for ev in self.drain_inbox():
            self._push(ev.t, ev)
        for ev in self.turns.tick(t):
            self._push(ev.t, ev)
        if t >= self._next_health:
            self._next_health = t + self.health_every_s
            self._push(t, self._health(t))
        self._push(t, TICK)

    def _watch_audio(self, t: float) -> None:
        """Health at once when capture is lost or back; no response gap spans lost audio.

        One device of two lost or back: a health event naming that channel and its speaker.
        """
        channels = tuple(self.source.channel_ok)
        if channels != self._channel_ok and (len(set(channels)) > 1 or len(set(self._channel_ok)) > 1):
            for c, (now_ok, was_ok) in enumerate(zip(channels, self._channel_ok)):
                if now_ok != was_ok:
                    self._push(t, self._health(t, channel=c))
        self._channel_ok = channels
        ok = self.source.audio_ok
        if ok == self._audio_ok:
            return
        self._audio_ok = ok
        if len(set(channels)) == 1:
            self._next_health = 0.0
        if not ok:
            self._lost_since = t
        elif self._lost_since is not None:
            self.turns.audio_lost(self._lost_since, t)
            self._lost_since = None

    def _handle_stage_output(self, items: list[Any], t: float) -> None:
        items.sort(key=lambda e: e.t)
        for item in items:
            if isinstance(item, UtteranceReady):
                self._push_all(self.feed.submit(item.channel, item.start_sample, item.end_sample, final=True,
                                                t=item.t, speaker=item.speaker))
                continue
            if isinstance(item, Speech):
                # an attributed mono speaker is not a channel role: channel 0's per-role prosody has it
                c = self.roles.index(item.speaker) if item.speaker in self.roles else 0
                summary = self.prosody[c].summarize(item.start, item.end)
                item = replace(item, intensity_db=summary.intensity_db, f0_hz=summary.f0_hz,
                               syllable_rate_hz=summary.syllable_rate_hz)
                self._push_results(self.feed.at_pause(c, item.speaker, t, self.vads, self.position), t)
            self._push(item.t, item)
            for ev in self.turns.on_event(item):
                self._push(ev.t, ev)

    # -- transcripts --------------------------------------------------------------------------------------

    def _transcript(self, result: TranscriptionResult, t: float) -> Transcript | None:
        ev = to_transcript(result, t)
        if ev is None:
            return None
        if self.attribution is not None:
            ev = self.attribution.annotate(ev)
        self.stats.transcripts += 1
        return ev

    def _push_results(self, results: list[TranscriptionResult], t: float) -> None:
        """Live: transcripts enter the stream when they are ready."""
        for result in results:
            ev = self._transcript(result, t)
            if ev is not None:
                self._push(t, ev)

    def _push_all(self, items: list[tuple[float, TranscriptSlot | TranscriptionResult]]) -> None:
        for t, item in items:
            if isinstance(item, TranscriptSlot):
                self._push(t, item)
            else:
                self._push_results([item], t)

    def _health(self, t: float, *, channel: int | None = None) -> Health:
        w = self.worker
        lag = None
        if w is not None and not self.deterministic:
            oldest = w.oldest_pending_t()
            lag = 0.0 if oldest is None else t - oldest
        return Health(
            t=t, overflows=self.source.overflows, asr_queue=w.pending if w else 0,
            asr_skipped=w.skipped if w else 0, asr_errors=w.errors if w else 0,
            asr_restarts=w.restarts if w else 0, asr_lag_s=lag,
            audio_ok=self.source.audio_ok if channel is None else self.source.channel_ok[channel],
            message=self.source.message, rtf=self.stats.rtf or None, channel=channel,
            speaker=None if channel is None else self.roles[channel],
        )

    # -- ordered output -------------------------------------------------------------------------------------

    def _push(self, t: float, item: OutboxItem) -> None:
        self._outbox.push(t, item)

    def _flush(self, *, final: bool) -> None:
        self._outbox.flush(self._slot_transcript, final=final)

    def _slot_transcript(self, slot: TranscriptSlot, t: float, final: bool) -> tuple[bool, Transcript | None]:
        ready, result = self.feed.slot_result(slot, behind_s=self.now_s - t, final=final)
        return ready, (self._transcript(result, t) if ready and result is not None else None)
