"""The batch's transcription worker drains every utterance, however far behind it is."""

from __future__ import annotations

import time

import numpy as np

from session_monitor.batch.session_run import DrainingWorker
from session_monitor.settings.loader import load_settings
from session_monitor.speech.asr_backend import AsrSegment
from session_monitor.speech.transcriber import TranscriptionJob, TranscriptionWorker


class _SlowBackend:
    """Stand-in ASR taking 0.1 s an utterance: a mock, because the real model cannot be made
    to fall minutes behind on cue (a loaded machine does that; benchmarks/batch.py)."""

    name = "slow"

    def transcribe(self, audio):
        time.sleep(0.1)
        return [AsrSegment(0.0, 0.5, "words", ())]


def finished(worker_class, *, jobs: int = 6, timeout: float = 0.05) -> tuple[int, bool]:
    """Submit ``jobs`` utterances, close with drain and a short limit; (results, last job waits)."""
    settings = load_settings().transcriber
    worker = worker_class(_SlowBackend(), settings)
    for seq in range(jobs):
        worker.submit(TranscriptionJob(seq, 0, "patient", seq, seq + 0.5, np.zeros(8000, np.float32), True, seq),
                      drop_oldest=False)
    worker.close(drain=True, timeout=timeout)
    results = len(worker.results())
    t0 = time.monotonic()
    worker.wait_for(jobs - 1, timeout=0.5)
    return results, time.monotonic() - t0 >= 0.45


def test_the_draining_worker_transcribes_everything_the_plain_one_leaves_waiting():
    plain_results, plain_waits = finished(TranscriptionWorker)
    assert plain_results < 6 and plain_waits  # the hang a --speed max replay then falls into
    results, waits = finished(DrainingWorker)
    assert results == 6 and not waits
