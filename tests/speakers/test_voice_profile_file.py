"""The voice enrolment file is checked as a whole: random archives are read or refused in one line."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from session_monitor.errors import ConfigError
from session_monitor.speakers.enrollment import FEATURES_VERSION, VOICE_PROFILE_SCHEMA, load_voice_profile
from session_monitor.speakers.voice_features import N_COEFFS

GOOD = {"version": np.int64(FEATURES_VERSION), "n": np.float64(400.0), "s1": np.zeros(N_COEFFS),
        "s2": np.eye(N_COEFFS), "novelty_threshold": np.float64(2.5), "speech_s": np.float64(30.0)}


def save(path, arrays: dict) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def test_a_good_profile_reads_back(tmp_path):
    save(tmp_path / "v.npz", GOOD)
    profile = load_voice_profile(tmp_path / "v.npz")
    assert profile.stats.n == 400.0 and profile.novelty_threshold == 2.5 and profile.speech_s == 30.0


@pytest.mark.parametrize("change, pattern", [
    ({"s1": np.zeros(N_COEFFS + 1)}, r"s1 has shape \(20,\)"),
    ({"s2": np.full((N_COEFFS, N_COEFFS), np.nan)}, "s2 holds NaN"),
    ({"n": np.float64(0.0)}, "n holds values below"),
    ({"novelty_threshold": np.array("high")}, "novelty_threshold holds str"),
    ({"extra": np.zeros(2)}, "unknown key extra"),
    ({"version": np.int64(FEATURES_VERSION + 7)}, "of another version"),
])
def test_a_damaged_profile_names_what_is_wrong(tmp_path, change, pattern):
    save(tmp_path / "v.npz", {**GOOD, **change})
    with pytest.raises(ConfigError, match=pattern) as info:
        load_voice_profile(tmp_path / "v.npz")
    assert "\n" not in str(info.value) and "enrol again" in str(info.value)


def test_a_broken_archive_is_one_line(tmp_path):
    path = tmp_path / "v.npz"
    save(path, GOOD)
    path.write_bytes(path.read_bytes()[:200])  # a zip cut short
    with pytest.raises(ConfigError, match="not a voice profile"):
        load_voice_profile(path)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("s1.npy", b"junk")
    with pytest.raises(ConfigError, match="voice profile"):
        load_voice_profile(path)


arrays = hnp.arrays(dtype=st.sampled_from([np.float64, np.float32, np.int64, np.bool_, np.uint8]),
                    shape=hnp.array_shapes(min_dims=0, max_dims=2, max_side=N_COEFFS + 1))
archives = st.dictionaries(st.sampled_from(sorted(VOICE_PROFILE_SCHEMA.fields) + ["other"]), arrays, max_size=7)


@hsettings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.one_of(archives, st.fixed_dictionaries({k: st.just(v) for k, v in GOOD.items()}).flatmap(
    lambda good: st.dictionaries(st.sampled_from(sorted(GOOD)), arrays, max_size=2).map(lambda c: {**good, **c}))))
def test_any_archive_is_a_profile_or_a_one_line_refusal(tmp_path_factory, content):
    path = tmp_path_factory.mktemp("voice") / "v.npz"
    save(path, content)
    try:
        profile = load_voice_profile(path)
    except ConfigError as exc:
        assert "\n" not in str(exc) and "v.npz" in str(exc)
        return
    assert profile.stats.s1.shape == (N_COEFFS,) and profile.stats.s2.shape == (N_COEFFS, N_COEFFS)
    assert profile.stats.n > 0 and np.all(np.isfinite(profile.stats.s2))
