"""prominent_peaks against scipy.signal.find_peaks (the definition it follows)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import find_peaks

from session_monitor.prosody.peaks import prominent_peaks


def test_agrees_with_scipy_on_random_contours():
    rng = np.random.default_rng(7)
    for _ in range(2000):
        x = rng.standard_normal(int(rng.integers(3, 500))).cumsum() * rng.uniform(0.5, 3)
        kw = {"height": float(x.max()) - rng.uniform(0, 25), "distance": int(rng.integers(1, 12)),
              "prominence": float(rng.uniform(0, 5))}
        assert np.array_equal(prominent_peaks(x, **kw), find_peaks(x, **kw)[0]), kw


def test_known_peaks_plateaus_and_ties():
    x = np.array([0, 3, 0, 5, 5, 5, 0, 1, 0, 4, 0, 4, 0], dtype=float)
    # the plateau counts once at its middle; the 1 is not prominent enough
    assert prominent_peaks(x, height=-1, distance=1, prominence=2).tolist() == [1, 4, 9, 11]
    # two equal peaks closer than the distance: the earlier one stays
    assert prominent_peaks(x, height=-1, distance=3, prominence=2).tolist() == [1, 4, 9]
    assert prominent_peaks(x, height=4.5, distance=1, prominence=0).tolist() == [4]


@pytest.mark.parametrize("n", [0, 1, 2])
def test_too_short_has_no_peaks(n):
    assert prominent_peaks(np.ones(n), height=0, distance=1, prominence=0).size == 0
