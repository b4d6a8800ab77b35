"""Checks on the scripted demo recordings in sample_audio/ and their truth files.

The recordings are rendered by sample_audio/make_sessions.py (espeak-ng); see
sample_audio/README.md. These tests need numpy and soundfile; the reproduction
test also needs espeak-ng on PATH (skipped otherwise).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = ROOT / "sample_audio"
MAKE_SESSIONS = SAMPLE_DIR / "make_sessions.py"
TRUTH_FILES = sorted(SAMPLE_DIR.glob("*.truth.json"))

SAMPLE_RATE = 16000
ROLES = ["therapist", "patient"]
TOP_KEYS = {"session", "heldout", "duration_s", "sample_rate", "channels", "ruptures", "repairs",
            "reflective_silences", "transcript"}

# 3RS subtypes (Eubanks, Muran & Safran), as named in DESIGN.md, "3RS markers"
RUPTURE_MARKERS = {
    "withdrawal": {"denial", "minimal_response", "abstract_communication", "avoidant_storytelling",
                   "deferential_appeasing", "content_affect_split", "self_criticism_hopelessness"},
    "confrontation": {"complaint_about_therapist", "rejecting_intervention", "complaint_about_activities",
                      "complaint_about_parameters", "complaint_about_progress", "defending_self",
                      "controlling_pressuring"},
}
REPAIR_MARKERS = {"clarifying", "changing_task", "giving_rationale", "meta_communication",
                  "acknowledging_own_part", "validating"}

# name -> (heldout, rupture kinds in order)
EXPECTED_SESSIONS = {
    "demo_session": (False, ["withdrawal", "confrontation"]),
    "withdrawal_only": (False, ["withdrawal"]),
    "confrontation_repair": (False, ["confrontation"]),
    "calm_reflective": (False, []),
    "heldout_mixed": (True, ["withdrawal", "confrontation"]),
    "heldout_calm": (True, []),
}

SPEECH_MARGIN_DB = 20.0  # a turn's RMS on its own channel must be this far above the floor
SILENCE_MARGIN_DB = 3.0  # a silent stretch may be at most this far above the floor
MIN_SILENCE_S = 0.01  # shorter gaps are not measured


def _name(path: Path) -> str:
    return path.name[: -len(".truth.json")]


def _db(x: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return 20.0 * np.log10(max(rms, 1e-12))


def _idx(t: float) -> int:
    return round(t * SAMPLE_RATE)


def _load(path: Path) -> tuple[dict, np.ndarray]:
    truth = json.loads(path.read_text(encoding="utf-8"))
    audio, sr = sf.read(str(SAMPLE_DIR / f"{_name(path)}.flac"), dtype="float64", always_2d=True)
    assert sr == SAMPLE_RATE
    return truth, audio


def _noise_floor(truth: dict, audio: np.ndarray) -> np.ndarray:
    """Per-channel RMS (dBFS) of the lead-in before the first turn."""
    first = min(t["start"] for t in truth["transcript"])
    lead = audio[: _idx(first)]
    assert lead.shape[0] >= SAMPLE_RATE // 4, "need at least 0.25 s of lead-in silence to measure the floor"
    return np.array([_db(lead[:, c]) for c in range(audio.shape[1])])


@pytest.fixture(scope="module", params=TRUTH_FILES, ids=[_name(p) for p in TRUTH_FILES])
def session(request):
    truth, audio = _load(request.param)
    return request.param, truth, audio, _noise_floor(truth, audio)


def test_expected_sessions_present():
    names = {_name(p) for p in TRUTH_FILES}
    assert set(EXPECTED_SESSIONS) <= names, f"missing: {sorted(set(EXPECTED_SESSIONS) - names)}"
    for name, (heldout, kinds) in EXPECTED_SESSIONS.items():
        truth = json.loads((SAMPLE_DIR / f"{name}.truth.json").read_text(encoding="utf-8"))
        assert truth["heldout"] is heldout, name
        assert [r["kind"] for r in truth["ruptures"]] == kinds, name
        if kinds:
            assert truth["repairs"], f"{name}: a rupture session should show the therapist's repair"
        else:
            assert truth["reflective_silences"], f"{name}: a calm session should contain reflective silences"


def test_truth_format(session):
    path, truth, _, _ = session
    assert set(truth) == TOP_KEYS
    assert truth["session"] == _name(path)
    assert isinstance(truth["heldout"], bool)
    assert truth["sample_rate"] == SAMPLE_RATE
    assert truth["channels"] == ROLES
    assert 90.0 <= truth["duration_s"] <= 240.0, "sessions are 1.5-4 minutes long"
    for turn in truth["transcript"]:
        assert set(turn) == {"speaker", "start", "end", "text"}
        assert turn["speaker"] in ROLES
        assert 0.0 <= turn["start"] < turn["end"] <= truth["duration_s"]
        assert isinstance(turn["text"], str) and turn["text"].strip()
    starts = [t["start"] for t in truth["transcript"]]
    assert starts == sorted(starts), "transcript is in time order"
    assert {t["speaker"] for t in truth["transcript"]} == set(ROLES)


def test_flac_format_and_duration(session):
    path, truth, _, _ = session
    info = sf.info(str(SAMPLE_DIR / f"{_name(path)}.flac"))
    assert info.format == "FLAC"
    assert info.subtype == "PCM_16"
    assert info.samplerate == SAMPLE_RATE
    assert info.channels == 2
    assert abs(info.frames / info.samplerate - truth["duration_s"]) <= 0.010


def test_noise_floor_is_a_quiet_room(session):
    _, _, _, floor = session
    # white noise at about -65 dBFS RMS on both channels
    assert np.all((floor > -70.0) & (floor < -60.0)), floor


def test_turns_have_energy_on_their_own_channel(session):
    _, truth, audio, floor = session
    for turn in truth["transcript"]:
        ch = ROLES.index(turn["speaker"])
        level = _db(audio[_idx(turn["start"]) : _idx(turn["end"]), ch])
        assert level >= floor[ch] + SPEECH_MARGIN_DB, (
            f"{turn['speaker']} {turn['start']:.2f}-{turn['end']:.2f} {turn['text']!r}: "
            f"{level:.1f} dBFS, floor {floor[ch]:.1f} dBFS")


def test_silence_between_turns_is_noise(session):
    _, truth, audio, floor = session
    turns = truth["transcript"]
    latest_end = turns[0]["end"]
    gaps = []
    for turn in turns[1:]:
        if turn["start"] - latest_end >= MIN_SILENCE_S:  # non-overlapping neighbours
            gaps.append((latest_end, turn["start"]))
        latest_end = max(latest_end, turn["end"])
    if truth["duration_s"] - latest_end >= MIN_SILENCE_S:
        gaps.append((latest_end, truth["duration_s"]))
    assert gaps
    for a, b in gaps:
        seg = audio[_idx(a) : _idx(b)]
        for ch in range(2):
            level = _db(seg[:, ch])
            assert level <= floor[ch] + SILENCE_MARGIN_DB, (
                f"gap {a:.3f}-{b:.3f}s, {ROLES[ch]} channel: {level:.1f} dBFS, floor {floor[ch]:.1f}")


def test_no_cross_channel_bleed(session):
    """Outside its own speaker's turns, a channel holds only the noise floor."""
    _, truth, audio, floor = session
    for ch, role in enumerate(ROLES):
        mask = np.ones(audio.shape[0], dtype=bool)
        for turn in truth["transcript"]:
            if turn["speaker"] == role:
                mask[_idx(turn["start"]) : _idx(turn["end"])] = False
        rest = audio[mask, ch]
        assert _db(rest) <= floor[ch] + 1.0, role
        # no speech-like peaks hiding in it: 50 ms windows all stay near the floor
        n = rest.size // 800 * 800
        win = np.sqrt(np.mean(rest[:n].reshape(-1, 800) ** 2, axis=1))
        assert 20 * np.log10(win.max()) <= floor[ch] + 3.0, role


def test_annotations_valid(session):
    _, truth, audio, floor = session
    dur = truth["duration_s"]
    for r in truth["ruptures"]:
        assert set(r) == {"start", "end", "kind", "marker", "note"}
        assert 0.0 <= r["start"] < r["end"] <= dur
        assert r["kind"] in RUPTURE_MARKERS, r
        assert r["marker"] in RUPTURE_MARKERS[r["kind"]], r
        assert isinstance(r["note"], str)
        # it ends at the end of a patient turn
        assert any(t["speaker"] == "patient" and t["end"] == r["end"] for t in truth["transcript"]), r
    for r in truth["repairs"]:
        assert set(r) == {"start", "end", "marker", "note"}
        assert 0.0 <= r["start"] < r["end"] <= dur
        assert r["marker"] in REPAIR_MARKERS, r
        assert any(t["speaker"] == "therapist" and t["start"] <= r["start"] < t["end"]
                   for t in truth["transcript"]), f"repair is spoken by the therapist: {r}"
    for s in truth["reflective_silences"]:
        assert set(s) == {"start", "end", "note"}
        assert 0.0 <= s["start"] < s["end"] <= dur
        assert s["end"] - s["start"] >= 2.0
        seg = audio[_idx(s["start"]) : _idx(s["end"])]
        for ch in range(2):
            assert _db(seg[:, ch]) <= floor[ch] + SILENCE_MARGIN_DB, s
    spans = sorted((r["start"], r["end"]) for r in truth["ruptures"])
    for (_, e1), (s2, _) in itertools.pairwise(spans):
        assert e1 <= s2, "rupture episodes do not overlap"


def _espeak_version() -> str | None:
    if shutil.which("espeak-ng") is None:
        return None
    out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=False).stdout.split()
    return out[out.index("text-to-speech:") + 1] if "text-to-speech:" in out else "?"


def _rendered_with() -> str:
    for line in MAKE_SESSIONS.read_text(encoding="utf-8").splitlines():
        if line.startswith("ESPEAK_VERSION"):
            return line.split("=", 1)[1].split("#")[0].strip().strip("\"'")
    return "?"


def test_make_sessions_reproduces_bytes(tmp_path):
    version = _espeak_version()
    if version is None:
        pytest.skip("espeak-ng is not on PATH: cannot re-render the sample sessions")
    if version != _rendered_with():
        pytest.skip(f"espeak-ng {version} differs from {_rendered_with()} used for the committed files; "
                    "byte-identical output is only promised with the same espeak-ng")
    name = "heldout_calm"
    proc = subprocess.run([sys.executable, str(MAKE_SESSIONS), "--out", str(tmp_path), name],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / f"{name}.truth.json").read_bytes() == (SAMPLE_DIR / f"{name}.truth.json").read_bytes()
    new, old = tmp_path / f"{name}.flac", SAMPLE_DIR / f"{name}.flac"
    if new.read_bytes() != old.read_bytes():
        same_pcm = np.array_equal(sf.read(str(new), dtype="int16")[0], sf.read(str(old), dtype="int16")[0])
        pytest.fail(f"{name}.flac differs from the committed file "
                    + ("(same samples: a different FLAC encoder, libsndfile "
                       f"{sf.__libsndfile_version__})" if same_pcm else "(different samples)"))


def test_make_sessions_without_espeak_exits_2(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))  # an empty folder: no espeak-ng
    proc = subprocess.run([sys.executable, str(MAKE_SESSIONS), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, env=env, timeout=60, check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "espeak-ng" in lines[0]
    assert not (tmp_path / "out").exists()
