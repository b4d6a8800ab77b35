"""Echo of the therapist's voice in a call's audio: bleed that arrives hundreds of ms late.

In a telehealth session channel 0 is the therapist's microphone and channel 1 the call
audio. Where the far end has no echo cancellation, the call audio carries the
therapist's own voice back, one network round trip later (100-600 ms) and attenuated;
a per-channel VAD would call it patient speech. That is bleed
(:mod:`session_monitor.speech.bleed`), only far later than the 10 ms two room
microphones are apart. So the echo delay is estimated from the two channels (the peak
of their PHAT-weighted cross-correlation over the last seconds, Knapp & Carter 1976,
searched up to ``max_delay_ms``), the microphone is delayed by it, and the bleed
detector judges each 32 ms chunk of the call audio against that: a chunk that the
delayed microphone explains, and is quieter than, is the echo, not the patient.
The microphone channel is always its own speaker's.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from session_monitor.audio.frames import SAMPLE_RATE
from session_monitor.settings.sections import BleedSettings, CallEchoSettings
from session_monitor.speech.bleed import CHUNK, BleedDetector, ChunkOwnership

__all__ = ["CallEchoDetector"]

logger = logging.getLogger(__name__)


class CallEchoDetector:
    """Per 32 ms chunk of a (microphone, call audio) stream: which call chunks are the echo.

    Parameters
    ----------
    settings : the ``[bleed]`` section (level difference, coherence, residual)
    echo : the ``[call_echo]`` section: longest delay, estimation window and period, least PHAT peak

    With ``echo.enabled`` false the call audio is always the patient's.
    """

    def __init__(self, settings: BleedSettings, echo: CallEchoSettings) -> None:
        self.enabled = echo.enabled
        self.max_delay = int(echo.max_delay_ms * SAMPLE_RATE / 1000)
        self.window = int(echo.window_s * SAMPLE_RATE)
        self.update = int(echo.update_s * SAMPLE_RATE)
        self.min_peak = echo.min_peak
        self._inner = BleedDetector(settings)
        self._margin = self._inner.max_lag // 2  # the bleed detector searches 0..max_lag around the delay
        keep = self.window + self.max_delay
        self._mic = np.zeros(keep, np.float32)  # the last `keep` samples of each channel
        self._call = np.zeros(keep, np.float32)
        self._seen = 0
        self._next_update = self.update
        self._gain = np.float32(10 ** (-echo.attenuation_db / 20))
        self.delay: int | None = None  # samples; None until an echo is found

    def _estimate(self) -> None:
        mic, call = self._mic[-self.window - self.max_delay :], self._call[-self.window :]
        if np.mean(call * call) < 1e-8 or np.mean(mic * mic) < 1e-8:
            return
        size = 1 << int(np.ceil(np.log2(len(mic) + len(call))))
        spec = np.fft.rfft(call, size) * np.conj(np.fft.rfft(mic, size))
        spec /= np.abs(spec) + 1e-12
        r = np.fft.irfft(spec, size)  # r[j] = sum_t call[t + j] mic[t]
        # the mic window starts max_delay earlier: call[k] ~ mic[k + max_delay - d], i.e. j = d - max_delay
        corr = r[(np.arange(self.max_delay + 1) - self.max_delay) % size]  # corr[d]
        d = int(np.argmax(corr))
        peak = float(np.max(corr))
        if peak >= self.min_peak:
            if self.delay != d:
                logger.info("call echo delay %.0f ms (PHAT peak %.2f)", 1000 * d / SAMPLE_RATE, peak)
            self.delay = d

    def process(self, block: np.ndarray) -> ChunkOwnership:
        """Decide the chunks completed by ``block`` (shape ``(2, n)``: microphone, call audio)."""
        n = block.shape[1]
        self._mic = np.concatenate([self._mic, block[0]])[-len(self._mic) :]
        self._call = np.concatenate([self._call, block[1]])[-len(self._call) :]
        self._seen += n
        if self.enabled and self._seen >= self._next_update:
            self._next_update = self._seen + self.update
            self._estimate()
        shift = max(0, (self.delay or 0) - self._margin)
        if self.delay is None or not self.enabled:
            delayed = np.zeros(n, np.float32)  # no echo found: nothing explains the call audio
        else:
            end = len(self._mic) - shift
            delayed = self._mic[end - n : end]
        decided = self._inner.process(np.stack([delayed, block[1]]))
        own = decided.own.copy()
        own[0] = True
        return replace(decided, own=own)

    def gate(self, block: np.ndarray) -> np.ndarray:
        """``block`` (shape ``(2, n)``) with the call audio's echo chunks ``attenuation_db`` down.

        What the speech stages then see of the echo is below any speech floor; the patient's
        own speech, and speech over the echo (double talk), pass unchanged. A chunk that
        straddles two blocks is attenuated in this block only.
        """
        start = self._seen
        decided = self.process(block)
        echo = np.flatnonzero(~decided.own[1])
        if not len(echo):
            return block
        out = block.copy()
        for k in echo:
            a = decided.start_sample + int(k) * CHUNK - start
            out[1, max(0, a) : max(0, a + CHUNK)] *= self._gain
        return out
