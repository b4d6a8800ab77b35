"""Read ``annomi_train.csv`` (AnnoMI, expert-labelled MI transcripts) into ordered utterances.

Shared by ``scripts/train_utterance_classifiers.py``, ``scripts/render_annomi.py`` and
``benchmarks/utterance_representations.py``. One row of the CSV is one utterance as
one annotator labelled it; five transcripts have ten annotators. Labels are merged
by majority vote per utterance (ties go to the label of the lowest annotator id).
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from session_monitor.errors import InputError

REQUIRED = (
    "transcript_id", "mi_quality", "topic", "utterance_id", "interlocutor", "timestamp", "utterance_text",
    "annotator_id", "main_therapist_behaviour", "client_talk_type", "therapist_input_subtype",
    "reflection_subtype", "question_subtype",
)
DEFAULT_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "annomi_train.csv"


@dataclass
class Utterance:
    transcript: int
    index: int
    speaker: str  # "therapist" or "client"
    text: str
    timestamp_s: float
    quality: str  # "high" / "low"
    topic: str
    labels: dict[str, str]  # task -> label ("" where the task does not apply)
    previous: str = ""  # the other speaker's preceding utterance
    own_previous: str = ""  # the same speaker's previous utterance


def _vote(values: list[tuple[int, str]]) -> str:
    vals = [(a, v) for a, v in values if v not in ("", "n/a")]
    if not vals:
        return ""
    counts = Counter(v for _, v in vals)
    best = max(counts.values())
    for _, v in sorted(vals):
        if counts[v] == best:
            return v
    return ""


def _seconds(stamp: str) -> float:
    parts = [float(p) for p in stamp.split(":")]
    s = 0.0
    for p in parts:
        s = s * 60 + p
    return s


def csv_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def load(path: Path) -> list[Utterance]:
    """The CSV's utterances, ordered by transcript and utterance id, labels merged.

    Raises
    ------
    InputError : the file is missing, unreadable, or lacks a required column.
    """
    path = Path(path)
    try:
        fh = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: cannot read the training CSV ({exc.strerror}); "
                         "pass --csv with the path of annomi_train.csv") from None
    with fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"{path}: missing column(s) {', '.join(missing)}; "
                             "pass the AnnoMI CSV (annomi_train.csv) with its header row")
        rows = list(reader)
    groups: dict[tuple[int, int], list[dict]] = defaultdict(list)
    for r in rows:
        groups[(int(r["transcript_id"]), int(r["utterance_id"]))].append(r)
    out: list[Utterance] = []
    for (tid, uid) in sorted(groups):
        rs = groups[(tid, uid)]
        first = min(rs, key=lambda r: int(r["annotator_id"]))
        speaker = first["interlocutor"]

        def vote(col: str, rs=rs) -> str:
            return _vote([(int(r["annotator_id"]), r[col]) for r in rs])

        labels = {
            "therapist_behaviour": vote("main_therapist_behaviour") if speaker == "therapist" else "",
            "reflection_type": vote("reflection_subtype") if speaker == "therapist" else "",
            "question_type": vote("question_subtype") if speaker == "therapist" else "",
            "input_type": vote("therapist_input_subtype") if speaker == "therapist" else "",
            "client_talk": vote("client_talk_type") if speaker == "client" else "",
        }
        out.append(Utterance(tid, uid, speaker, first["utterance_text"], _seconds(first["timestamp"]),
                             first["mi_quality"], first["topic"].strip(), labels))
    last: dict[tuple[int, str], str] = {}
    for u in out:
        other = "client" if u.speaker == "therapist" else "therapist"
        u.previous = last.get((u.transcript, other), "")
        u.own_previous = last.get((u.transcript, u.speaker), "")
        last[(u.transcript, u.speaker)] = u.text
    return out
