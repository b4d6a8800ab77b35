"""The mono attribution stage a session needs: MFCC or speaker embedding, with or without enrolment."""

from __future__ import annotations

import logging
from pathlib import Path

from session_monitor.errors import ConfigError
from session_monitor.settings.sections import AttributionSettings, Settings, SpeechActivitySettings
from session_monitor.speakers.attribution import MonoAttribution
from session_monitor.speakers.clustering import TwoSpeakers
from session_monitor.speakers.embedding_attribution import EmbeddingAttribution
from session_monitor.speakers.encoder import load_encoder
from session_monitor.speakers.enrollment import load_voice_profile, voice_profile_path
from session_monitor.speakers.voices import TwoVoices
from session_monitor.speech.noise_floor import NoiseFloor

__all__ = ["attribution_for", "build_attribution"]

logger = logging.getLogger(__name__)


def build_attribution(attribution: AttributionSettings, speech_activity: SpeechActivitySettings,
                      roles: list[str], *, voice_profile: Path | None = None) -> MonoAttribution | None:
    """The attribution stage for a mono input labelled ``unknown`` with attribution on; else None.

    ``attribution.embedding`` chooses the voice features: ``mfcc`` (
    :class:`attribution.MonoAttribution`) or ``ge2e`` (:class:`embedding_attribution.EmbeddingAttribution`).
    ``voice_profile``: the enrolled therapist voice (:func:`enrollment.voice_profile_path`), if any.
    """
    if len(roles) != 1 or roles[0] != "unknown" or not attribution.enabled:
        return None
    profile = load_voice_profile(voice_profile) if voice_profile is not None else None
    if profile is not None:
        logger.info("attribution: therapist voice from %s (%.0f s)", voice_profile, profile.speech_s)
    else:
        logger.info("attribution: no enrolled voice; the %s voice heard is the therapist",
                    attribution.unenrolled_therapist)
    noise = NoiseFloor.of_speech(speech_activity)
    if attribution.embedding == "ge2e":
        encoder = load_encoder()
        if profile is not None and profile.embedding is None:
            raise ConfigError(f"{voice_profile}: voice profile made with the old MFCC features only; enrol "
                              "again with 'session-monitor enroll --clinician NAME --force FILE'")
        voices = TwoVoices(attribution, enrolled=None if profile is None else profile.embedding)
        return EmbeddingAttribution(attribution, noise=noise, voices=voices, encoder=encoder)
    if profile is not None:
        speakers = TwoSpeakers(enrolled=profile.stats, enrolled_threshold=profile.novelty_threshold)
    else:
        speakers = TwoSpeakers()
    return MonoAttribution(attribution, noise=noise, speakers=speakers)


def attribution_for(settings: Settings, roles: list[str]) -> MonoAttribution | None:
    """The attribution stage of ``roles`` with its sections and the enrolled voice, if any."""
    mono = roles == ["unknown"] and settings.attribution.enabled
    return build_attribution(settings.attribution, settings.speech_activity, roles,
                             voice_profile=voice_profile_path(settings) if mono else None)
