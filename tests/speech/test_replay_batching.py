"""Replay batching: which utterances share a Whisper pass, and when a batch is sent.

The policy depends on session time only, so it is tested with a stand-in for the
worker's queue that records what was sent (the real worker is exercised by every
replay test); nothing is transcribed here.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from session_monitor.settings import load_settings
from session_monitor.speech.asr_backend import PACK_GAP_S
from session_monitor.speech.replay_batching import ReplayBatches, packed_length
from session_monitor.speech.transcriber import TranscriptionJob


class _Queue:
    """Records each batch submitted (the worker's submit_batch)."""

    def __init__(self) -> None:
        self.sent: list[list[int]] = []

    def submit_batch(self, jobs: list[TranscriptionJob]) -> None:
        self.sent.append([j.seq for j in jobs])


def job(seq: int, start: float, end: float, *, speaker: str = "patient", channel: int = 1) -> TranscriptionJob:
    return TranscriptionJob(seq, channel, speaker, start, end, np.zeros(int((end - start) * 16000), np.float32),
                            True, end + 0.5)


def batches(**overrides) -> tuple[ReplayBatches, _Queue]:
    settings = dataclasses.replace(load_settings().transcriber, **overrides)
    queue = _Queue()
    return ReplayBatches(queue, settings), queue  # type: ignore[arg-type]


def test_packed_length_counts_the_gaps_between_utterances():
    assert packed_length([job(1, 0, 4), job(2, 10, 12)]) == 6 + PACK_GAP_S


def test_a_batch_is_sent_when_the_next_utterance_would_not_fit():
    b, queue = batches(batch_s=10.0)
    b.add(job(1, 0, 4))
    b.add(job(2, 5, 9))  # 8 s + one gap: fits
    assert queue.sent == []
    b.add(job(3, 10, 14))  # 12 s + two gaps: over 10 s
    assert queue.sent == [[1, 2]]
    b.send_all()
    assert queue.sent == [[1, 2], [3]]


def test_each_speaker_has_its_own_batch():
    b, queue = batches(batch_s=29.0)
    b.add(job(1, 0, 2, speaker="therapist", channel=0))
    b.add(job(2, 3, 5, speaker="patient", channel=1))
    b.send_all()
    assert sorted(queue.sent) == [[1], [2]]


def test_a_waiting_batch_is_sent_after_half_the_lookahead_of_session_time():
    b, queue = batches(batch_s=29.0, max_lookahead_s=20.0)
    b.add(job(1, 0, 2))  # became available at 2.5 s
    b.send_stale(12.4)
    assert queue.sent == []
    b.send_stale(12.5)
    assert queue.sent == [[1]]


def test_holding_sends_only_the_batch_with_that_utterance():
    b, queue = batches(batch_s=29.0)
    b.add(job(1, 0, 2, speaker="therapist", channel=0))
    b.add(job(2, 3, 5, speaker="patient", channel=1))
    b.send_holding(2)
    assert queue.sent == [[2]]


def test_no_batching_sends_each_utterance_at_once():
    b, queue = batches(batch_s=0.0)
    b.add(job(1, 0, 2))
    b.add(job(2, 3, 5))
    assert queue.sent == [[1], [2]]
