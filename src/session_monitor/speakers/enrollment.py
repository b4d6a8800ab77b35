"""Therapist voice enrolment: the voice profile that ``session-monitor enroll`` makes.

20-60 s of the therapist speaking alone (a recording, or the microphone) become a
*voice profile*: the statistics of the voice model of
:mod:`session_monitor.speakers.voice_features` and the novelty threshold calibrated on
that same speech (:func:`session_monitor.speakers.novelty.calibrate_novelty`), and the
mean speaker embedding of its chunks (:mod:`session_monitor.speakers.encoder`, used with
``attribution.embedding = "ge2e"``). The command itself is :mod:`session_monitor.cli.enroll`.
It is stored beside the clinician profile as ``configs/clinicians/NAME.voice.npz``
(file mode 0600: it describes a person's voice), and a replay or live session with
``--clinician NAME`` and mono input then knows which voice is the therapist's.

Only statistics are stored (19 means, a 19x19 matrix, a count, 256 numbers), never audio.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from session_monitor.audio.frames import SAMPLE_RATE, Frame
from session_monitor.errors import ConfigError, InputError
from session_monitor.events import Speech
from session_monitor.schema import Array, Field, Table, load_arrays, validate
from session_monitor.settings.loader import Settings, config_dir
from session_monitor.speakers.encoder import DIM, load_encoder
from session_monitor.speakers.novelty import calibrate_novelty
from session_monitor.speakers.voice_features import N_COEFFS, GaussianStats, mfcc, speech_frames
from session_monitor.speech.activity import SpeechActivity

__all__ = [
    "VoiceProfile",
    "clinician_voice_path",
    "enrol",
    "plain_name",
    "load_voice_profile",
    "save_voice_profile",
    "voice_profile_path",
]

logger = logging.getLogger(__name__)

#: Bumped when the features change; older profiles are refused with a hint to re-enrol.
FEATURES_VERSION = 1
_CHUNK = SAMPLE_RATE  # calibration chunks of 1 s


@dataclass(frozen=True)
class VoiceProfile:
    """An enrolled voice: frame statistics, its novelty threshold and how much speech made it."""

    stats: GaussianStats
    novelty_threshold: float
    speech_s: float
    #: Unit-length mean GE2E embedding of the chunks (:mod:`encoder`); None in profiles made before it.
    embedding: np.ndarray | None = None


def plain_name(name: str) -> str:
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise InputError(f"--clinician {name!r}: use a plain name such as 'ana' (no path)")
    return name


def clinician_voice_path(name: str) -> Path:
    """``configs/clinicians/NAME.voice.npz`` in the config folder."""
    return config_dir() / "clinicians" / f"{plain_name(name)}.voice.npz"


def voice_profile_path(settings: Settings) -> Path | None:
    """The voice profile a session uses: ``attribution.voice_profile``, else the one beside the
    clinician profile that was loaded (if it exists), else None."""
    explicit = settings.attribution.voice_profile
    if explicit:
        path = Path(explicit)
        if not path.is_absolute() and not path.exists():
            path = config_dir() / path
        if not path.is_file():
            raise ConfigError(f"attribution.voice_profile={explicit!r}: no such file; run "
                              "'session-monitor enroll --clinician NAME' or fix the path")
        return path
    clinician = getattr(settings, "clinician", None)
    sources = [clinician.path] if clinician is not None else list(settings.sources)
    for source in sources:
        p = Path(source)
        if p.parent.name == "clinicians" and p.suffix == ".toml":
            candidate = p.with_name(p.stem + ".voice.npz")
            if candidate.is_file():
                return candidate
    return None


def enrol(samples: np.ndarray, settings: Settings) -> VoiceProfile:
    """A voice profile from 16 kHz mono speech of one person.

    Speech is found with the session's VAD; frames are chosen as in a session; at
    most ``attribution.enrol_max_s`` seconds of speech are used.

    Raises
    ------
    InputError : less than ``attribution.enrol_min_s`` seconds of speech.
    """
    a = settings.attribution
    vad = SpeechActivity(settings.speech_activity, channel=0, speaker="therapist")
    # each segment with its voice floor (voice_margin_db above the noise floor tracked until the
    # segment closed), as a session judges it: what comes after it never changes its frames
    segments: list[tuple[Speech, float]] = []

    def closed(events: list[Any]) -> list[tuple[Speech, float]]:
        floor = vad.noise.above(a.voice_margin_db)
        return [(e, -np.inf if floor is None else floor) for e in events if isinstance(e, Speech)]

    block = round(settings.audio.block_ms * SAMPLE_RATE / 1000)
    for i in range(0, len(samples), block):
        segments += closed(vad.process(Frame(i, 0, samples[i : i + block])))
    segments += closed(vad.flush())
    chunks: list[np.ndarray] = []
    encoder = load_encoder()
    embedding = np.zeros(DIM)
    speech_s = 0.0
    for seg, floor_db in segments:
        s0, s1 = round(seg.start * SAMPLE_RATE), round(seg.end * SAMPLE_RATE)
        for c0 in range(s0, s1, _CHUNK):
            c1 = min(s1, c0 + _CHUNK)
            if c1 - c0 < _CHUNK // 3 or speech_s >= a.enrol_max_s:
                continue
            coeffs, db = mfcc(samples[max(0, c0 - 120) : c1 + 120])
            frames = speech_frames(coeffs, db, floor_db=floor_db)
            if len(frames) >= 20:
                chunks.append(frames)
                embedding += encoder.embed(samples[c0:c1])
                speech_s += (c1 - c0) / SAMPLE_RATE
    if speech_s < a.enrol_min_s:
        raise InputError(f"enrolment needs at least {a.enrol_min_s:g} s of the therapist's speech; "
                         f"found {speech_s:.1f} s; record a longer passage (20-60 s of talking)")
    stats = GaussianStats()
    for c in chunks:
        stats.add(GaussianStats.of(c))
    return VoiceProfile(stats, calibrate_novelty(chunks), speech_s,
                        (embedding / np.linalg.norm(embedding)).astype(np.float32))


def save_voice_profile(profile: VoiceProfile, path: Path) -> None:
    """Write atomically, readable by the owner only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".voice-", suffix=".npz")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, version=FEATURES_VERSION, n=profile.stats.n, s1=profile.stats.s1, s2=profile.stats.s2,
                     novelty_threshold=profile.novelty_threshold, speech_s=profile.speech_s,
                     **({} if profile.embedding is None else {"embedding": profile.embedding}))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _voice_profile_schema() -> Table:
    """What a voice profile file holds (:func:`save_voice_profile`); change it with the file format."""
    scalar = Array(())
    return Table({"version": Array((), kinds="iu"), "n": Array((), lo=1e-9), "s1": Array((N_COEFFS,)),
                  "s2": Array((N_COEFFS, N_COEFFS)), "novelty_threshold": scalar, "speech_s": Array((), lo=0),
                  "embedding": Field(Array((DIM,)), required=False)},  # the GE2E voice, when enrolled with it
                 name="a voice profile")


#: The schema of ``NAME.voice.npz``.
VOICE_PROFILE_SCHEMA = _voice_profile_schema()
_ENROL_AGAIN = "enrol again with 'session-monitor enroll'"


def load_voice_profile(path: Path) -> VoiceProfile:
    """Read a profile written by :func:`save_voice_profile`; ConfigError naming the file when unusable."""
    arrays = load_arrays(path, what=f"voice profile; {_ENROL_AGAIN}", error=ConfigError)
    version = arrays.get("version")
    if version is not None and getattr(version, "shape", None) == () and version.dtype.kind in "iu" \
            and int(version) != FEATURES_VERSION:
        raise ConfigError(f"{path}: voice profile of another version ({int(version)}); {_ENROL_AGAIN}")
    data = validate(VOICE_PROFILE_SCHEMA, arrays, source=f"{path} (voice profile; {_ENROL_AGAIN})",
                    error=ConfigError)
    stats = GaussianStats(N_COEFFS)
    stats.n = float(data["n"])
    stats.s1 = np.asarray(data["s1"], dtype=float)
    stats.s2 = np.asarray(data["s2"], dtype=float)
    embedding = data["embedding"]
    return VoiceProfile(stats, float(data["novelty_threshold"]), float(data["speech_s"]),
                        None if embedding is None else np.asarray(embedding, dtype=np.float32))
