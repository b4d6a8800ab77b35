"""``session-monitor replay`` and ``live``: a session run from a file or a capture device.

The session itself is assembled by :class:`~session_monitor.session.runner.SessionRun`;
this module adds what a person at a terminal needs: the arguments, the terminal view,
the dashboard, Ctrl-C, and the lines on stderr.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from session_monitor.dashboard.session import DashboardAnnotations
from session_monitor.errors import DeviceError, InputError
from session_monitor.session.roles import parse_roles
from session_monitor.settings import load_settings

__all__ = ["add_parsers", "cmd_live", "cmd_replay"]

EXIT_OK = 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML settings overriding configs/default.toml")
    p.add_argument("--clinician", metavar="NAME", help="clinician profile configs/clinicians/NAME.toml")
    p.add_argument("--roles", metavar="R1,R2", help="speaker of each input channel, in order "
                   "(therapist, patient or unknown); default for stereo: therapist,patient")
    p.add_argument("--session-dir", metavar="DIR", help="folder to write (default: a new one under sessions/)")
    p.add_argument("--force", action="store_true", help="move an earlier session in --session-dir aside "
                   "(to DIR.replaced-TIME) and start a fresh one")
    p.add_argument("--no-view", action="store_true", help="no terminal view")
    p.add_argument("--no-asr", action="store_true", help="prosody and timing only, no transcription")
    p.add_argument("--no-report", action="store_true", help="do not write report.html and timeline.csv at the end")
    p.add_argument("--dashboard", action="store_true", help="serve the live indicator page and print its address")
    p.add_argument("--dashboard-host", default="127.0.0.1", metavar="HOST",
                   help="address to bind (default 127.0.0.1; any other needs a token)")
    p.add_argument("--dashboard-port", type=int, default=8765, metavar="PORT", help="port (default 8765; 0 = any free)")
    p.add_argument("--dashboard-token", metavar="TOKEN",
                   help="required on every request, and to bind a non-loopback host; 'generate' makes a random "
                        "one and prints the address with it")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")


def add_parsers(sub: Any) -> None:
    """Register ``replay`` and ``live`` on the CLI's subparsers."""
    replay = sub.add_parser("replay", help="run a recorded session through the full pipeline")
    replay.add_argument("file", help="recording: wav, flac, ogg, mp3, m4a, mp4, ...")
    replay.add_argument("--speed", default="max", help="realtime, N (times real time) or max (default: max, "
                        "deterministic)")
    _common(replay)

    live = sub.add_parser("live", help="monitor a live session from a capture device, or two")
    live.add_argument("--device", action="append", metavar="D",
                      help="capture device: index, (part of) its name, or pulse:SOURCE; see 'devices'. Twice "
                           "for a telehealth call: the therapist's microphone, then the call audio (one channel "
                           "each, in --roles order)")
    live.add_argument("--duration", type=float, metavar="S", help="stop after S seconds of audio")
    live.add_argument("--consent", metavar="TEXT|FILE", help="consent record (required): a TOML/JSON file with "
                      "who, when and [covers] monitoring/transcript/audio = true/false, or a text such as "
                      "\"A. B. consented to monitoring on 2026-11-26\" (a text grants monitoring only)")
    _common(live)


def _start_dashboard(args: argparse.Namespace, annotations: Any, *, title: str, settings: Any) -> Any:
    """Start the page before anything is written, so a busy port leaves no folder behind."""
    from session_monitor.dashboard.session import start_dashboard

    dashboard = start_dashboard(host=args.dashboard_host, port=args.dashboard_port, token=args.dashboard_token,
                                on_annotation=annotations, title=title,
                                min_marker_strength=settings.display.min_marker_strength)
    print(f"session-monitor: dashboard at {dashboard.url}", file=sys.stderr, flush=True)
    return dashboard


def _run(args: argparse.Namespace, settings: Any, source: Any, roles: list[str], *,
         deterministic: bool, total_s: float | None, meta: dict[str, Any], call_audio: bool = False) -> int:
    from session_monitor.session.ending import EndRequest

    with EndRequest(say=_say) as end:  # from here on no signal raises into the program
        return _run_ended_by(end, args, settings, source, roles, deterministic=deterministic, total_s=total_s,
                             meta=meta, call_audio=call_audio)


def _say(line: str) -> None:
    print(f"session-monitor: {line}", file=sys.stderr, flush=True)


def _run_ended_by(end: Any, args: argparse.Namespace, settings: Any, source: Any, roles: list[str], *,
                  deterministic: bool, total_s: float | None, meta: dict[str, Any],
                  call_audio: bool = False) -> int:
    from session_monitor.session.runner import SessionRun

    run = SessionRun(settings, source, roles, meta=meta, deterministic=deterministic, use_asr=not args.no_asr,
                     call_audio=call_audio)
    annotations = DashboardAnnotations()
    dashboard = (_start_dashboard(args, annotations, title=meta.get("source", ""), settings=settings)
                 if args.dashboard else None)
    try:
        run.claim(args.session_dir, force=args.force)  # before the model loads: the folder is this run's
        if run.claimed is not None and run.claimed.previous is not None:
            _say(f"--force: the earlier session was moved to {run.claimed.previous}")
        return _session(run, end, annotations, dashboard, args, total_s=total_s)
    finally:
        if dashboard is not None:
            dashboard.stop()
        run.release()


def _session(run: Any, end: Any, annotations: Any, dashboard: Any, args: argparse.Namespace, *,
             total_s: float | None) -> int:
    from session_monitor.cli.terminal_view import TerminalView
    from session_monitor.session.ending import EXIT_ABORTED, exit_code
    from session_monitor.session.runner import input_warnings

    source, meta = run.source, run.meta
    if meta.get("consent") is not None and run.settings.privacy.store_transcript and not run.keeps_words:
        _say("the consent record does not grant the transcript: no words are kept in the session folder "
             "or shown (a consent file with [covers] transcript = true keeps them)")
    view = TerminalView(total_s=total_s, title=meta.get("source", ""),
                        min_marker_strength=run.settings.display.min_marker_strength)
    sinks = ([] if args.no_view else [view]) + ([dashboard.publish] if dashboard is not None else [])
    pipeline = run.start(sinks=sinks, on_progress=view.progress if not args.no_view else None,
                         extra_meta={"dashboard": dashboard.url.split("?")[0] if dashboard else None})
    if end.stop.is_set():  # a signal while the model loaded: no session was started
        _say("aborted before the session started; nothing was written")
        return EXIT_ABORTED
    if run.worker is not None:
        end.on_abort(run.worker.cancel_pending)  # a second signal: finish the utterance in hand, drop the rest
    annotations.attach(pipeline, run.store, dashboard)
    stop = end.stop
    try:
        if source.live:
            run.open_source()
            print(f"session-monitor: ready: capturing from {source.name}", file=sys.stderr, flush=True)
        if args.no_view:
            stats = run.run(stop)
        else:
            with view:
                stats = run.run(stop)
        reason = end.reason
        annotations.session_ended(pipeline.now_s)
        if not end.abort.is_set():  # the session is over when the audio is, the page held open or not
            run.checkpoint(stats, end_reason=reason, write_report=not args.no_report)
        if dashboard is not None and not stop.is_set():
            print(f"session-monitor: session ended; the timeline stays at {dashboard.url} - press Ctrl-C to close",
                  file=sys.stderr, flush=True)
            stop.wait()
    except BaseException as exc:
        if run.store.lines or pipeline.position:  # else it failed before any audio: release() removes it all
            reason = getattr(exc, "end_reason", None) or ("device_lost" if isinstance(exc, DeviceError) else None)
            run.finish(None, error=str(exc) or type(exc).__name__, end_reason=reason, aborted=end.abort.is_set(),
                       write_report=not args.no_report)
        raise
    finally:
        run.close()
    aborted = end.abort.is_set()  # one answer for session.json, the line below and the exit code
    outcome = run.finish(stats, end_reason=reason, aborted=aborted, write_report=not args.no_report)
    for warning in input_warnings(source, stats):
        print(f"session-monitor: warning: {warning}", file=sys.stderr)
    ended = "aborted" if aborted else ("finished" if stats.completed else "stopped")
    print(f"session-monitor: {ended}: {stats.audio_s:.1f} s of audio, {stats.events} events, "
          f"{stats.rtf:.1f}x real time -> {outcome.folder}", file=sys.stderr)
    print(str(outcome.folder))
    return exit_code(outcome.end_reason)


def cmd_replay(args: argparse.Namespace) -> int:
    from session_monitor.audio.file_source import FileSource, parse_speed

    settings = load_settings(args.config, clinician=args.clinician)
    speed = parse_speed(args.speed)
    source = FileSource(args.file, block_ms=settings.audio.block_ms, speed=speed)
    roles = parse_roles(args.roles, source.channels, settings.roles)
    meta = {"mode": "replay", "source": str(args.file), "speed": args.speed,
            "source_rate": source.native_rate, "source_channels": source.channels}
    return _run(args, settings, source, roles, deterministic=speed is None,
                total_s=source.duration_s if speed is None else None, meta=meta)


def cmd_live(args: argparse.Namespace) -> int:
    from session_monitor.audio.microphone import MicrophoneSource, find_device
    from session_monitor.audio.source import LimitedSource
    from session_monitor.session.consent import covers, load_consent

    settings = load_settings(args.config, clinician=args.clinician)
    consent = load_consent(args.consent)  # refuse before touching any device
    if settings.session.store_audio and not covers(consent, "audio"):
        raise InputError("session.store_audio is true but the consent record does not grant audio "
                         "(a consent text grants monitoring only); give a consent file with [covers] audio = true, "
                         "or set session.store_audio = false")
    if args.duration is not None and not args.duration > 0:
        raise InputError(f"--duration {args.duration} must be above 0 seconds")
    specs = args.device or [None]
    if len(specs) > 2:
        raise InputError(f"--device given {len(specs)} times; give one device, or two (microphone, call audio)")
    a = settings.audio
    source: Any
    if len(specs) == 2:
        from session_monitor.audio.two_devices import TwoDeviceSource

        roles = parse_roles(args.roles, 2, settings.roles)
        source = TwoDeviceSource(specs, capture_rate=a.capture_rate, block_ms=a.block_ms,
                                 capture_block_ms=a.capture_block_ms, queue_s=a.queue_s,
                                 alignment=settings.two_devices, give_up_s=a.give_up_after_s)
        device: Any = source.devices
    else:
        device = find_device(specs[0])
        if args.roles:
            channels = len(args.roles.split(","))
        else:
            channels = 2 if device["channels"] >= 2 else 1
        roles = parse_roles(args.roles, channels, settings.roles)
        source = MicrophoneSource(device["index"] if "pulse_source" not in device else device["name"],
                                  channels=channels, capture_rate=a.capture_rate, block_ms=a.block_ms,
                                  capture_block_ms=a.capture_block_ms, queue_s=a.queue_s,
                                  give_up_s=a.give_up_after_s)
    if args.duration is not None:
        source = LimitedSource(source, args.duration)
    name = source.name if len(specs) == 2 else f"device:{device['name']}"
    meta = {"mode": "live", "source": name, "device": device, "consent": consent}
    return _run(args, settings, source, roles, deterministic=False, total_s=None, meta=meta,
                call_audio=len(specs) == 2)
