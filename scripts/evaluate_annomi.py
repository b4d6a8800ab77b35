#!/usr/bin/env python3
"""End-to-end evaluation on rendered AnnoMI sessions, with classifiers trained on the other folds.

Takes the sessions that ``scripts/render_annomi.py`` rendered and ``session-monitor replay
--speed max`` replayed (whole pipeline: VAD, prosody, the bundled Whisper model, speakers
from the channels), then re-runs the rupture model over each session's recorded events
(exactly what the pipeline's analyzer saw) twice:

- ``today``: the rupture model without the utterance classifiers (``[utterances] enabled = false``);
- ``classifiers``: with classifiers trained by ``train_utterance_classifiers.py`` on the
  transcripts of the *other* folds of its grouped 5-fold split (never the session's own).

Figures: AUC of the session mean likelihood, low- vs high-quality sessions; AUC of the
patient evidence on each patient utterance the experts coded sustain talk vs all other coded
patient utterances, as the strongest marker's strength and as fusion counts it (each marker's
weighted, capped contribution, combined by noisy-OR), each also without the talk-share
collapse (a marker about the last minute of talk that overlaps every utterance in it), and
the strongest marker split by cue (the classifier's markers
alone, the other cues' alone, and P(sustain) of Whisper's words for the utterance); the MI
figures at the session's end. Prints a table and
``--json`` stores it::

    python scripts/render_annomi.py --pick shortest
    for f in /tmp/annomi_renders/*.flac; do
        session-monitor replay "$f" --speed max --no-view --no-report \\
            --session-dir /tmp/annomi_sessions/$(basename "$f" .flac) --force; done
    python scripts/evaluate_annomi.py [--renders DIR] [--sessions DIR] [--json FILE]
        [--set SECTION.KEY=VALUE ...]

``--set`` changes a setting of the ``classifiers`` variant (e.g. ``fusion.therapist_tau_s=10``),
to see how the figures depend on it.

``--model FILE`` scores every session with that model file instead of fold models: the shipped
one (``src/session_monitor/rupture/models/utterance_classifiers.bin``) on transcripts it never
saw, such as AnnoMI's held-out set rendered with ``render_annomi.py --csv``. Sessions of
transcripts the model was trained on (those of ``--csv``, its training CSV, that it did not
exclude) are left out, and said so: a model is never scored on its own training data.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train_utterance_classifiers as T  # noqa: E402
from annomi import DEFAULT_CSV, csv_sha256, load  # noqa: E402

from session_monitor.errors import InputError, SessionMonitorError  # noqa: E402
from session_monitor.event_log import read_events  # noqa: E402
from session_monitor.events import Marker, MiFigures, Signal  # noqa: E402
from session_monitor.rupture.model import RuptureModel, run_on_events, transcribed  # noqa: E402
from session_monitor.rupture.utterances import load_classifiers  # noqa: E402
from session_monitor.settings.loader import load_settings  # noqa: E402


def auc(pos: list[float], neg: list[float]) -> float | None:
    """Probability that a positive outranks a negative (ties count half)."""
    if not pos or not neg:
        return None
    p, n = np.asarray(pos)[:, None], np.asarray(neg)[None, :]
    return round(float(np.mean((p > n) + 0.5 * (p == n))), 4)


def fold_models(utts, wanted: set[int], out_dir: Path) -> dict[int, Path]:
    """transcript -> model file trained without that transcript's fold."""
    from sklearn.model_selection import StratifiedGroupKFold

    folds = StratifiedGroupKFold(n_splits=T.FOLDS, shuffle=True, random_state=T.SEED).split(
        utts, [u.quality for u in utts], [u.transcript for u in utts])
    out: dict[int, Path] = {}
    for k, (_, te) in enumerate(folds):
        held = {utts[i].transcript for i in te}
        if not held & wanted:
            continue
        trained = T.train([u for u in utts if u.transcript not in held])
        path = out_dir / f"fold{k}.bin"
        path.write_bytes(T.serialise(trained, {"excluded_transcripts": sorted(held)}))
        for t in held & wanted:
            out[t] = path
    return out


def trained_transcripts(model: Path, header: dict, csv: Path, utts) -> set[int]:
    """The transcripts of ``csv`` (loaded as ``utts``) that the model in ``model`` was trained on.

    Raises
    ------
    InputError : the model names another training CSV than ``csv`` (by its sha256).
    """
    info = header.get("trained_on") or {}
    if info.get("sha256") and info["sha256"] != csv_sha256(csv):
        raise InputError(f"{model}: trained on {info.get('file', 'another CSV')} (sha256 {info['sha256'][:12]}), "
                         f"not {csv}; pass its training CSV with --csv, so that its transcripts are left out")
    excluded = set(info.get("excluded_transcripts", header.get("excluded_transcripts", [])))
    return {u.transcript for u in utts} - excluded


def _about_window(m: Marker) -> bool:
    """A marker about the last minute of talk, not about one utterance: the talk-share collapse
    (``minimal_response`` from turn-taking spans ``evidence.share_window_s``, so it overlaps
    every utterance in that window)."""
    return m.cue == "turn_taking" and m.marker == "minimal_response"


def _strongest(markers: list[Marker], fusion) -> float:
    """The strongest marker's own strength (each cue's strength on its own scale)."""
    return max((m.strength for m in markers), default=0.0)


def _fused(markers: list[Marker], fusion) -> float:
    """The evidence as fusion counts it: each marker's contribution ``min(cap, weight[cue] x
    strength)``, combined by noisy-OR (``1 - prod(1 - c)``)."""
    return 1.0 - float(np.prod([1.0 - fusion.weight_of(m) for m in markers]))


#: The columns of a session's ``per_utterance`` rows after the label: the patient markers near
#: the utterance that a filter keeps, measured one way ...
_MEASURES = {
    "sustain_evidence_auc": (lambda m: True, _strongest),
    "sustain_evidence_auc_without_window_cues": (lambda m: not _about_window(m), _strongest),
    "sustain_fused_evidence_auc": (lambda m: True, _fused),
    "sustain_fused_evidence_auc_without_window_cues": (lambda m: not _about_window(m), _fused),
    "sustain_auc_classifier_markers": (lambda m: m.cue == "classifier", _strongest),
    "sustain_auc_other_markers": (lambda m: m.cue != "classifier", _strongest),
}
#: ... then P(sustain) of Whisper's words for it (0 without classifiers).
PER_UTTERANCE = (*_MEASURES, "sustain_auc_p_sustain_of_whisper_words")
#: The columns that do not split the evidence by cue (the split is for the classifiers' variant).
ALL_CUES = 4


def score(events: list[dict], truth: dict, overrides: dict) -> dict:
    model = RuptureModel.from_settings(load_settings(overrides=overrides), transcripts=transcribed(events))
    out = run_on_events(model, events)
    likes = [e.likelihood for e in out if isinstance(e, Signal)]
    pm = [e for e in out if isinstance(e, Marker) and e.speaker == "patient" and e.kind != "repair"]
    model_file = overrides.get("utterances", {}).get("model_file")
    clf = load_classifiers(model_file) if model_file else None
    heard = [e for e in events if e.get("type") == "transcript" and e.get("speaker") == "patient"
             and e.get("final", True)]
    per_utt = []  # per coded patient utterance: its label and its evidence, as PER_UTTERANCE names
    for u in truth["utterances"]:
        lab = u["labels"].get("client_talk")
        if u["speaker"] != "patient" or not lab:
            continue
        near = [m for m in pm if m.end >= u["start"] - 0.5 and m.start <= u["end"] + 1.5]
        words = " ".join(t["text"] for t in heard
                         if t["end"] >= u["start"] - 0.2 and t["start"] <= u["end"] + 0.2).strip()
        per_utt.append((lab, *(how([m for m in near if keep(m)], model.fusion) for keep, how in _MEASURES.values()),
                        clf.patient(words).probabilities["sustain"] if clf is not None and words else 0.0))
    figs = [e for e in out if isinstance(e, MiFigures)]
    return {"mean_likelihood": float(np.mean(likes)) if likes else 0.0,
            "alerts": sum(1 for e in out if getattr(e, "type", "") == "alert" and e.state == "on"),
            "per_utterance": per_utt,
            "figures": {k: getattr(figs[-1], k) for k in ("reflection_to_question", "open_question_share",
                                                          "complex_reflection_share", "change_share",
                                                          "input_share")} if figs else {}}


def _natural(name: str) -> tuple:
    """annomi_9 before annomi_10."""
    head, _, num = name.rpartition("_")
    return (head, int(num)) if num.isdigit() else (name, 0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    ap.add_argument("--renders", type=Path, default=Path("/tmp/annomi_renders"))
    ap.add_argument("--sessions", type=Path, default=Path("/tmp/annomi_sessions"))
    ap.add_argument("--json", type=Path)
    ap.add_argument("--model", type=Path, help="score every session with this model file instead of fold models "
                                              "(sessions of transcripts it was trained on are left out)")
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="a setting of the classifiers variant (repeatable)")
    args = ap.parse_args(argv)
    extra: dict[str, dict] = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot:
            print(f"error: --set {item}: expected SECTION.KEY=VALUE", file=sys.stderr)
            return 2
        try:
            parsed = json.loads(value)  # a number, true/false, a list ...
        except ValueError:
            parsed = value  # ... else a text
        extra.setdefault(section, {})[name] = parsed
    try:
        load_settings(overrides=extra)  # a bad --set is refused now, not after the folds are trained
    except SessionMonitorError as exc:
        print(f"error: --set: {exc}", file=sys.stderr)
        return 2
    sessions = {}
    for truth_file in sorted(args.renders.glob("annomi_*.truth.json")):
        name = truth_file.name.removesuffix(".truth.json")
        ev_file = args.sessions / name / "events.jsonl"
        if ev_file.is_file():
            sessions[name] = (json.loads(truth_file.read_text()), args.sessions / name)
    if not sessions:
        print(f"error: no replayed sessions under {args.sessions} for the renders in {args.renders}; "
              "render and replay them first (see --help)", file=sys.stderr)
        return 2
    try:
        utts = load(args.csv)
        if args.model is not None:
            trained = trained_transcripts(args.model, load_classifiers(args.model).header, args.csv, utts)
    except SessionMonitorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.model is not None:
        seen = sorted((n for n, (t, _) in sessions.items() if t["transcript"] in trained), key=_natural)
        if seen:
            print(f"note: left out {len(seen)} session(s) whose transcripts {args.model.name} was trained on: "
                  f"{', '.join(seen)}", file=sys.stderr)
        sessions = {n: v for n, v in sessions.items() if n not in seen}
        if not sessions:
            print(f"error: {args.model} was trained on the transcripts of every replayed session; render and "
                  "replay transcripts it never saw, or omit --model to use models trained on the other folds",
                  file=sys.stderr)
            return 2
    res: dict = {"sessions": {}, "n_low": 0, "n_high": 0, "model": str(args.model) if args.model else "folds"}
    with tempfile.TemporaryDirectory() as tmp:
        models = ({t["transcript"]: args.model for t, _ in sessions.values()} if args.model is not None
                  else fold_models(utts, {t["transcript"] for t, _ in sessions.values()}, Path(tmp)))
        for name, (truth, folder) in sessions.items():
            events = read_events(folder)
            row = {"quality": truth["mi_quality"],
                   "today": score(events, truth, {"utterances": {"enabled": False}}),
                   "classifiers": score(events, truth, {
                       **extra, "utterances": {**extra.get("utterances", {}),
                                               "model_file": str(models[truth["transcript"]])}})}
            res["sessions"][name] = row
            res["n_" + truth["mi_quality"]] += 1
            print(f"{name}: {row['quality']}, mean likelihood today {row['today']['mean_likelihood']:.3f}, "
                  f"with classifiers {row['classifiers']['mean_likelihood']:.3f}", file=sys.stderr)
    rows = res["sessions"].values()
    for variant in ("today", "classifiers"):
        low = [r[variant]["mean_likelihood"] for r in rows if r["quality"] == "low"]
        high = [r[variant]["mean_likelihood"] for r in rows if r["quality"] == "high"]
        per = [x for r in rows for x in r[variant]["per_utterance"]]
        n_sus = sum(1 for x in per if x[0] == "sustain")
        res[variant] = {"session_auc_mean_likelihood": auc(low, high),
                        "sustain_utterances": n_sus, "other_patient_utterances": len(per) - n_sus,
                        "high_quality_sessions_alerted": sum(1 for r in rows if r["quality"] == "high"
                                                             and r[variant]["alerts"] > 0),
                        "low_quality_sessions_alerted": sum(1 for r in rows if r["quality"] == "low"
                                                            and r[variant]["alerts"] > 0)}
        for k, name in enumerate(PER_UTTERANCE if variant == "classifiers" else PER_UTTERANCE[:ALL_CUES], start=1):
            res[variant][name] = auc([x[k] for x in per if x[0] == "sustain"], [x[k] for x in per if x[0] != "sustain"])
    for key in ("input_share", "reflection_to_question", "change_share"):
        vals = [(r["quality"], r["classifiers"]["figures"].get(key)) for r in rows]
        low = [v for q, v in vals if q == "low" and v is not None]
        high = [v for q, v in vals if q == "high" and v is not None]
        sign = -1 if key != "input_share" else 1  # fewer reflections / less change talk: lower quality
        res[f"session_auc_{key}"] = auc([sign * v for v in low], [sign * v for v in high])
    summary = {k: v for k, v in res.items() if k != "sessions"}
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
