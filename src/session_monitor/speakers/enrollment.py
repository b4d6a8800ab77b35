"""Therapist voice enrolment: ``session-monitor enroll --clinician NAME [FILE | --device D]``.

20-60 s of the therapist speaking alone (a recording, or the microphone) become a
*voice profile*: the statistics of the voice model of :mod:`voice_features` and the
novelty threshold calibrated on that same speech (:func:`speakers.calibrate_novelty`).
It is stored beside the clinician profile as ``configs/clinicians/NAME.voice.npz``
(file mode 0600: it describes a person's voice), and a replay or live session with
``--clinician NAME`` and mono input then knows which voice is the therapist's.

Only statistics are stored (19 means, a 19x19 matrix, a count), never audio.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from session_monitor.audio.frames import SAMPLE_RATE, Frame
from session_monitor.errors import ConfigError, InputError
from session_monitor.events import Speech
from session_monitor.schema import Array, Table, load_arrays, validate
from session_monitor.settings.loader import Settings, config_dir, load_settings
from session_monitor.speakers.novelty import calibrate_novelty
from session_monitor.speakers.voice_features import N_COEFFS, GaussianStats, mfcc, speech_frames
from session_monitor.speech.activity import SpeechActivity

__all__ = [
    "VoiceProfile",
    "add_parser",
    "cmd_enroll",
    "enrol",
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


def _plain_name(name: str) -> str:
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise InputError(f"--clinician {name!r}: use a plain name such as 'ana' (no path)")
    return name


def clinician_voice_path(name: str) -> Path:
    """``configs/clinicians/NAME.voice.npz`` in the config folder."""
    return config_dir() / "clinicians" / f"{_plain_name(name)}.voice.npz"


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
    segments: list[Speech] = []
    block = round(settings.audio.block_ms * SAMPLE_RATE / 1000)
    for i in range(0, len(samples), block):
        segments += [e for e in vad.process(Frame(i, 0, samples[i : i + block])) if isinstance(e, Speech)]
    segments += [e for e in vad.flush() if isinstance(e, Speech)]
    chunks: list[np.ndarray] = []
    speech_s = 0.0
    for seg in segments:
        s0, s1 = round(seg.start * SAMPLE_RATE), round(seg.end * SAMPLE_RATE)
        for c0 in range(s0, s1, _CHUNK):
            c1 = min(s1, c0 + _CHUNK)
            if c1 - c0 < _CHUNK // 3 or speech_s >= a.enrol_max_s:
                continue
            coeffs, db = mfcc(samples[max(0, c0 - 120) : c1 + 120])
            frames = speech_frames(coeffs, db, floor_db=settings.speech_activity.energy_floor_db)
            if len(frames) >= 20:
                chunks.append(frames)
                speech_s += (c1 - c0) / SAMPLE_RATE
    if speech_s < a.enrol_min_s:
        raise InputError(f"enrolment needs at least {a.enrol_min_s:g} s of the therapist's speech; "
                         f"found {speech_s:.1f} s; record a longer passage (20-60 s of talking)")
    stats = GaussianStats()
    for c in chunks:
        stats.add(GaussianStats.of(c))
    return VoiceProfile(stats, calibrate_novelty(chunks), speech_s)


def save_voice_profile(profile: VoiceProfile, path: Path) -> None:
    """Write atomically, readable by the owner only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".voice-", suffix=".npz")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, version=FEATURES_VERSION, n=profile.stats.n, s1=profile.stats.s1, s2=profile.stats.s2,
                     novelty_threshold=profile.novelty_threshold, speech_s=profile.speech_s)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _voice_profile_schema() -> Table:
    """What a voice profile file holds (:func:`save_voice_profile`); change it with the file format."""
    scalar = Array(())
    return Table({"version": Array((), kinds="iu"), "n": Array((), lo=1e-9), "s1": Array((N_COEFFS,)),
                  "s2": Array((N_COEFFS, N_COEFFS)), "novelty_threshold": scalar, "speech_s": Array((), lo=0)},
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
    return VoiceProfile(stats, float(data["novelty_threshold"]), float(data["speech_s"]))


# -- command line ---------------------------------------------------------------------------------------


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("enroll", help="store the therapist's voice for single-microphone sessions")
    p.add_argument("file", nargs="?", help="recording of the therapist alone talking, 20-60 s (any format)")
    p.add_argument("--clinician", required=True, metavar="NAME", help="clinician profile name (configs/clinicians)")
    p.add_argument("--device", metavar="D", help="record from this capture device instead of a file")
    p.add_argument("--duration", type=float, default=None, metavar="S",
                   help="seconds to record with --device (default: attribution.enrol_max_s)")
    p.add_argument("--config", metavar="FILE", help="TOML settings overriding configs/default.toml")
    p.add_argument("--force", action="store_true", help="replace an existing voice profile")


def _read_file(path: str, settings: Settings) -> np.ndarray:
    from session_monitor.audio.file_source import FileSource

    source = FileSource(path, block_ms=settings.audio.block_ms, speed=None)
    try:
        blocks = list(source.blocks())
    finally:
        source.close()
    if not blocks:
        raise InputError(f"{path}: no audio in the file")
    return np.concatenate(blocks, axis=1).mean(axis=0).astype(np.float32)


def _record(device: str, duration_s: float, settings: Settings) -> np.ndarray:
    from session_monitor.audio.microphone import MicrophoneSource

    a = settings.audio
    source = MicrophoneSource(device, channels=1, capture_rate=a.capture_rate, block_ms=a.block_ms,
                              capture_block_ms=a.capture_block_ms, queue_s=a.queue_s)
    print(f"session-monitor: recording {duration_s:.0f} s from {source.name}: please talk now", file=sys.stderr,
          flush=True)
    got, want = [], int(duration_s * SAMPLE_RATE)
    source.open()
    try:
        for block in source.blocks():
            got.append(block[0])
            if sum(len(b) for b in got) >= want:
                break
    finally:
        source.close()
    return np.concatenate(got) if got else np.zeros(0, dtype=np.float32)


def cmd_enroll(args: argparse.Namespace) -> int:
    name = _plain_name(args.clinician)
    if (args.file is None) == (args.device is None):
        raise InputError("enroll: give a recording FILE or --device D (one of them)")
    settings = load_settings(args.config)
    if settings.attribution.enrol_min_s > settings.attribution.enrol_max_s:
        raise ConfigError(f"{settings.sources[-1]}: attribution.enrol_min_s must not exceed attribution.enrol_max_s")
    target = clinician_voice_path(name)
    if target.exists() and not args.force:
        raise InputError(f"{target} exists; add --force to replace it")
    if args.device is not None:
        duration = args.duration if args.duration is not None else settings.attribution.enrol_max_s
        if not duration > 0:
            raise InputError(f"--duration {duration} must be above 0 seconds")
        samples = _record(args.device, duration, settings)
    else:
        samples = _read_file(args.file, settings)
    profile = enrol(samples, settings)
    save_voice_profile(profile, target)
    toml = target.with_name(f"{name}.toml")
    if not toml.exists():  # so that --clinician NAME finds a profile
        toml.write_text(f"# Clinician profile of {name}: overrides of configs/default.toml.\n"
                        f"# The therapist's voice for single-microphone sessions is {target.name} beside it.\n",
                        encoding="utf-8")
    print(f"session-monitor: enrolled {profile.speech_s:.0f} s of speech -> {target}", file=sys.stderr)
    print(str(target))
    return 0
