"""``session-monitor enroll --clinician NAME [FILE | --device D]``: the therapist's voice.

The voice profile itself is made and stored by :mod:`session_monitor.speakers.enrollment`;
this module reads the recording (a file, or a capture device) and says what it did.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from session_monitor.audio.frames import SAMPLE_RATE
from session_monitor.errors import ConfigError, InputError
from session_monitor.settings import Settings, load_settings
from session_monitor.speakers.enrollment import clinician_voice_path, enrol, plain_name, save_voice_profile

__all__ = ["add_parser", "cmd_enroll"]


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
    """The ``enroll`` subcommand."""
    name = plain_name(args.clinician)
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
