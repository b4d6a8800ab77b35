"""``session-monitor batch INPUT... --out DIR``: many recordings, a progress bar, a cohort report.

Exit 0 when every recording is done (or was already), 1 when some failed, 2 for a bad
invocation (nothing written), 130 when stopped with Ctrl-C (a rerun continues).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from typing import Any

__all__ = ["add_parser", "cmd_batch"]

EXIT_SOME_FAILED, EXIT_INTERRUPTED = 1, 130


def add_parser(sub: Any) -> None:
    """Register ``batch`` on the CLI's subparsers."""
    p = sub.add_parser("batch", help="replay many recordings (local processes or a Dask cluster) with a cohort "
                                     "report")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="recordings, folders (searched for audio files) or CSV manifests (path, roles, clinician, "
                        "annotations)")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="folder for one session folder per recording, cohort.csv and cohort.html; a rerun skips "
                        "what is already done")
    p.add_argument("--workers", type=int, metavar="N",
                   help="worker processes (default: batch.workers, else cores // batch.asr_threads)")
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="a Dask scheduler, tcp://HOST:PORT (recordings and transcripts travel to its workers), "
                        "or 'local' for a LocalCluster on this machine; default: a local process pool")
    p.add_argument("--clinician", metavar="NAME", help="clinician profile for rows without their own")
    p.add_argument("--config", metavar="FILE", help="TOML settings overriding configs/default.toml")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details to stderr")


def _progress_bar(total: int) -> Any:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("sessions"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[counts]}"),
                   TimeElapsedColumn(), console=Console(stderr=True), transient=False)
    task = bar.add_task("batch", total=total, counts="")
    return bar, task


def cmd_batch(args: argparse.Namespace) -> int:
    from session_monitor.batch.archive import prepare
    from session_monitor.batch.inputs import collect_recordings
    from session_monitor.batch.runner import dask_client

    recordings = collect_recordings(args.inputs)
    plan, workers = prepare(recordings, args.out, config=args.config, clinician=args.clinician,
                            workers=args.workers, cluster=args.cluster)
    with contextlib.ExitStack() as stack:
        client = stack.enter_context(dask_client(args.cluster, workers)) if args.cluster else None
        return _run(args, plan, workers, client)


def _run(args: argparse.Namespace, plan: Any, workers: int, client: Any) -> int:
    from session_monitor.batch.archive import replay_archive

    if client is None:
        where = f"{workers} local worker(s)"
    else:
        where = f"Dask cluster {args.cluster} ({len(client.scheduler_info().get('workers', {}))} worker(s) now)"
    print(f"session-monitor: batch of {len(plan.items)} recording(s), {len(plan.todo)} to replay, on {where} "
          f"({plan.asr_threads} ASR thread(s) each)", file=sys.stderr, flush=True)
    stop, abort = threading.Event(), threading.Event()

    def on_sigint(signum: int, frame: Any) -> None:
        if stop.is_set():
            abort.set()
            return
        stop.set()
        print("session-monitor: stopping after the recordings in progress; Ctrl-C again to end them now",
              file=sys.stderr, flush=True)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, on_sigint)
        signal.signal(signal.SIGTERM, on_sigint)
    bar, bar_task = _progress_bar(len(plan.items))
    seen: list[str] = []

    def on_progress(p: Any) -> None:
        bar.update(bar_task, completed=p.done + p.failed + p.skipped,
                   counts=f"done {p.done} failed {p.failed} skipped {p.skipped} · "
                          f"{p.audio_hours_per_hour:.1f} audio h/h")
        if p.last and (not seen or seen[-1] != p.last):
            seen.append(p.last)
            bar.console.print(f"session-monitor: {p.last}", highlight=False, markup=False, soft_wrap=True)

    with bar:
        result = replay_archive(plan, workers, args.out, client=client, stop=stop, abort=abort,
                                on_progress=on_progress)
    p = result.progress
    print(f"session-monitor: {p.done} done, {p.failed} failed, {p.skipped} skipped; "
          f"{p.audio_s / 3600:.2f} audio h at {p.audio_hours_per_hour:.1f} audio h/h -> {result.cohort_html}",
          file=sys.stderr)
    print(str(result.cohort_csv))
    print(str(result.cohort_html))
    if not result.complete:
        print("session-monitor: stopped; run the same command again to continue", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_SOME_FAILED if p.failed else 0
