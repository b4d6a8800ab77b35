"""Fusion: weights, caps, fading, repair, hysteresis, signal rate, episodes."""

from __future__ import annotations

import dataclasses
import itertools
import math

import pytest

from session_monitor.errors import ConfigError
from session_monitor.events import Alert, Episode, Marker, Signal, event_from_dict, event_to_dict
from session_monitor.rupture.episodes import EpisodeTracker
from session_monitor.rupture.fusion import Fusion
from session_monitor.settings.loader import load_settings

SETTINGS = load_settings().fusion


def marker(t, kind="withdrawal", name="minimal_response", strength=1.0, speaker="patient", cue="timing"):
    return Marker(t=t, speaker=speaker, kind=kind, marker=name, strength=strength, start=t - 1, end=t,
                  explanation=f"{name} at {t}", cue=cue)


def drive(fusion, until, *, step=0.096, start=0.0, feed=()):
    """Tick ``fusion`` from ``start`` to ``until``; ``feed`` holds markers added at their time."""
    pending = sorted(feed, key=lambda m: m.t)
    out = []
    k = round(start / step) + 1
    while k * step <= until + 1e-9:
        t = k * step
        while pending and pending[0].t <= t:
            fusion.add(pending.pop(0))
        out += fusion.tick(t)
        k += 1
    return out


def test_single_cue_never_alerts_whatever_its_strength():
    fusion = Fusion(SETTINGS)
    out = drive(fusion, 30, feed=[marker(5.0, strength=1.0)])
    assert SETTINGS.cue_cap < SETTINGS.alert_on
    assert not [e for e in out if isinstance(e, Alert)]
    assert max(e.withdrawal for e in out if isinstance(e, Signal)) == pytest.approx(SETTINGS.cue_cap, abs=0.01)


def test_two_cues_alert_with_the_right_kind_then_hysteresis_turns_it_off():
    fusion = Fusion(SETTINGS)
    out = drive(fusion, 60, feed=[marker(5.0), marker(5.0, name="lowered_voice", cue="prosody")])
    alerts = [e for e in out if isinstance(e, Alert)]
    assert [(a.state, a.kind) for a in alerts] == [("on", "withdrawal"), ("off", "withdrawal")]
    assert alerts[0].t == pytest.approx(5.088, abs=0.1)
    # off: the score fell below alert_off and stayed there for off_hold_s
    signals = [e for e in out if isinstance(e, Signal)]
    below = [s.t for s in signals if s.t > alerts[0].t and s.withdrawal < SETTINGS.alert_off]
    assert alerts[1].t - below[0] == pytest.approx(SETTINGS.off_hold_s, abs=0.3)


def test_noisy_or_of_two_cues():
    fusion = Fusion(SETTINGS)
    drive(fusion, 5.1, feed=[marker(5.0, strength=0.5), marker(5.0, kind="withdrawal", name="denial",
                                                                 strength=0.5, cue="lexical")])
    fade = math.exp(-(5.088 - 5.0) / SETTINGS.evidence_tau_s)  # added at the first tick after t
    c1 = SETTINGS.timing_weight * 0.5 * fade
    c2 = SETTINGS.lexical_weight * 0.5 * fade
    assert fusion.raw["withdrawal"] == pytest.approx(1 - (1 - c1) * (1 - c2), abs=1e-6)
    assert fusion.raw["confrontation"] == 0.0


def test_evidence_fades_with_its_time_constant():
    fusion = Fusion(SETTINGS)
    drive(fusion, 5.088, feed=[marker(5.0, strength=0.5)])
    e0 = fusion.evidence["withdrawal"]
    drive(fusion, 5.088 + SETTINGS.evidence_tau_s, start=5.088)
    assert fusion.evidence["withdrawal"] == pytest.approx(e0 / math.e, rel=0.02)


def test_evidence_saturates_at_max_score():
    fusion = Fusion(SETTINGS)
    drive(fusion, 6.95, feed=[marker(5.0 + 0.1 * i, name=f"m{i}") for i in range(20)])
    assert fusion.raw["withdrawal"] == pytest.approx(SETTINGS.max_score, abs=1e-6)


def test_therapist_contributions_are_capped_lower():
    fusion = Fusion(SETTINGS)
    m = marker(1.0, kind="confrontation", name="therapist_directive", speaker="therapist", cue="lexical")
    assert fusion.weight_of(m) == pytest.approx(min(SETTINGS.therapist_cap, SETTINGS.therapist_weight))


def test_therapist_contributions_together_stay_below_alert_on_but_join_patient_evidence():
    """However many, therapist markers saturate at therapist_max_score (< alert_on); with one
    capped patient cue beside them the score is their noisy-OR."""
    assert SETTINGS.therapist_max_score < SETTINGS.alert_on
    ther = [marker(5.0 + 0.2 * i, kind="confrontation", name=f"t{i}", speaker="therapist", cue="classifier")
            for i in range(30)]
    fusion = Fusion(SETTINGS)
    out = drive(fusion, 12.0, feed=ther)
    assert not [e for e in out if isinstance(e, Alert)]
    assert max(e.confrontation for e in out if isinstance(e, Signal)) == pytest.approx(
        SETTINGS.therapist_max_score, abs=1e-6)
    fusion = Fusion(SETTINGS)
    patient = marker(11.0, kind="confrontation", name="rejecting_intervention", cue="lexical")
    drive(fusion, 11.05, feed=[*ther, patient])
    expected = 1 - (1 - SETTINGS.therapist_max_score) * (1 - SETTINGS.cue_cap)
    assert fusion.raw["confrontation"] == pytest.approx(expected, abs=0.01)
    assert fusion.raw["confrontation"] >= SETTINGS.alert_on


def test_therapist_max_score_must_be_below_alert_on(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[fusion]\ntherapist_max_score = 0.5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="therapist_max_score must be below fusion.alert_on"):
        load_settings(path)


def test_repair_lowers_both_scores():
    plain, repaired = Fusion(SETTINGS), Fusion(SETTINGS)
    cues = [marker(5.0), marker(5.0, name="lowered_voice", cue="prosody")]
    drive(plain, 8, feed=cues)
    drive(repaired, 8, feed=cues + [marker(6.0, kind="repair", name="validating", speaker="therapist",
                                            cue="lexical")])
    r = SETTINGS.repair_weight * 1.0 * math.exp(-2.016 / SETTINGS.repair_tau_s)
    assert repaired.raw["withdrawal"] == pytest.approx(plain.raw["withdrawal"] * (1 - SETTINGS.repair_damping * r),
                                                       rel=0.02)


def test_engaged_turn_discounts_evidence():
    fusion = Fusion(SETTINGS)
    drive(fusion, 6, feed=[marker(5.0)])
    before = fusion.evidence["withdrawal"]
    fusion.engaged()
    assert fusion.evidence["withdrawal"] == pytest.approx(before * SETTINGS.engaged_factor)


def test_signal_rate_and_top_evidence():
    fusion = Fusion(SETTINGS)
    out = drive(fusion, 20, feed=[marker(5.0, strength=0.3), marker(6.0, name="lowered_voice", cue="prosody"),
                                  marker(7.0, kind="confrontation", name="raised_voice", cue="prosody",
                                         strength=0.5),
                                  marker(7.5, kind="confrontation", name="denial", cue="lexical", strength=0.1)])
    signals = [e for e in out if isinstance(e, Signal)]
    gaps = [b.t - a.t for a, b in itertools.pairwise(signals)]
    assert max(gaps) <= 0.5  # >= 2 Hz
    assert len(signals) / 20 >= SETTINGS.signal_hz * 0.95
    s = next(s for s in signals if s.t >= 8)
    assert len(s.evidence) == SETTINGS.evidence_top_n
    values = [e["contribution"] for e in s.evidence]
    assert values == sorted(values, reverse=True)
    assert s.evidence[0]["marker"] == "lowered_voice"
    for item in s.evidence:
        assert {"marker", "kind", "strength", "explanation", "speaker", "t"} <= set(item)
    assert s.likelihood == max(s.withdrawal, s.confrontation)


def test_finish_closes_open_alerts():
    fusion = Fusion(SETTINGS)
    drive(fusion, 6, feed=[marker(5.0), marker(5.0, name="lowered_voice", cue="prosody")])
    assert fusion.finish(6.0) == [Alert(t=6.0, state="off", kind="withdrawal")]


def test_alert_off_must_be_below_alert_on(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[fusion]\nalert_on = 0.4\nalert_off = 0.5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="fusion.alert_off must be below fusion.alert_on"):
        load_settings(path)


def test_fusion_settings_out_of_range(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[fusion]\nalert_on = 1.4\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"fusion.alert_on=1.4 is out of range; use 0..1"):
        load_settings(path)


def test_clinician_override_changes_behaviour(tmp_path):
    path = tmp_path / "sensitive.toml"
    path.write_text("[fusion]\ncue_cap = 0.6\ntiming_weight = 1.0\n", encoding="utf-8")
    fusion = Fusion(load_settings(path).fusion)
    out = drive(fusion, 8, feed=[marker(5.0, strength=1.0)])
    assert [a.state for a in out if isinstance(a, Alert)] == ["on"]


# -- episodes ---------------------------------------------------------------------------------------


def test_episode_records_peak_subtypes_and_repair():
    tracker = EpisodeTracker(grace_s=10.0)
    cue = marker(4.0)
    assert tracker.alert("withdrawal", "on", 5.0) == []
    tracker.update(5.0, {"withdrawal": 0.6, "confrontation": 0.0}, [(0.4, cue)])
    tracker.update(6.0, {"withdrawal": 0.8, "confrontation": 0.0},
                   [(0.38, cue), (0.3, marker(6.0, name="denial", cue="lexical"))])
    tracker.alert("withdrawal", "off", 20.0)
    tracker.marker(marker(25.0, kind="repair", name="validating", speaker="therapist"))
    assert tracker.tick(29.0) == []
    (ep,) = tracker.tick(30.0)
    assert ep == Episode(t=30.0, kind="withdrawal", start=5.0, end=20.0, peak_t=6.0, peak_likelihood=0.8,
                         subtypes=("minimal_response", "denial"), repaired=True, repair_t=25.0,
                         repair_markers=("validating",))
    assert event_from_dict(event_to_dict(ep)) == dataclasses.replace(ep, peak_likelihood=0.8)


def test_episode_without_repair_and_at_session_end():
    tracker = EpisodeTracker(grace_s=10.0)
    tracker.alert("confrontation", "on", 5.0)
    (ep,) = tracker.finish(12.0)
    assert ep.kind == "confrontation" and ep.end == 12.0 and not ep.repaired and ep.repair_t is None
