"""The rupture model on the demo sessions, through the full pipeline (Whisper, VAD, prosody).

Each session in sample_audio/ is replayed once (module-scoped) into a temporary
session folder, then evaluated against its truth file. The sessions that tuned the
default weights must meet the product's criteria: every planted rupture alerted
within 5 s of its annotated start with the right kind, at most one false alarm per
10 minutes, no alert in the calm session. The held-out sessions (``heldout_*``)
were not used for tuning; they are checked for detection and false alarms, and
their delays are reported in docs/rupture_model.md.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from session_monitor.cli.main import main
from session_monitor.clinician.metrics import alert_episodes, evaluate, load_annotations
from session_monitor.event_log import read_events
from session_monitor.settings.loader import EvaluateSettings

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
AUDIO = ROOT / "sample_audio"
TUNING = ["demo_session", "withdrawal_only", "confrontation_repair", "calm_reflective"]
HELDOUT = ["heldout_mixed", "heldout_calm"]
STRICT = EvaluateSettings(tolerance_s=5.0, match_kind=True)


def _available(names):
    return [n for n in names if (AUDIO / f"{n}.flac").is_file() and (AUDIO / f"{n}.truth.json").is_file()]


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    """name -> session folder, each session replayed once at --speed max."""
    out = {}
    for name in _available(TUNING + HELDOUT):
        folder = tmp_path_factory.mktemp(name)
        code = main(["replay", str(AUDIO / f"{name}.flac"), "--session-dir", str(folder), "--force",
                     "--no-view"])
        assert code == 0, f"replay of {name} failed"
        out[name] = folder
    return out


def _truth(name):
    return json.loads((AUDIO / f"{name}.truth.json").read_text(encoding="utf-8"))


def _first_alert_after(alerts, rupture):
    matching = [a for a in alerts if a.kind == rupture.kind and a.start <= rupture.end + STRICT.tolerance_s
                and a.end >= rupture.start]
    return min((a.start for a in matching), default=None)


@pytest.mark.parametrize("name", _available(TUNING))
def test_every_planted_rupture_alerts_within_5_s_with_its_kind(replayed, name):
    ruptures = load_annotations(AUDIO / f"{name}.truth.json")
    alerts, _ = alert_episodes(read_events(replayed[name]))
    for rupture in ruptures:
        start = _first_alert_after(alerts, rupture)
        assert start is not None, f"{name}: {rupture.kind} rupture at {rupture.start:.1f} s not alerted"
        assert start - rupture.start <= 5.0, f"{name}: alert {start - rupture.start:.1f} s after the start"


@pytest.mark.parametrize("name", _available(TUNING + HELDOUT))
def test_at_most_one_false_alarm_per_10_minutes(replayed, name):
    result = evaluate(replayed[name], AUDIO / f"{name}.truth.json", STRICT)
    assert result["false_alarms_per_hour"] <= 6.0
    assert result["recall"] in (None, 1.0)  # every rupture detected (within the tolerance), right kind


@pytest.mark.parametrize("name", [n for n in _available(TUNING + HELDOUT) if "calm" in n])
def test_calm_session_raises_no_alert(replayed, name):
    assert _truth(name)["ruptures"] == []
    events = read_events(replayed[name])
    assert [e for e in events if e["type"] == "alert"] == []
    assert max(e["likelihood"] for e in events if e["type"] == "signal") < 0.5


@pytest.mark.parametrize("name", _available(TUNING))
def test_signal_steady_and_explained(replayed, name):
    events = read_events(replayed[name])
    signals = [e for e in events if e["type"] == "signal"]
    times = [s["t"] for s in signals]
    assert max(b - a for a, b in itertools.pairwise(times)) <= 0.5  # >= 2 Hz of session time
    for m in (e for e in events if e["type"] == "marker"):
        assert m["explanation"] and m["kind"] in ("withdrawal", "confrontation", "repair")
    for ep in (e for e in events if e["type"] == "episode"):
        assert ep["subtypes"] and ep["peak_likelihood"] >= 0.5


def test_repairs_are_recorded_on_episodes(replayed):
    if "confrontation_repair" not in replayed:
        pytest.skip("confrontation_repair not rendered")
    episodes = [e for e in read_events(replayed["confrontation_repair"]) if e["type"] == "episode"]
    assert [e["kind"] for e in episodes] == ["confrontation"]
    assert episodes[0]["repaired"] and "acknowledging_own_part" in episodes[0]["repair_markers"]


def test_one_speakers_segments_never_overlap(replayed):
    """A segment's start is refined back to where the energy rose and the one before it's end
    forward to where it fell: across a 200 ms pause the two met (heldout_mixed: a patient segment
    from 31.95 s after one to 32.10 s; 11 of 2,635 segments in one test run). Each speaker's
    segments follow each other, exactly."""
    for name, folder in replayed.items():
        ends: dict[str, float] = {}
        for e in read_events(folder):
            if e["type"] == "speech":
                assert e["start"] >= ends.get(e["speaker"], 0.0), (name, e, ends)
                ends[e["speaker"]] = e["end"]
