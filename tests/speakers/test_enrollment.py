"""`session-monitor enroll`: a therapist voice profile beside the clinician profile."""

from __future__ import annotations

import shutil
import stat

import numpy as np
import pytest

from session_monitor.errors import ConfigError
from session_monitor.settings.loader import load_settings
from session_monitor.speakers.enrollment import load_voice_profile, save_voice_profile, voice_profile_path
from support.audio import ROOT, SAMPLE_AUDIO, SR, shared_file
from support.cli import run_cli


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A folder with its own configs/ (no clinicians yet), used as the current folder."""
    shutil.copytree(ROOT / "configs", tmp_path / "configs", ignore=shutil.ignore_patterns("clinicians"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="module")
def therapist_wav(tmp_path_factory):
    """The therapist channel of a sample session: 30+ s of one voice."""
    import soundfile as sf

    data, rate = sf.read(SAMPLE_AUDIO / "calm_reflective.flac", dtype="float32")
    path = tmp_path_factory.mktemp("enrol") / "therapist.wav"
    sf.write(path, data[:, 0], rate)
    return path


def test_enrol_writes_a_private_profile_beside_the_clinician_profile(workdir, therapist_wav):
    result = run_cli("enroll", "--clinician", "ana", str(therapist_wav), cwd=workdir)
    assert result.returncode == 0, result.stderr
    profile = workdir / "configs" / "clinicians" / "ana.voice.npz"
    assert result.stdout.strip() == str(profile)
    assert stat.S_IMODE(profile.stat().st_mode) == 0o600
    assert (workdir / "configs" / "clinicians" / "ana.toml").is_file()  # so that --clinician ana works
    loaded = load_voice_profile(profile)
    assert 20.0 <= loaded.speech_s <= 60.0 + 1.0
    assert loaded.stats.n > 1000 and loaded.novelty_threshold > 0
    # a session with --clinician ana finds it
    settings = load_settings(clinician="ana")
    assert voice_profile_path(settings) == profile
    # same recording, same profile (deterministic)
    again = run_cli("enroll", "--clinician", "ana", str(therapist_wav), "--force", cwd=workdir)
    assert again.returncode == 0, again.stderr
    np.testing.assert_array_equal(load_voice_profile(profile).stats.s2, loaded.stats.s2)


def test_existing_profile_needs_force(workdir, therapist_wav):
    assert run_cli("enroll", "--clinician", "ana", str(therapist_wav), cwd=workdir).returncode == 0
    result = run_cli("enroll", "--clinician", "ana", str(therapist_wav), cwd=workdir)
    assert result.returncode == 2
    assert "--force" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args, message", [
    (["--clinician", "../ana", "X"], "plain name"),
    (["--clinician", "ana"], "FILE or --device"),
    (["--clinician", "ana", "X", "--device", "0"], "FILE or --device"),
    (["--clinician", "ana", "missing.wav"], "no such file"),
    (["--clinician", "ana", "--device", "0", "--duration", "-3"], "above 0"),
])
def test_bad_input_is_one_line_and_exit_2(workdir, therapist_wav, args, message):
    args = [str(therapist_wav) if a == "X" else a for a in args]
    result = run_cli("enroll", *args, cwd=workdir)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_too_little_speech_is_refused(workdir):
    result = run_cli("enroll", "--clinician", "bob", str(shared_file("jfk.flac")), cwd=workdir)
    assert result.returncode == 2
    assert "at least 20 s" in result.stderr
    assert not (workdir / "configs" / "clinicians" / "bob.voice.npz").exists()


def test_silence_is_refused(workdir, tmp_path):
    import soundfile as sf

    path = tmp_path / "quiet.wav"
    sf.write(path, np.zeros(SR * 30, dtype=np.float32), SR)
    result = run_cli("enroll", "--clinician", "bob", str(path), cwd=workdir)
    assert result.returncode == 2 and "found 0.0 s" in result.stderr


def test_broken_or_missing_profiles_are_config_errors(workdir, therapist_wav):
    clinicians = workdir / "configs" / "clinicians"
    clinicians.mkdir()
    (clinicians / "eve.toml").write_text("")
    (clinicians / "eve.voice.npz").write_bytes(b"not a profile")
    with pytest.raises(ConfigError, match="not a voice profile"):
        load_voice_profile(clinicians / "eve.voice.npz")
    mono = workdir / "mono.wav"
    shutil.copy(therapist_wav, mono)
    result = run_cli("replay", str(mono), "--clinician", "eve", "--no-asr", "--no-view",
                     "--session-dir", str(workdir / "s"), cwd=workdir)
    assert result.returncode == 2 and "enrol again" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    missing = load_settings(overrides={"attribution": {"voice_profile": "nowhere.voice.npz"}})
    with pytest.raises(ConfigError, match="no such file"):
        voice_profile_path(missing)


def test_profile_round_trip(tmp_path):
    from session_monitor.speakers.enrollment import VoiceProfile
    from session_monitor.speakers.voice_features import GaussianStats

    x = np.random.default_rng(0).standard_normal((500, 19))
    profile = VoiceProfile(GaussianStats.of(x), 7.5, 42.0)
    path = tmp_path / "p.voice.npz"
    save_voice_profile(profile, path)
    back = load_voice_profile(path)
    assert back.novelty_threshold == 7.5 and back.speech_s == 42.0
    np.testing.assert_allclose(back.stats.s1, profile.stats.s1)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_quiet_wait_after_the_reading_changes_nothing_in_the_profile(therapist_wav):
    """Frames are chosen as in a session, where each segment is judged with the floor of its own
    time: room noise recorded after the reading (a clinician who stops talking before the end of
    ``--duration``) must not change which frames of the reading count as voice."""
    import soundfile as sf

    from session_monitor.speakers.enrollment import enrol

    settings = load_settings()
    samples, rate = sf.read(therapist_wav, dtype="float32")
    assert rate == SR
    quiet = np.sort(np.convolve(samples ** 2, np.ones(512) / 512, mode="valid"))[len(samples) // 20]
    room = (np.random.default_rng(0).standard_normal(30 * SR) * np.sqrt(quiet)).astype(np.float32)
    alone, waited = enrol(samples, settings), enrol(np.concatenate([samples, room]), settings)
    assert waited.speech_s == pytest.approx(alone.speech_s, abs=1e-9)
    np.testing.assert_allclose(waited.stats.s2, alone.stats.s2, rtol=1e-9)
