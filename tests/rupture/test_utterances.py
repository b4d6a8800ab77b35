"""The utterance classifiers: accuracy on held-aside transcripts, the model file, bad input.

The held-aside set is fixed: the transcripts of ``HELD_ASIDE`` (4 low- and 16 high-quality
demonstrations of ``annomi_train.csv``). A model is trained without them by the committed
script (scikit-learn, the ``train`` extra) and the run-time numpy classifiers score them.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from session_monitor.errors import InputError
from session_monitor.rupture.utterance_features import FEATURE_VERSION
from session_monitor.rupture.utterances import MAGIC, MODEL_PATH, load_classifiers
from support.audio import ROOT, shared_file

SCRIPT = ROOT / "scripts" / "train_utterance_classifiers.py"
sys.path.insert(0, str(ROOT / "scripts"))

#: 20 transcripts (4 low quality) never used for the test's own training
HELD_ASIDE = (5, 14, 18, 23, 31, 33, 44, 47, 52, 58, 61, 66, 69, 79, 85, 91, 100, 102, 119, 126)


def _train(out: Path, *extra: str, csv: Path | None = None) -> subprocess.CompletedProcess:
    args = [sys.executable, str(SCRIPT), "--no-cv", "--out", str(out), *extra]
    if csv is not None:
        args += ["--csv", str(csv)]
    return subprocess.run(args, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def held_aside_model(tmp_path_factory) -> Path:
    pytest.importorskip("sklearn", reason="the train extra (scikit-learn) trains the test's model")
    csv = shared_file("annomi_train.csv")
    out = tmp_path_factory.mktemp("uc") / "held_aside.bin"
    res = _train(out, "--exclude-transcripts", ",".join(map(str, HELD_ASIDE)), csv=csv)
    assert res.returncode == 0, res.stderr
    return out


def _macro_f1(y: list[str], yhat: list[str]) -> float:
    f1s = []
    for lab in sorted(set(y)):
        tp = sum(a == lab and b == lab for a, b in zip(y, yhat))
        fp = sum(a != lab and b == lab for a, b in zip(y, yhat))
        fn = sum(a == lab and b != lab for a, b in zip(y, yhat))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return float(np.mean(f1s))


@pytest.mark.slow
def test_classifiers_on_held_aside_transcripts(held_aside_model):
    """Grouped CV gives therapist 0.74 / client 0.50 macro-F1; a 20-transcript split may differ by ~0.05."""
    from annomi import load

    utts = [u for u in load(shared_file("annomi_train.csv")) if u.transcript in HELD_ASIDE]
    assert held_aside_model.exists()
    clf = load_classifiers(held_aside_model)
    assert clf.trained_on["excluded_transcripts"] == sorted(HELD_ASIDE)
    ther = [u for u in utts if u.labels["therapist_behaviour"]]
    y = [u.labels["therapist_behaviour"] for u in ther]
    yhat = [clf.therapist(u.text, u.previous, u.own_previous)["behaviour"].label for u in ther]
    assert _macro_f1(y, yhat) >= 0.65
    cli = [u for u in utts if u.labels["client_talk"]]
    y = [u.labels["client_talk"] for u in cli]
    preds = [clf.patient(u.text, u.previous, u.own_previous) for u in cli]
    assert _macro_f1(y, [p.label for p in preds]) >= 0.42
    # sustain talk ranks above the rest (AUC by pairs), well above chance
    sus = [p.probabilities["sustain"] for p, lab in zip(preds, y) if lab == "sustain"]
    rest = [p.probabilities["sustain"] for p, lab in zip(preds, y) if lab != "sustain"]
    auc = np.mean([[s > r for r in rest] for s in sus])
    assert auc >= 0.68


def test_shipped_model_loads_with_the_network_blocked(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the classifiers tried to open a socket")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    clf = load_classifiers()
    p = clf.patient("I don't think I'm drinking that much. Everybody drinks like I drink.",
                    "Have you thought about cutting down?")
    assert p.label == "sustain"
    assert abs(sum(p.probabilities.values()) - 1.0) < 1e-5
    change = clf.patient("I really want to cut down, I know I need to drink less.", "What would you like to do?")
    assert change.label == "change"
    assert change.probabilities["sustain"] < p.probabilities["sustain"] - 0.05  # soft: C=0.5, classes balanced
    t = clf.therapist("What would you like to do about your drinking?", "I drink on weekends.")
    assert t["behaviour"].label == "question" and t["question_type"].label == "open"
    t = clf.therapist("I would recommend that you cut down to no more than two drinks a day.", "I drink every day.")
    assert t["behaviour"].label == "therapist_input"
    t = clf.therapist("So you're feeling torn, part of you wants to quit and part of you enjoys it.",
                      "I like smoking but I know it's bad.")
    assert t["behaviour"].label == "reflection"


def _arrays(data: bytes) -> tuple[bytes, list[tuple[dict, np.ndarray]]]:
    """A model file's header bytes and each of its arrays (float64)."""
    n = int.from_bytes(data[8:12], "little")
    header = json.loads(data[12:12 + n])
    specs = [who["idf"] for who in header["speakers"].values()]
    specs += [arr for who in header["speakers"].values() for task in who["tasks"].values()
              for arr in (task["coef"], task["intercept"])]
    return data[:12 + n], [(spec, np.frombuffer(data[12 + n:], dtype=np.dtype(spec["dtype"]).newbyteorder("<"),
                                                count=int(np.prod(spec["shape"])), offset=spec["offset"])
                            .astype(np.float64)) for spec in specs]


def test_shipped_model_is_what_the_script_writes(tmp_path):
    """Same CSV, same script: the file in the package.

    Byte for byte on the machine that trained it. On another CPU two things differ:

    - numpy and OpenBLAS pick other SIMD kernels, which sum in another order: measured, an AMD
      EPYC retraining the TF-IDF-only file an Intel Xeon wrote gave 4 of its 1,378,768 bytes
      different, each a float16 weight one unit in the last place away. So where the sentence
      embeddings of the texts are the same bits as the shipped model's (the header's
      ``embeddings_sha256``): the same header and the same arrays, where at most 1 in 10,000
      values may differ, none by more than one float16 unit in the last place (2**-10 of its value);
    - onnxruntime's kernels differ too, so the embeddings may differ in their last bits, and the
      solver lands a little elsewhere: simulated here by noise of 1e-6 of each embedding value,
      the weights moved by at most 4.4e-4 of each array's largest value and the probabilities by
      1e-4, every label the same. So where the embeddings differ: the same header but for that
      hash, every array within 1 % of its largest value, and on every ninth AnnoMI utterance the
      same labels (at least 99.5 %) with probabilities within 0.01.
    """
    pytest.importorskip("sklearn", reason="the train extra (scikit-learn) retrains the model")
    csv = shared_file("annomi_train.csv")
    out = tmp_path / "again.bin"
    res = _train(out, csv=csv)
    assert res.returncode == 0, res.stderr
    again, shipped = out.read_bytes(), MODEL_PATH.read_bytes()
    head_a, arrays_a = _arrays(again)
    head_s, arrays_s = _arrays(shipped)
    meta_a, meta_s = json.loads(head_a[12:]), json.loads(head_s[12:])
    same_embeddings = meta_a["trained_on"].pop("embeddings_sha256") == meta_s["trained_on"].pop("embeddings_sha256")
    assert meta_a == meta_s
    if same_embeddings:
        assert head_a == head_s and len(again) == len(shipped)
        off, total = 0, 0
        for (spec, a), (_, s) in zip(arrays_a, arrays_s, strict=True):
            diff = np.abs(a - s)
            assert np.all(diff <= 2.0**-10 * np.abs(s) + 1e-7), spec
            off += int((diff > 0).sum())
            total += len(a)
        assert off <= total // 10_000, (off, total)
        return
    for (spec, a), (_, s) in zip(arrays_a, arrays_s, strict=True):
        assert np.abs(a - s).max() <= 0.01 * np.abs(s).max() + 1e-7, spec
    from annomi import load

    mine, theirs = load_classifiers(out), load_classifiers()
    same = n = 0
    for u in load(csv)[::9]:
        if u.speaker == "client":
            pairs = [(mine.patient(u.text, u.previous, u.own_previous),
                      theirs.patient(u.text, u.previous, u.own_previous))]
        else:
            pairs = list(zip(mine.therapist(u.text, u.previous, u.own_previous).values(),
                             theirs.therapist(u.text, u.previous, u.own_previous).values()))
        for x, y in pairs:
            n += 1
            same += x.label == y.label
            assert max(abs(x.probabilities[k] - y.probabilities[k]) for k in x.probabilities) <= 0.01
    assert same >= 0.995 * n, (same, n)


@pytest.mark.parametrize("damage", ["missing", "magic", "truncated", "header", "version"])
def test_bad_model_file_is_one_line_naming_it(tmp_path, damage):
    good = MODEL_PATH.read_bytes()
    path = tmp_path / "model.bin"
    if damage == "magic":
        path.write_bytes(b"NOTMODEL" + good[8:])
    elif damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "header":
        path.write_bytes(good[:12] + b"{not json" + good[21:])
    elif damage == "version":
        path.write_bytes(good.replace(f'"feature_version":{FEATURE_VERSION}'.encode(), b'"feature_version":99', 1))
    with pytest.raises(InputError) as err:
        load_classifiers(path)
    msg = str(err.value)
    assert str(path) in msg and "\n" not in msg
    assert "train_utterance_classifiers" in msg


def test_training_csv_without_its_columns_exits_2_and_writes_nothing(tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text("transcript_id,utterance_text\n1,hello\n")
    out = tmp_path / "model.bin"
    res = _train(out, csv=csv)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and str(csv) in lines[0] and "client_talk_type" in lines[0]
    assert not out.exists()


def test_model_file_starts_with_its_magic():
    assert MODEL_PATH.read_bytes()[:8] == MAGIC


@pytest.mark.parametrize("setting, message", [
    ("fusion.alert_onn=0.5", "alert_onn"),  # an unknown key: refused before any fold is trained
    ("fusion.alert_on=high", "alert_on"),  # a wrong type
    ("transcriber.model=tiny", "no replayed sessions"),  # a plain text value is a text, not JSON
])
def test_evaluate_annomi_refuses_a_bad_setting_in_one_line(tmp_path, setting, message):
    script = ROOT / "scripts" / "evaluate_annomi.py"
    res = subprocess.run([sys.executable, str(script), "--set", setting, "--renders", str(tmp_path),
                          "--sessions", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    assert message in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr


def _truth_without_audio(utts, transcript: int) -> dict:
    """A transcript's truth as render_annomi.py writes it, timed at 3 words a second (no audio)."""
    rows, t = [], 1.0
    for u in (u for u in utts if u.transcript == transcript):
        end = t + max(0.6, len(u.text.split()) / 3.0)
        rows.append({"speaker": "therapist" if u.speaker == "therapist" else "patient", "start": round(t, 3),
                     "end": round(end, 3), "text": u.text, "labels": {k: v for k, v in u.labels.items() if v}})
        t = end + 0.45
    return {"transcript": transcript, "mi_quality": next(u.quality for u in utts if u.transcript == transcript),
            "channels": ["therapist", "patient"], "utterances": rows}


def _events_of(truth: dict) -> list[dict]:
    """What a replay's analyzer saw of it, reduced to its final transcripts (the truth's words)."""
    evs = [{"type": "session", "t": 0.0, "state": "started", "source": "synthetic", "sample_rate": 16000,
            "channels": 2}]
    for u in truth["utterances"]:
        evs.append({"type": "transcript", "t": u["end"] + 0.5, "speaker": u["speaker"], "start": u["start"],
                    "end": u["end"], "text": u["text"], "final": True})
    return evs


def test_evaluate_annomi_scores_a_given_model_only_on_transcripts_it_never_saw(tmp_path, held_aside_model):
    # the evaluation script's --model path, on held-aside transcripts and one the model was trained
    # on; the sessions' events are the truth's words (no audio: the pipeline's part of the
    # end-to-end figures is measured by the AnnoMI replays in docs/rupture_model.md)
    from annomi import load

    csv = shared_file("annomi_train.csv")
    utts = load(csv)
    renders, sessions = tmp_path / "renders", tmp_path / "sessions"
    renders.mkdir()
    for t in (102, 52, 125):  # held aside (low, high quality) and trained on
        truth = _truth_without_audio(utts, t)
        (renders / f"annomi_{t}.truth.json").write_text(json.dumps(truth))
        (sessions / f"annomi_{t}").mkdir(parents=True)
        (sessions / f"annomi_{t}" / "events.jsonl").write_text(
            "".join(json.dumps(e) + "\n" for e in _events_of(truth)))
    script = ROOT / "scripts" / "evaluate_annomi.py"
    out = tmp_path / "figures.json"
    res = subprocess.run([sys.executable, str(script), "--model", str(held_aside_model), "--csv", str(csv),
                          "--renders", str(renders), "--sessions", str(sessions), "--json", str(out)],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    assert "left out 1 session(s) whose transcripts" in res.stderr and "annomi_125" in res.stderr
    figures = json.loads(out.read_text())
    assert sorted(figures["sessions"]) == ["annomi_102", "annomi_52"] and figures["model"] == str(held_aside_model)
    per = [x for s in figures["sessions"].values() for x in s["classifiers"]["per_utterance"]]
    coded = [u for t in (102, 52) for u in utts if u.transcript == t and u.labels["client_talk"]]
    assert len(per) == len(coded) and sum(x[0] == "sustain" for x in per) == 7
    # P(sustain) of the words ranks the 7 sustain-talk replies above the others (CV: AUC 0.77)
    assert figures["classifiers"]["sustain_auc_p_sustain_of_whisper_words"] >= 0.65


def test_evaluate_annomi_refuses_a_model_trained_on_another_csv(tmp_path):
    csv = shared_file("annomi_train.csv")
    other = tmp_path / "other.csv"
    other.write_bytes(csv.read_bytes() + b"\n")  # the same rows, other bytes: another file than the model's
    (tmp_path / "annomi_1.truth.json").write_text(json.dumps({"transcript": 1, "mi_quality": "high",
                                                              "utterances": []}))
    (tmp_path / "annomi_1").mkdir()
    (tmp_path / "annomi_1" / "events.jsonl").write_text("")
    script = ROOT / "scripts" / "evaluate_annomi.py"
    res = subprocess.run([sys.executable, str(script), "--model", str(MODEL_PATH), "--csv", str(other),
                          "--renders", str(tmp_path), "--sessions", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    line, = res.stderr.strip().splitlines()
    assert str(MODEL_PATH) in line and "annomi_train.csv" in line and "--csv" in line
    # the shipped model, with its own CSV, on a transcript it was trained on: nothing left to score
    res = subprocess.run([sys.executable, str(script), "--model", str(MODEL_PATH), "--csv", str(csv),
                          "--renders", str(tmp_path), "--sessions", str(tmp_path)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "trained on the transcripts of every replayed session" in res.stderr
