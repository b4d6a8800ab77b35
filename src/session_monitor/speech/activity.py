"""Speech activity per channel: streaming Silero VAD with an energy floor.

The Silero VAD v6 ONNX model that faster-whisper ships scores 32 ms chunks
(512 samples at 16 kHz, with 64 samples of left context) and carries an LSTM state
``(h, c)``; :class:`SileroVad` keeps that state across calls, so streaming a file in
blocks gives exactly the probabilities of scoring it whole.

:class:`SpeechActivity` turns the chunk probabilities into speech segments with
hysteresis (``threshold`` to start, ``neg_threshold`` to continue) and an energy
floor ``noise_margin_db`` above the channel's own tracked noise floor (never a fixed
dBFS: the same session 30 dB quieter keeps the same speech), with hysteresis too: a
segment goes on through chunks down to ``continue_margin_db`` above the noise floor where
Silero is sure (>= ``threshold``), since in a noisy room the soft ends of words sit only a
few dB over the noise. Each boundary is then refined on 10 ms energy frames
(:mod:`~session_monitor.speech.boundaries`; an end on the lower floor), so pause and gap
lengths are good to about 10 ms instead of the VAD's 32 ms; a start is never refined back
into the channel's previous segment. A speech segment ends at a silence of at least ``min_pause_ms`` (default 200 ms: pauses shorter than that are
part of fluent speech); an *utterance*, the unit sent to the transcriber, ends at
``utterance_end_ms`` of silence or at ``max_utterance_s``.
"""

from __future__ import annotations

import os
from collections import deque
from dataclasses import dataclass

import numpy as np

from session_monitor.audio.frames import SAMPLE_RATE, Frame
from session_monitor.events import Event, Speech, SpeechOnset
from session_monitor.settings.loader import SpeechActivitySettings
from session_monitor.speech.boundaries import HOP, EnergyHops
from session_monitor.speech.noise_floor import NoiseFloor, chunk_levels_db

__all__ = ["SileroVad", "SpeechActivity", "UtteranceReady", "CHUNK", "HOP"]

#: Silero chunk length in samples (32 ms) and its left context.
CHUNK = 512
CONTEXT = 64


def _silero_path() -> str:
    """The Silero VAD model file inside the installed faster-whisper package.

    Found without importing faster-whisper (which loads CTranslate2 and PyAV, ~0.16 s
    that a ``--no-asr`` replay does not need).
    """
    import importlib.util

    spec = importlib.util.find_spec("faster_whisper")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("faster-whisper is not installed: pip install faster-whisper")
    return os.path.join(os.path.dirname(spec.origin), "assets", "silero_vad_v6.onnx")


class SileroVad:
    """Streaming Silero VAD: probabilities for whole 512-sample chunks, state kept."""

    _session = None  # one ONNX session per process; state lives in the instances

    def __init__(self) -> None:
        if SileroVad._session is None:
            import onnxruntime

            opts = onnxruntime.SessionOptions()
            opts.inter_op_num_threads = 1
            opts.intra_op_num_threads = 1
            opts.log_severity_level = 4
            SileroVad._session = onnxruntime.InferenceSession(
                _silero_path(), providers=["CPUExecutionProvider"], sess_options=opts
            )
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)

    def __call__(self, chunks: np.ndarray) -> np.ndarray:
        """Speech probability of each chunk.

        Parameters
        ----------
        chunks : np.ndarray, shape ``(n, 512)``, float32

        Returns
        -------
        np.ndarray, shape ``(n,)``
        """
        if len(chunks) == 0:
            return np.zeros(0, dtype=np.float32)
        contexts = np.vstack([self._context[None], chunks[:-1, -CONTEXT:]])
        batch = np.concatenate([contexts, chunks], axis=1).astype(np.float32, copy=False)
        probs, self._h, self._c = self._session.run(None, {"input": batch, "h": self._h, "c": self._c})
        self._context = chunks[-1, -CONTEXT:].copy()
        return np.asarray(probs, dtype=np.float32).reshape(-1)


@dataclass(frozen=True, slots=True)
class UtteranceReady:
    """An utterance (or, with ``final=False``, the open part of a long one) to transcribe.

    Internal to the pipeline; not an event of the session log.
    """

    t: float
    channel: int
    speaker: str
    start_sample: int
    end_sample: int
    final: bool = True


class SpeechActivity:
    """Speech segments, onsets and utterances of one channel.

    Parameters
    ----------
    settings : SpeechActivitySettings
    channel : int
        Input channel this stage listens to.
    speaker : str
        Label put on its events (a role, or ``unknown`` until attribution).
    vad : SileroVad, optional
        Injected for tests; a new stateful instance by default.
    """

    def __init__(
        self, settings: SpeechActivitySettings, *, channel: int, speaker: str, vad: SileroVad | None = None
    ) -> None:
        self.settings = settings
        self.channel = channel
        self.speaker = speaker
        self._vad = vad or SileroVad()
        self._pending = np.zeros(0, dtype=np.float32)
        self._pending_start = 0  # sample index of _pending[0]
        # 10 ms energies (dBFS) of the last few seconds, for boundary refinement
        self._hops = EnergyHops()
        self._refine_span = settings.refine_ms * SAMPLE_RATE // 1000 // HOP
        self._noise_db = -70.0  # running noise level (floor_mode = "fixed")
        self.noise = NoiseFloor.of_speech(settings, chunk=CHUNK)
        self._min_speech = max(1, round(settings.min_speech_ms * SAMPLE_RATE / 1000 / CHUNK))
        self._min_pause = round(settings.min_pause_ms * SAMPLE_RATE / 1000)
        self._utt_end = round(settings.utterance_end_ms * SAMPLE_RATE / 1000)
        self._max_utt = round(settings.max_utterance_s * SAMPLE_RATE)
        # state
        self.speaking = False
        self._run = 0  # consecutive speechy chunks while not speaking
        self._run_start = 0
        self._seg_start = 0
        self._silence_start: int | None = None  # first silent sample after speech
        self._seg_closed = True
        self._utt_start: int | None = None
        self._utt_last_end = 0
        self.last_speech_end: int | None = None
        self.position = 0  # samples consumed
        # probabilities scored ahead by prime(), and primed samples short of a whole chunk
        self._primed: deque[float] = deque()
        self._primed_rest = np.zeros(0, dtype=np.float32)
        self._priming = False

    # -- public -----------------------------------------------------------------------------

    def prime(self, samples: np.ndarray) -> None:
        """Score the VAD over audio that :meth:`process` will get next, in one model call.

        For a replay that can read ahead (``--speed max``): a few large calls cost much
        less than one per block, and the probabilities are the same (the model's state
        is carried either way). Once primed, every sample must be primed before it is
        processed.
        """
        self._priming = True
        buf = np.concatenate([self._primed_rest, samples]) if len(self._primed_rest) else samples
        n = len(buf) // CHUNK
        if n:
            self._primed.extend(self._vad(buf[: n * CHUNK].reshape(n, CHUNK)).tolist())
        self._primed_rest = buf[n * CHUNK :].copy()

    def _probabilities(self, chunks: np.ndarray) -> np.ndarray:
        if not self._priming:
            return self._vad(chunks)
        if len(self._primed) < len(chunks):
            raise RuntimeError("SpeechActivity.process got audio that prime() has not scored")
        return np.array([self._primed.popleft() for _ in range(len(chunks))], dtype=np.float32)

    @property
    def floor_db(self) -> float:
        """The energy floor now, in dBFS: with ``floor_mode = "tracked"``, ``noise_margin_db``
        above the tracked noise floor (``energy_floor_db`` in the first 0.25 s, before there is
        an estimate); with ``"fixed"``, ``energy_floor_db``."""
        floor = self.noise.above(self.settings.noise_margin_db)
        if self.settings.floor_mode == "fixed" or floor is None:
            return self.settings.energy_floor_db
        return floor

    @property
    def continue_floor_db(self) -> float:
        """The lower energy floor a segment goes on through, in dBFS: with ``floor_mode =
        "tracked"``, ``continue_margin_db`` (at most ``noise_margin_db``) above the tracked noise
        floor (a chunk between this and
        :attr:`floor_db` continues speech only where Silero is sure, see :meth:`process`); with
        ``"fixed"`` (or before there is an estimate), ``energy_floor_db``."""
        floor = self.noise.above(min(self.settings.continue_margin_db, self.settings.noise_margin_db))
        if self.settings.floor_mode == "fixed" or floor is None:
            return self.settings.energy_floor_db
        return floor

    def process(self, frame: Frame, *, own: np.ndarray | None = None) -> list[Event | UtteranceReady]:
        """Consume one frame; return the onsets, segments and utterances it completed.

        ``own`` (shape ``(n,)``, bool), for two-channel input, says for each 32 ms chunk
        this frame completes whether the channel carries its own speaker
        (:class:`~session_monitor.speech.bleed.BleedDetector`); a chunk that is the other
        microphone's bleed is never speech.
        """
        buf = np.concatenate([self._pending, frame.samples]) if len(self._pending) else frame.samples
        start = self._pending_start
        n = len(buf) // CHUNK
        chunks = buf[: n * CHUNK].reshape(n, CHUNK)
        self._pending = buf[n * CHUNK :].copy()
        self._pending_start = start + n * CHUNK
        if n == 0:
            return []
        if own is not None and len(own) != n:
            raise ValueError(f"SpeechActivity.process: {len(own)} ownership flags for {n} chunks")
        self._hops.add(chunks.reshape(-1), start)
        probs = self._probabilities(chunks)
        levels = chunk_levels_db(chunks)
        self.noise.update(levels)
        out: list[Event | UtteranceReady] = []
        floor, lower = self.floor_db, self.continue_floor_db
        for i in range(n):
            c0 = start + i * CHUNK
            self.position = c0 + CHUNK
            thr = self.settings.neg_threshold if self.speaking else self.settings.threshold
            # hysteresis on the level as on the probability (Rabiner & Sambur 1975): speech starts
            # above the floor and goes on above the lower one while Silero is sure of it
            loud = levels[i] >= floor or (self.speaking and probs[i] >= self.settings.threshold
                                          and levels[i] >= lower)
            speechy = probs[i] >= thr and loud and (own is None or bool(own[i]))
            if not speechy and not self.speaking:
                self._noise_db += 0.05 * (min(levels[i], -20.0) - self._noise_db)
            self._step(c0, speechy, out)
        return out

    def flush(self) -> list[Event | UtteranceReady]:
        """End of stream: close any open segment and utterance at the current position."""
        out: list[Event | UtteranceReady] = []
        if self.speaking:
            end = self._silence_start if self._silence_start is not None else self.position
            self._end_segment(self._refine_end(end), out, t=self.position / SAMPLE_RATE)
        if self._utt_start is not None:
            self._close_utterance(out, t=self.position / SAMPLE_RATE)
        return out

    # -- state machine ----------------------------------------------------------------------

    def _step(self, c0: int, speechy: bool, out: list) -> None:
        t = (c0 + CHUNK) / SAMPLE_RATE
        if not self.speaking:
            if speechy:
                if self._run == 0:
                    self._run_start = c0
                self._run += 1
                if self._run >= self._min_speech:
                    # refined back to where the energy rose, but never into this channel's last
                    # segment (whose end was refined forward): one speaker's segments never overlap
                    start = self._refine_start(self._run_start)
                    if self.last_speech_end is not None:
                        start = max(start, self.last_speech_end)
                    self._start_segment(start, out, t)
            else:
                self._run = 0
                self._maybe_close_utterance(c0 + CHUNK, out, t)
            return
        if speechy:
            self._silence_start = None
            if self._utt_start is not None and c0 + CHUNK - self._utt_start >= self._max_utt:
                # a very long stretch without a pause: cut the utterance here
                self._end_segment(c0 + CHUNK, out, t)
                self._close_utterance(out, t)
                self._start_segment(c0 + CHUNK, out, t)
            return
        if self._silence_start is None:
            self._silence_start = c0
        if c0 + CHUNK - self._silence_start >= self._min_pause:
            self._end_segment(self._refine_end(self._silence_start), out, t)
            self._maybe_close_utterance(c0 + CHUNK, out, t)

    def _start_segment(self, start: int, out: list, t: float) -> None:
        self.speaking = True
        self._run = 0
        self._silence_start = None
        self._seg_start = start
        if self._utt_start is None:
            self._utt_start = start
        out.append(SpeechOnset(t=t, speaker=self.speaker, start=start / SAMPLE_RATE))

    def _end_segment(self, end: int, out: list, t: float) -> None:
        self.speaking = False
        end = max(end, self._seg_start + HOP)
        out.append(Speech(t=t, speaker=self.speaker, start=self._seg_start / SAMPLE_RATE, end=end / SAMPLE_RATE))
        self.last_speech_end = end
        self._utt_last_end = end
        self._silence_start = end

    def _maybe_close_utterance(self, now: int, out: list, t: float) -> None:
        if self._utt_start is None or self.speaking:
            return
        if now - self._utt_last_end >= self._utt_end or self._utt_last_end - self._utt_start >= self._max_utt:
            self._close_utterance(out, t)

    def _close_utterance(self, out: list, t: float) -> None:
        assert self._utt_start is not None
        end = self._utt_last_end if self._utt_last_end > self._utt_start else self.position
        out.append(UtteranceReady(t, self.channel, self.speaker, self._utt_start, end, True))
        self._utt_start = None

    def paused_utterance(self) -> tuple[int, int] | None:
        """(start, end of speech) of the open utterance while nobody speaks on this channel:
        what the utterance will be if it closes without more speech."""
        if self._utt_start is None or self.speaking or self._utt_last_end <= self._utt_start:
            return None
        return self._utt_start, self._utt_last_end

    def open_utterance(self) -> tuple[int, int] | None:
        """(start, now) sample span of the utterance still open, for interim passes."""
        if self._utt_start is None:
            return None
        return self._utt_start, self.position

    # -- boundary refinement on 10 ms energy (speech.boundaries) -------------------------------

    def _refine_threshold(self, *, end: bool = False) -> float:
        """Level (dBFS) a 10 ms hop needs to count as voiced when a boundary is refined; with the
        tracked floor a segment's end is refined on the lower floor it goes on through."""
        noise = self._noise_db if self.settings.floor_mode == "fixed" else self.noise.db
        if end and self.settings.floor_mode == "tracked":
            return self.continue_floor_db
        return self.floor_db if noise is None else max(self.floor_db, noise + 12.0)

    def _refine_start(self, start: int) -> int:
        """Move a VAD onset to where the energy rose, across stop closures up to 80 ms."""
        return self._hops.refine_start(start, threshold_db=self._refine_threshold(), span_hops=self._refine_span)

    def _refine_end(self, end: int) -> int:
        """Move a VAD offset to where the energy fell, across stop closures up to 80 ms."""
        return self._hops.refine_end(end, threshold_db=self._refine_threshold(end=True), span_hops=self._refine_span)
