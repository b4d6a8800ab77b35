"""Utterance classifiers learned from expert-labelled counselling transcripts (AnnoMI).

Two linear models over TF-IDF features (:mod:`utterance_features`) and, beside them, the
utterance's sentence embedding (:mod:`sentence_encoder`, all-MiniLM-L6-v2 run by onnxruntime),
applied in numpy:

- the patient's (client's) talk type: ``change`` / ``neutral`` / ``sustain`` (sustain =
  arguing for not changing, defending, minimising, rejecting the suggestion);
- the therapist's behaviour: ``reflection`` / ``question`` / ``therapist_input`` /
  ``other``, with the reflection's type (``simple`` / ``complex``), the question's
  (``open`` / ``closed``) and the input's (``information`` / ``advice`` /
  ``negotiation`` / ``options``).

The weights live in ``rupture/models/utterance_classifiers.bin`` (written by
``scripts/train_utterance_classifiers.py``, byte-identical on every run on one machine; see
docs/rupture_model.md for other CPUs). Loading reads
that one file: no network, no scikit-learn.

File format: ``SMUTTER1`` (8 bytes), the header's length (uint32, little-endian), the
header (UTF-8 JSON: vocabularies, tasks, array offsets, training data, the sentence
encoder's sha256 and each speaker's embedding weight), then the arrays (little-endian
float32 IDF weights, float16 coefficients) at the header's offsets. A speaker's
coefficients cover its vocabulary, then (where its ``embedding_weight`` is above 0) the
384 embedding dimensions; a file without an encoder (TF-IDF only, an older training) still
loads.
"""

from __future__ import annotations

import functools
import json
import logging
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from session_monitor.errors import InputError
from session_monitor.rupture.sentence_encoder import (
    DIM,
    GRAPH,
    SentenceEncoder,
    encoder_sha256,
    load_sentence_encoder,
)
from session_monitor.rupture.utterance_features import FEATURE_VERSION, features
from session_monitor.settings.sections import UtteranceSettings

__all__ = ["MAGIC", "MODEL_PATH", "Prediction", "UtteranceClassifiers", "classifiers_for", "dense_embedding",
           "load_classifiers"]

log = logging.getLogger(__name__)

MAGIC = b"SMUTTER1"
MODEL_PATH = Path(__file__).resolve().parent / "models" / "utterance_classifiers.bin"
_FIX = "rerun scripts/train_utterance_classifiers.py or reinstall session-monitor"


def dense_embedding(embedding: np.ndarray, weight: float) -> np.ndarray:
    """The embedding block of a feature row: rounded to float16 (so that the last bits, which
    differ between CPUs, do not reach the learned weights), times the speaker's weight."""
    return np.float32(weight) * embedding.astype(np.float16).astype(np.float32)


@dataclass(frozen=True)
class Prediction:
    """What one classifier made of one utterance.

    Attributes
    ----------
    label : the most probable class
    probability : its probability, 0..1
    probabilities : every class's probability
    """

    label: str
    probability: float
    probabilities: dict[str, float]


class _Linear:
    """Multinomial (or binary) logistic regression over one speaker's TF-IDF features."""

    def __init__(self, labels: list[str], coef: np.ndarray, intercept: np.ndarray) -> None:
        self.labels = labels
        self.coef = coef.astype(np.float32)  # (n_classes or 1, n_features)
        self.intercept = intercept.astype(np.float32)

    def predict(self, idx: np.ndarray, val: np.ndarray) -> Prediction:
        z = self.coef[:, idx] @ val + self.intercept
        if len(self.labels) == 2 and z.shape[0] == 1:
            p1 = float(1.0 / (1.0 + np.exp(-z[0])))
            probs = np.array([1.0 - p1, p1])
        else:
            e = np.exp(z - z.max())
            probs = e / e.sum()
        k = int(np.argmax(probs))
        return Prediction(self.labels[k], float(probs[k]),
                          {lab: float(p) for lab, p in zip(self.labels, probs)})


class _Speaker:
    """One speaker's vocabulary, IDF weights, embedding weight and linear models."""

    def __init__(self, vocab: list[str], idf: np.ndarray, tasks: dict[str, _Linear], context: bool,
                 embedding_weight: float = 0.0, encoder: SentenceEncoder | None = None) -> None:
        self.index = {f: i for i, f in enumerate(vocab)}
        self.context = context
        self.idf = idf.astype(np.float32)
        self.tasks = tasks
        self.embedding_weight = embedding_weight
        self.encoder = encoder
        self._dense_idx = np.arange(len(vocab), len(vocab) + DIM, dtype=np.int64)

    def vector(self, text: str, previous: str, own_previous: str) -> tuple[np.ndarray, np.ndarray]:
        feats = features(text, previous, own_previous, context=self.context)
        pairs = sorted((self.index[f], c) for f, c in feats.items() if f in self.index)
        idx = np.fromiter((i for i, _ in pairs), dtype=np.int64, count=len(pairs))
        val = np.zeros(0, dtype=np.float32)
        if pairs:
            tf = np.fromiter((c for _, c in pairs), dtype=np.float32, count=len(pairs))
            val = (1.0 + np.log(tf)) * self.idf[idx]
            val = val / np.float32(np.linalg.norm(val))
        if self.encoder is None:
            return idx, val
        dense = dense_embedding(self.encoder.embed(text), self.embedding_weight)
        return np.concatenate([idx, self._dense_idx]), np.concatenate([val, dense])


class UtteranceClassifiers:
    """Both speakers' classifiers, loaded from one model file.

    Use :meth:`patient` on the patient's final transcripts and :meth:`therapist` on the
    therapist's; ``previous`` is the other speaker's preceding transcript, ``own_previous``
    the same speaker's previous one.
    """

    def __init__(self, header: dict, speakers: dict[str, _Speaker], path: Path) -> None:
        self.header = header
        self.path = path
        self._speakers = speakers

    @property
    def trained_on(self) -> dict:
        """The training data's identity (file, sha256, transcripts, utterances)."""
        return dict(self.header.get("trained_on", {}))

    def patient(self, text: str, previous: str = "", own_previous: str = "") -> Prediction:
        """Client talk type of ``text`` (``change`` / ``neutral`` / ``sustain``)."""
        sp = self._speakers["client"]
        idx, val = sp.vector(text, previous, own_previous)
        return sp.tasks["client_talk"].predict(idx, val)

    def therapist(self, text: str, previous: str = "", own_previous: str = "") -> dict[str, Prediction]:
        """Therapist behaviour of ``text``: ``behaviour``, ``reflection_type``, ``question_type``, ``input_type``.

        The subtype predictions are always given; they mean something only where
        ``behaviour`` is the matching class.
        """
        sp = self._speakers["therapist"]
        idx, val = sp.vector(text, previous, own_previous)
        return {
            "behaviour": sp.tasks["therapist_behaviour"].predict(idx, val),
            "reflection_type": sp.tasks["reflection_type"].predict(idx, val),
            "question_type": sp.tasks["question_type"].predict(idx, val),
            "input_type": sp.tasks["input_type"].predict(idx, val),
        }


def _bad(path: Path, what: str) -> InputError:
    return InputError(f"{path}: {what}; {_FIX}")


def _array(blob: bytes, spec: dict, path: Path) -> np.ndarray:
    dtype = np.dtype(spec["dtype"]).newbyteorder("<")
    count = int(np.prod(spec["shape"]))
    end = spec["offset"] + count * dtype.itemsize
    if spec["offset"] < 0 or end > len(blob):
        raise _bad(path, "model file is truncated (an array runs past its end)")
    return np.frombuffer(blob, dtype=dtype, count=count, offset=spec["offset"]).reshape(spec["shape"])


def load_classifiers(path: Path | str | None = None) -> UtteranceClassifiers:
    """Read the model file (default: the one shipped in the package).

    Raises
    ------
    InputError : the file is missing, corrupt, or was trained for other features.
    """
    path = Path(path) if path is not None else MODEL_PATH
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _bad(path, f"cannot read the utterance model ({exc.strerror})") from None
    if len(data) < 12 or data[:8] != MAGIC:
        raise _bad(path, "not an utterance model file (wrong magic bytes)")
    (n,) = struct.unpack("<I", data[8:12])
    try:
        header = json.loads(data[12:12 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _bad(path, "model file header is corrupt") from None
    if header.get("feature_version") != FEATURE_VERSION:
        raise _bad(path, f"model was trained for feature version {header.get('feature_version')}, "
                         f"this program computes version {FEATURE_VERSION}")
    blob = data[12 + n:]
    try:
        speakers = {}
        for name, sp in header["speakers"].items():
            tasks = {t: _Linear(spec["labels"], _array(blob, spec["coef"], path),
                                _array(blob, spec["intercept"], path))
                     for t, spec in sp["tasks"].items()}
            idf = _array(blob, sp["idf"], path)
            weight = float(sp.get("embedding_weight", 0.0))
            width = len(idf) + (DIM if weight > 0 else 0)
            if len(idf) != len(sp["vocab"]) or any(m.coef.shape[1] != width for m in tasks.values()):
                raise _bad(path, f"{name} vocabulary and weights do not match")
            speakers[name] = _Speaker(sp["vocab"], idf, tasks, bool(sp["context"]), weight,
                                      _encoder_for(header, path) if weight > 0 else None)
        if "client_talk" not in speakers["client"].tasks or "therapist_behaviour" not in \
                speakers["therapist"].tasks:
            raise KeyError("task")
    except (KeyError, TypeError, ValueError):
        raise _bad(path, "model file header lacks a speaker, task or array") from None
    log.debug("utterance classifiers loaded from %s (%d bytes)", path, len(data))
    return UtteranceClassifiers(header, speakers, path)


def _encoder_for(header: dict, path: Path) -> SentenceEncoder:
    """The shipped sentence encoder, if it is the one the model file was trained with."""
    want = header.get("sentence_encoder", {}).get("sha256")
    if want != encoder_sha256(GRAPH):
        raise _bad(path, f"model was trained with another sentence encoder (sha256 {str(want)[:12]}) than "
                         f"the installed {GRAPH} ({encoder_sha256(GRAPH)[:12]}: changed or corrupt)")
    return load_sentence_encoder()


@functools.lru_cache(maxsize=4)
def _cached(path: Path | None, stamp: tuple[int, int]) -> UtteranceClassifiers:
    return load_classifiers(path)


def classifiers_for(settings: UtteranceSettings) -> UtteranceClassifiers:
    """The classifiers ``[utterances] model_file`` names ("" = the shipped ones).

    Read once per file version (path, mtime, size): the classifiers hold no session state,
    so every session of one process may share them.
    """
    path = Path(settings.model_file) if settings.model_file else None
    try:
        st = (path or MODEL_PATH).stat()
        stamp = (st.st_mtime_ns, st.st_size)
    except OSError:
        stamp = (0, 0)  # load_classifiers names the missing file
    return _cached(path, stamp)
