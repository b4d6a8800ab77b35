"""The settings' sections: one frozen dataclass per TOML section, each field with its
allowed range (``rng``). Loading and checking them is :mod:`session_monitor.settings.loader`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Settings",
    "AudioSettings",
    "SpeechActivitySettings",
    "ProsodySettings",
    "TranscriberSettings",
    "SessionSettings",
    "PrivacySettings",
    "RolesSettings",
    "EvidenceSettings",
    "UtteranceSettings",
    "FusionSettings",
    "EvaluateSettings",
    "AttributionSettings",
    "BatchSettings",
    "BleedSettings",
    "InputHealthSettings",
    "TwoDeviceSettings",
    "CallEchoSettings",
    "DisplaySettings",
    "ClinicianProfile",
    "NOT_SECTIONS",
    "rng",
]

#: Fields of :class:`Settings` that are not TOML sections.
NOT_SECTIONS = ("sources", "digest", "clinician")


def rng(lo: float | None = None, hi: float | None = None, *, choices: tuple = ()) -> Any:
    """A required dataclass field with an allowed range or set of choices."""
    return field(metadata={"lo": lo, "hi": hi, "choices": choices})


@dataclass(frozen=True)
class AudioSettings:
    block_ms: int = rng(20, 1000)
    queue_s: float = rng(1, 120)
    capture_rate: int = rng(0, 192000)
    capture_block_ms: int = rng(5, 200)
    give_up_after_s: float = rng(0, 86400)


@dataclass(frozen=True)
class SpeechActivitySettings:
    threshold: float = rng(0.0, 1.0)
    neg_threshold: float = rng(0.0, 1.0)
    energy_floor_db: float = rng(-120, 0)
    floor_mode: str = rng(choices=("fixed", "tracked"))
    noise_margin_db: float = rng(0, 60)
    continue_margin_db: float = rng(0, 60)
    noise_window_s: float = rng(1, 120)
    noise_percentile: float = rng(0, 50)
    speech_percentile: float = rng(50, 100)
    margin_snr_share: float = rng(0, 1)
    noise_rise_db_per_s: float = rng(0, 60)
    min_speech_ms: int = rng(0, 2000)
    min_pause_ms: int = rng(50, 5000)
    utterance_end_ms: int = rng(100, 10000)
    max_utterance_s: float = rng(2, 60)
    refine_ms: int = rng(0, 200)


@dataclass(frozen=True)
class ProsodySettings:
    hop_ms: int = rng(5, 50)
    frame_ms: int = rng(10, 100)
    features_hz: float = rng(0.5, 100)
    baseline_tau_s: float = rng(1, 3600)
    baseline_min_s: float = rng(0, 600)
    fmin_hz: float = rng(40, 400)
    fmax_hz: float = rng(100, 1000)
    yin_threshold: float = rng(0.01, 1.0)
    pitch: str = rng(choices=("yin", "librosa"))
    talk_window_s: float = rng(5, 3600)
    syllable_prominence_db: float = rng(0.5, 20)


@dataclass(frozen=True)
class TranscriberSettings:
    enabled: bool = rng()
    model: str = rng()
    allow_download: bool = rng()
    device: str = rng(choices=("cpu", "cuda", "auto"))
    compute_type: str = rng()
    cpu_threads: int = rng(0, 64)
    beam_size: int = rng(1, 10)
    language: str = rng()
    no_speech_threshold: float = rng(0.0, 1.0)
    logprob_threshold: float = rng(-10.0, 0.0)
    compression_ratio_threshold: float = rng(1.0, 10.0)
    max_repeats: int = rng(2, 50)
    queue_size: int = rng(1, 1000)
    interim_every_s: float = rng(0, 60)
    pad_ms: int = rng(0, 1000)
    max_lookahead_s: float = rng(1, 600)
    early_final: bool = rng()
    batch_s: float = rng(0, 30)
    drop_phrases: tuple[str, ...] = rng()


@dataclass(frozen=True)
class SessionSettings:
    root: str = rng()
    store_audio: bool = rng()
    write_events: bool = rng()


@dataclass(frozen=True)
class PrivacySettings:
    store_transcript: bool = rng()


@dataclass(frozen=True)
class RolesSettings:
    stereo: tuple[str, ...] = rng()
    mono: str = rng(choices=("unknown", "therapist", "patient"))


@dataclass(frozen=True)
class EvidenceSettings:
    """Rules that turn timing, prosody and words into 3RS evidence (see docs/rupture_model.md)."""

    markers_file: str = rng()
    latency_min_s: float = rng(0.2, 30)
    latency_ratio: float = rng(1, 20)
    latency_baseline_n: int = rng(1, 500)
    statement_factor: float = rng(0, 1)
    minimal_words: int = rng(1, 20)
    voice_min_speech_s: float = rng(0.1, 5)
    voice_drop_db: float = rng(0.5, 30)
    voice_rise_db: float = rng(0.5, 30)
    pitch_rise_st: float = rng(0.5, 12)
    voice_spread_factor: float = rng(0, 10)
    voice_alone_factor: float = rng(0, 1)
    voice_words_wait_s: float = rng(1, 120)
    rate_drop_ratio: float = rng(0.1, 1)
    baseline_n: int = rng(1, 500)
    baseline_min_n: int = rng(1, 100)
    interrupt_min_s: float = rng(0, 10)
    share_window_s: float = rng(10, 600)
    share_drop_ratio: float = rng(0, 1)
    share_min_history_s: float = rng(0, 3600)
    share_reply_ratio: float = rng(0, 1)
    question_rise_st: float = rng(0.5, 12)
    lecture_s: float = rng(5, 600)
    dominance_share: float = rng(0.5, 1)
    reflection_turns: int = rng(2, 100)
    repeat_s: float = rng(1, 600)


@dataclass(frozen=True)
class UtteranceSettings:
    """The utterance classifiers' evidence (rupture/utterance_evidence.py, docs/rupture_model.md)."""

    enabled: bool = rng()
    model_file: str = rng()
    whole_turn: bool = rng()
    sustain_min_p: float = rng(0, 1)
    sustain_weight: float = rng(0, 2)
    context_s: float = rng(0, 120)
    no_context_factor: float = rng(0, 1)
    not_after_input_factor: float = rng(0, 1)
    therapist_min_p: float = rng(0, 1)
    therapist_strength: float = rng(0, 1)
    input_strength: float = rng(0, 1)
    input_reflection_turns: int = rng(1, 50)
    window_turns: int = rng(2, 50)
    input_min: int = rng(1, 50)
    closed_run: int = rng(2, 50)
    repeat_s: float = rng(1, 600)


@dataclass(frozen=True)
class FusionSettings:
    """Weighted evidence -> withdrawal/confrontation scores -> likelihood, alerts."""

    signal_hz: float = rng(2, 50)
    evidence_tau_s: float = rng(1, 600)
    repair_tau_s: float = rng(1, 600)
    cue_cap: float = rng(0, 1)
    therapist_cap: float = rng(0, 1)
    therapist_max_score: float = rng(0, 0.999)
    therapist_tau_s: float = rng(1, 600)
    lexical_weight: float = rng(0, 2)
    timing_weight: float = rng(0, 2)
    prosody_weight: float = rng(0, 2)
    turn_taking_weight: float = rng(0, 2)
    classifier_weight: float = rng(0, 2)
    therapist_weight: float = rng(0, 2)
    repair_weight: float = rng(0, 2)
    repair_damping: float = rng(0, 1)
    max_score: float = rng(0.01, 0.999)
    engaged_factor: float = rng(0, 1)
    attack_s: float = rng(0, 60)
    release_s: float = rng(0, 600)
    alert_on: float = rng(0, 1)
    alert_off: float = rng(0, 1)
    off_hold_s: float = rng(0, 600)
    evidence_top_n: int = rng(1, 20)
    episode_repair_grace_s: float = rng(0, 600)


@dataclass(frozen=True)
class EvaluateSettings:
    """How alert episodes are scored against annotated rupture intervals."""

    tolerance_s: float = rng(0, 600)
    match_kind: bool = rng()


@dataclass(frozen=True)
class BatchSettings:
    """The local worker pool of ``session-monitor batch`` (benchmarks/batch.py measured the split)."""

    workers: int = rng(0, 256)
    asr_threads: int = rng(0, 64)
    in_flight_per_worker: int = rng(1, 16)


@dataclass(frozen=True)
class AttributionSettings:
    """Who speaks on a single microphone (see docs/attribution.md)."""

    enabled: bool = rng()
    embedding: str = rng(choices=("mfcc", "ge2e"))
    chunk_s: float = rng(0.3, 5)
    min_chunk_s: float = rng(0.1, 5)
    context_s: float = rng(0, 2)
    min_confidence: float = rng(0.5, 1)
    change_confidence: float = rng(0.5, 1)
    lookahead_chunks: int = rng(0, 10)
    new_voice_similarity: float = rng(0, 1)
    new_voice_similarity_enrolled: float = rng(0, 1)
    new_voice_spread: float = rng(0, 10)
    confidence_scale: float = rng(1, 200)
    one_voice_confidence: float = rng(0.5, 1)
    enrolled_weight: float = rng(0, 1000)
    unenrolled_therapist: str = rng(choices=("first", "second"))
    voice_profile: str = rng()
    enrol_min_s: float = rng(5, 600)
    enrol_max_s: float = rng(5, 600)
    voice_margin_db: float = rng(0, 60)


@dataclass(frozen=True)
class BleedSettings:
    """Two channels judged together: bleed from the other microphone, dual mono (speech/bleed.py)."""

    enabled: bool = rng()
    min_level_diff_db: float = rng(0, 40)
    min_coherence: float = rng(0, 1)
    own_residual_db: float = rng(0, 60)
    max_lag_ms: float = rng(0, 30)
    dual_mono_coherence: float = rng(0, 1)
    dual_mono_max_diff_db: float = rng(0, 20)
    dual_mono_window_s: float = rng(0.5, 60)
    dual_mono_min_share: float = rng(0, 1)


@dataclass(frozen=True)
class DisplaySettings:
    """What the clinician is shown (dashboard, report); events.jsonl keeps every event."""

    min_marker_strength: float = rng(0, 1)


@dataclass(frozen=True)
class InputHealthSettings:
    """Problems with the input a person can fix: clipping, dead, too quiet, level jumps (audio/input_health.py)."""

    enabled: bool = rng()
    clip_level: float = rng(0.5, 1)
    clip_share: float = rng(0, 1)
    dead_db: float = rng(-140, -40)
    dead_s: float = rng(1, 600)
    too_quiet_db: float = rng(-90, 0)
    quiet_after_s: float = rng(1, 600)
    jump_db: float = rng(3, 60)
    jump_window_s: float = rng(1, 60)
    clear_s: float = rng(1, 600)


@dataclass(frozen=True)
class TwoDeviceSettings:
    """Two capture devices on one session clock (audio/stream_clock.py, audio/two_devices.py)."""

    settle_s: float = rng(0, 600)
    clock_memory_s: float = rng(10, 36000)
    envelope_s: float = rng(1, 600)
    envelope_percentile: float = rng(0, 50)
    drift_prior_ppm: float = rng(1, 10000)
    max_drift_ppm: float = rng(10, 50000)
    slew_time_s: float = rng(0.1, 60)
    realign_s: float = rng(0.005, 10)
    stall_s: float = rng(0.2, 30)
    max_buffer_s: float = rng(2, 120)


@dataclass(frozen=True)
class CallEchoSettings:
    """The therapist's voice echoed back in a call's audio (speech/call_echo.py)."""

    enabled: bool = rng()
    max_delay_ms: float = rng(0, 2000)
    window_s: float = rng(1, 30)
    update_s: float = rng(0.1, 30)
    min_peak: float = rng(0, 1)
    attenuation_db: float = rng(0, 120)


@dataclass(frozen=True)
class ClinicianProfile:
    """The clinician profile a settings tree was loaded with (recorded in session.json)."""

    name: str
    path: str
    sha256: str  # hex digest of the file as it was loaded


@dataclass(frozen=True)
class Settings:
    """All sections, plus where they came from (for session.json)."""

    audio: AudioSettings
    speech_activity: SpeechActivitySettings
    prosody: ProsodySettings
    transcriber: TranscriberSettings
    session: SessionSettings
    privacy: PrivacySettings
    roles: RolesSettings
    evidence: EvidenceSettings
    utterances: UtteranceSettings
    fusion: FusionSettings
    evaluate: EvaluateSettings
    attribution: AttributionSettings
    batch: BatchSettings
    bleed: BleedSettings
    input_health: InputHealthSettings
    two_devices: TwoDeviceSettings
    call_echo: CallEchoSettings
    display: DisplaySettings
    sources: tuple[str, ...] = ()
    digest: str = ""
    clinician: ClinicianProfile | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: dataclasses.asdict(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.name not in NOT_SECTIONS
        }
