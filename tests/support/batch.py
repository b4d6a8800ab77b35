"""Short recordings for batch tests: clips of the sample sessions, a broken file, single replays."""

from __future__ import annotations

import json
from pathlib import Path

import soundfile as sf

from support.audio import SAMPLE_AUDIO
from support.cli import run_cli

#: (sample session, first second, last second): short enough to keep the suite quick, each
#: with turns of both speakers; the second holds the start of a planted confrontation
CLIPS = (("withdrawal_only", 0, 30), ("confrontation_repair", 25, 60), ("calm_reflective", 0, 25))


def make_clips(folder: Path) -> list[Path]:
    """The clips as FLAC files in ``folder``, plus ``broken.wav`` (not audio)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, start, end in CLIPS:
        data, sr = sf.read(SAMPLE_AUDIO / f"{name}.flac")
        path = folder / f"{name}_{start}_{end}.flac"
        sf.write(path, data[start * sr:end * sr], sr)
        out.append(path)
    broken = folder / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt this is not a recording")
    return out + [broken]


def clip_truth(folder: Path) -> Path:
    """The confrontation clip's planted rupture (36.12-51.36 s of the session) in clip seconds."""
    truth = json.loads((SAMPLE_AUDIO / "confrontation_repair.truth.json").read_text())
    _, start, end = CLIPS[1]
    ruptures = [{"start": max(0.0, r["start"] - start), "end": min(end - start, r["end"] - start), "kind": r["kind"]}
                for r in truth["ruptures"] if r["start"] < end and r["end"] > start]
    path = folder / "confrontation.truth.json"
    path.write_text(json.dumps({"ruptures": ruptures}))
    return path


def single_replay(path: Path, out: Path, *extra: str) -> Path:
    """``replay PATH --speed max --no-view`` into ``out`` (the reference a batch session must equal)."""
    result = run_cli("replay", str(path), "--speed", "max", "--no-view", "--session-dir", str(out), *extra)
    assert result.returncode == 0, result.stderr
    return out
