"""The sentence encoder (all-MiniLM-L6-v2 in onnxruntime) against the original model, and bad files.

``tests/rupture/data/minilm_reference.npz`` holds the embeddings the original
sentence-transformers model (float32, torch) gave for eight sentences, written by
``scripts/convert_sentence_encoder.py``. The shipped graph stores its weights as int8 per
channel; measured, its embeddings lie at cosine 0.996-0.9997 from the original's.
"""

from __future__ import annotations

import socket

import numpy as np
import pytest

from session_monitor.errors import InputError
from session_monitor.rupture.sentence_encoder import (
    DIM,
    GRAPH,
    TOKENIZER,
    SentenceEncoder,
    load_sentence_encoder,
)
from session_monitor.rupture.utterances import MODEL_PATH, load_classifiers
from support.audio import ROOT

REFERENCE = ROOT / "tests" / "rupture" / "data" / "minilm_reference.npz"


def test_embeddings_match_the_original_model():
    ref = np.load(REFERENCE)
    enc = load_sentence_encoder()
    for sentence, want in zip(ref["sentences"], ref["embeddings"], strict=True):
        got = enc.embed(str(sentence))
        assert got.shape == (DIM,) and got.dtype == np.float32
        assert abs(float(np.linalg.norm(got)) - 1.0) < 1e-4
        assert float(got @ want) >= 0.99, sentence  # int8 weights: 0.996 at worst, measured


def test_meaning_not_words_brings_sentences_together():
    """Two ways of pushing back sit nearer each other than either sits to a change statement."""
    enc = load_sentence_encoder()
    a = enc.embed("I don't think I'm drinking that much.")
    b = enc.embed("Everybody drinks like I drink, it's not a problem.")
    c = enc.embed("I really want to quit, I'm ready to stop.")
    assert a @ b > a @ c + 0.1


def test_an_empty_text_is_zeros_and_a_long_one_is_cut():
    enc = load_sentence_encoder()
    assert not enc.embed("").any()
    long = " ".join(["we talked about the weekend and the drinking"] * 60)  # ~480 word pieces
    v = enc.embed(long)
    assert abs(float(np.linalg.norm(v)) - 1.0) < 1e-4


def test_loads_and_embeds_with_the_network_blocked(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the sentence encoder tried to open a socket")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    enc = SentenceEncoder(GRAPH, TOKENIZER)
    assert enc.embed("hello there").shape == (DIM,)


@pytest.mark.parametrize("damage", ["missing graph", "corrupt graph", "missing tokenizer", "corrupt tokenizer"])
def test_a_bad_encoder_file_is_one_line_naming_it(tmp_path, damage):
    graph, tok = tmp_path / "g.onnx", tmp_path / "tokenizer.json"
    graph.write_bytes(GRAPH.read_bytes()[:4096] if damage == "corrupt graph" else GRAPH.read_bytes())
    tok.write_text("{not json" if damage == "corrupt tokenizer" else TOKENIZER.read_text())
    (graph if damage == "missing graph" else tok if damage == "missing tokenizer" else tmp_path / "x").unlink(
        missing_ok=True)
    with pytest.raises(InputError) as err:
        SentenceEncoder(graph, tok)
    msg = str(err.value)
    assert "\n" not in msg and "convert_sentence_encoder" in msg
    assert str(graph if "graph" in damage else tok) in msg


def test_a_model_file_trained_with_another_encoder_is_refused(tmp_path):
    good = MODEL_PATH.read_bytes()
    from session_monitor.rupture.sentence_encoder import encoder_sha256

    sha = encoder_sha256(GRAPH).encode()
    assert sha in good
    path = tmp_path / "model.bin"
    path.write_bytes(good.replace(sha, b"0" * len(sha), 1))
    with pytest.raises(InputError) as err:
        load_classifiers(path)
    msg = str(err.value)
    assert str(path) in msg and "another sentence encoder" in msg and "\n" not in msg


def test_a_program_that_exits_while_the_encoder_loads_exits_cleanly():
    """Exiting during the background load must not abort the process (it did: SIGABRT in 6 of 20
    replays whose Whisper model failed to load). The load thread is waited for at exit, so each
    run ends with its own exit code and nothing on stderr; the runs exit at once after the load starts,
    when the thread is inside onnxruntime's constructor."""
    import subprocess
    import sys

    enc = SentenceEncoder(GRAPH, TOKENIZER, background=True)
    assert not enc._loader.daemon  # the interpreter joins it before it finalises
    enc.embed("hello")
    code = ("from session_monitor.rupture.sentence_encoder import load_sentence_encoder\n"
            "load_sentence_encoder()\nraise SystemExit(2)\n")
    for _ in range(5):
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert (run.returncode, run.stderr) == (2, "")
