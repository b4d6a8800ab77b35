"""The AudioSource protocol as its users rely on it, on a real file and through LimitedSource."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from session_monitor.audio.file_source import FileSource
from session_monitor.audio.source import LimitedSource
from support.audio import SR, noise


def test_a_file_source_has_every_attribute_of_the_protocol(tmp_path):
    path = tmp_path / "quiet.wav"
    sf.write(path, np.stack([noise(SR), noise(SR, seed=1)], axis=1), SR)
    source = FileSource(path, block_ms=96)
    source.open()
    assert (source.name, source.channels, source.live, source.overflows, source.audio_ok, source.message) == (
        str(path), 2, False, 0, True, "")
    assert sum(b.shape[1] for b in source.blocks()) == SR
    assert source.clipped_fraction == 0.0
    source.close()


def test_limited_source_ends_after_its_duration_and_passes_the_rest_through(tmp_path):
    path = tmp_path / "long.wav"
    y = noise(3 * SR)
    y[:100] = 1.0  # 100 clipped samples
    sf.write(path, y, SR, subtype="FLOAT")
    inner = FileSource(path, block_ms=96)
    limited = LimitedSource(inner, 1.0)
    got = sum(b.shape[1] for b in limited.blocks())
    assert SR <= got < SR + 1536  # stops at the first block that reaches 1 s
    assert (limited.name, limited.channels, limited.live) == (inner.name, 1, False)
    assert limited.clipped_fraction > 0
    limited.close()
