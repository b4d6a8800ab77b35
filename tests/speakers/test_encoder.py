"""The speaker embedding: the ONNX export reproduces the original (torch) GE2E encoder.

``data/ge2e_reference.npz`` holds the embeddings Resemblyzer's own encoder (torch 2.13 CPU)
gave for six windows of ``../shared/data/voices`` (two women, two men; 0.6-1.6 s),
written by ``scripts/convert_voice_encoder.py`` in the same run that exported the graph.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from session_monitor.errors import ConfigError
from session_monitor.speakers.encoder import DIM, WEIGHTS, VoiceEncoder, load_encoder
from support.audio import shared_file

REFERENCE = Path(__file__).parent / "data" / "ge2e_reference.npz"


def test_embeddings_match_the_original_encoder():
    import soundfile as sf

    encoder = load_encoder()
    ref = np.load(REFERENCE)
    assert len(ref["files"]) == 6
    for name, (start, length), want in zip(ref["files"], ref["windows"], ref["embeddings"]):
        wav, rate = sf.read(shared_file(f"voices/{name}"), dtype="float32")
        got = encoder.embed(wav[round(start * rate) : round((start + length) * rate)], normalize=False)
        assert got.shape == (DIM,)
        # float32 throughout; measured max 3.4e-7 against torch: the tolerance is 300x that
        assert np.abs(got - want).max() < 1e-4, name
        assert float(got @ want) > 0.9999, name


def test_embeddings_are_unit_length_and_level_free():
    rng = np.random.default_rng(1)
    t = np.arange(16000) / 16000
    voice = (np.sin(2 * np.pi * 140 * t) + 0.3 * np.sin(2 * np.pi * 280 * t)
             + 0.05 * rng.standard_normal(16000)).astype(np.float32)
    encoder = load_encoder()
    loud, quiet = encoder.embed(0.5 * voice), encoder.embed(0.01 * voice)
    assert abs(np.linalg.norm(loud) - 1.0) < 1e-5
    assert float(loud @ quiet) > 0.999  # scaled to -30 dBFS first
    batch = encoder.embed_power(np.stack([encoder.power(voice)] * 3))
    assert np.allclose(batch, batch[0], atol=1e-6)


def test_the_shipped_graph_is_the_one_loaded():
    assert WEIGHTS.is_file() and WEIGHTS.with_name("LICENSE").is_file()
    assert "Apache License" in WEIGHTS.with_name("LICENSE").read_text()
    assert load_encoder() is load_encoder()  # read once


def test_missing_or_corrupt_weights_are_one_line_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="missing; reinstall session-monitor, or run scripts/convert"):
        load_encoder(tmp_path / "ge2e.onnx")
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(WEIGHTS.read_bytes()[:100_000])
    with pytest.raises(ConfigError, match="unreadable .*reinstall") as info:
        load_encoder(broken)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError):  # a graph that loads but is not the encoder
        VoiceEncoder(_other_graph(tmp_path))


def _other_graph(tmp_path: Path) -> Path:
    """A valid ONNX file that is not the encoder: the shipped one with its input renamed."""
    data = WEIGHTS.read_bytes()
    path = tmp_path / "renamed.onnx"
    path.write_bytes(data.replace(b"power", b"POWER"))
    return path
