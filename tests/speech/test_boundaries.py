"""Boundaries refined on 10 ms energy: synthetic level steps at known samples."""

from __future__ import annotations

import numpy as np

from session_monitor.speech.boundaries import HOP, EnergyHops

SR = 16_000


def _signal(loud: list[tuple[float, float]], total_s: float) -> np.ndarray:
    """-80 dBFS noise with a -20 dBFS tone over each (start_s, end_s) span."""
    rng = np.random.default_rng(0)
    y = rng.normal(0, 10 ** (-80 / 20), int(total_s * SR)).astype(np.float32)
    t = np.arange(len(y)) / SR
    for a, b in loud:
        m = (t >= a) & (t < b)
        y[m] += (10 ** (-20 / 20) * np.sqrt(2) * np.sin(2 * np.pi * 220 * t[m])).astype(np.float32)
    return y


def _hops(y: np.ndarray, block: int = 512) -> EnergyHops:
    hops = EnergyHops()
    for s in range(0, len(y) - block + 1, block):  # in blocks, as the stage feeds it
        hops.add(y[s : s + block], s)
    return hops


def test_an_onset_moves_back_to_the_rise_across_a_stop_closure():
    # speech from 1.00 s, a 60 ms closure at 1.10-1.16 s; the VAD said 1.216 s
    hops = _hops(_signal([(1.00, 1.10), (1.16, 2.0)], 3.0))
    start = hops.refine_start(int(1.216 * SR), threshold_db=-50.0, span_hops=25)
    assert abs(start / SR - 1.00) <= HOP / SR, start / SR


def test_a_closure_longer_than_80_ms_is_not_bridged():
    # a 150 ms gap is a pause, not a closure: the onset stays after it
    hops = _hops(_signal([(1.00, 1.10), (1.25, 2.0)], 3.0))
    start = hops.refine_start(int(1.30 * SR), threshold_db=-50.0, span_hops=25)
    assert abs(start / SR - 1.25) <= HOP / SR, start / SR


def test_an_offset_moves_forward_to_the_fall_and_back_when_already_silent():
    hops = _hops(_signal([(1.0, 2.03)], 3.0))
    assert abs(hops.refine_end(int(1.95 * SR), threshold_db=-50.0, span_hops=25) / SR - 2.03) <= HOP / SR
    assert abs(hops.refine_end(int(2.15 * SR), threshold_db=-50.0, span_hops=25) / SR - 2.03) <= HOP / SR


def test_only_the_last_seconds_are_kept():
    hops = _hops(_signal([], 12.0))
    assert hops.db(0) is None  # dropped: 5 s are kept
    assert hops.db(int(11.0 * SR) // HOP) is not None
    # a boundary outside what is kept is left as the VAD gave it
    assert hops.refine_start(1000, threshold_db=-50.0, span_hops=25) == 1000
