"""scripts/render_annomi.py: one AnnoMI transcript as two-voice stereo with its truth."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import soundfile as sf

from support.audio import ROOT, needs, shared_file

SCRIPT = ROOT / "scripts" / "render_annomi.py"


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x ** 2))) if len(x) else 0.0


def test_render_puts_each_speaker_on_its_channel_at_the_truth_times(tmp_path):
    needs("espeak-ng")
    csv = shared_file("annomi_train.csv")
    res = subprocess.run([sys.executable, str(SCRIPT), "--csv", str(csv), "--out", str(tmp_path),
                          "--transcripts", "125"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    audio, sr = sf.read(tmp_path / "annomi_125.flac", dtype="float32")
    truth = json.loads((tmp_path / "annomi_125.truth.json").read_text())
    assert sr == 16_000 and audio.shape[1] == 2
    assert truth["mi_quality"] == "high" and truth["channels"] == ["therapist", "patient"]
    utts = truth["utterances"]
    assert len(utts) == 7 and {u["speaker"] for u in utts} == {"therapist", "patient"}
    for u in utts:
        seg = audio[int(u["start"] * sr):int(u["end"] * sr)]
        own, other = (0, 1) if u["speaker"] == "therapist" else (1, 0)
        # the speaker's channel carries speech (> -40 dBFS), the other only the -65 dBFS room
        assert _rms(seg[:, own]) > 0.01 and _rms(seg[:, other]) < 0.002, u
    starts = [u["start"] for u in utts]
    assert starts == sorted(starts)
    assert all(b["start"] - a["end"] >= 0.44 for a, b in zip(utts, utts[1:]))  # 0.45 s between turns


def test_render_with_a_bad_csv_exits_2_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("transcript_id\n1\n")
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, str(SCRIPT), "--csv", str(bad), "--out", str(out)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and len(res.stderr.strip().splitlines()) == 1 and str(bad) in res.stderr
    assert not out.exists()
