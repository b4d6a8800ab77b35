"""A whole batch: plan the recordings, run what is not done, write the cohort table and page.

:func:`replay_archive` is what ``session-monitor batch`` calls; the command line adds the
arguments, the progress bar and Ctrl-C (:mod:`session_monitor.cli.batch`).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from session_monitor.batch.cohort import SessionResult, clinician_totals, session_row, write_csv
from session_monitor.batch.cohort_html import write_cohort_html
from session_monitor.batch.inputs import Recording
from session_monitor.batch.plan import Plan, plan_batch
from session_monitor.batch.runner import check_address, run_dask, run_local, write_back
from session_monitor.batch.session_run import Outcome, Task
from session_monitor.clinician.metrics import load_annotations
from session_monitor.errors import InputError, SessionDirError

__all__ = ["ArchiveResult", "Progress", "prepare", "replay_archive"]

logger = logging.getLogger(__name__)


@dataclass
class Progress:
    """Counts while a batch runs; ``audio_s`` is the audio of the sessions done in this run."""

    total: int
    done: int = 0
    failed: int = 0
    skipped: int = 0
    audio_s: float = 0.0
    started: float = field(default_factory=time.perf_counter)
    last: str = ""  # what happened last, one line

    @property
    def audio_hours_per_hour(self) -> float:
        wall = time.perf_counter() - self.started
        return self.audio_s / wall if wall > 0 else 0.0


@dataclass(frozen=True)
class ArchiveResult:
    progress: Progress
    complete: bool  # False when stopped before every recording ran
    cohort_csv: Path
    cohort_html: Path
    workers: int
    threads: int


def prepare(recordings: Sequence[Recording], out: str | Path, *, config: str | None, clinician: str | None,
            workers: int | None, cluster: str | None) -> tuple[Plan, int]:
    """Check everything a batch needs before anything is written; see :func:`plan_batch`.

    Raises
    ------
    InputError, ConfigError
        ``--out`` is a file, ``--workers`` is below 1, an annotation file is unusable, a
        settings file or clinician profile is invalid.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: is a file, not a folder; choose a folder for the sessions")
    if workers is not None and not 1 <= workers <= 256:
        raise InputError(f"--workers {workers} is out of range; use 1..256")
    if cluster is not None:
        check_address(cluster)
    for rec in recordings:
        if rec.annotations:
            load_annotations(rec.annotations)  # a bad annotation file is a bad manifest
    return plan_batch(recordings, out, config=config, clinician=clinician, workers=workers,
                      remote=cluster is not None)


def _make_out(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(out, 0o700)
    except OSError as exc:
        raise SessionDirError(f"--out {out}: cannot create folder ({exc.strerror}); choose a writable place") from None


def replay_archive(plan: Plan, workers: int, out: str | Path, *, client: Any = None,
                   stop: threading.Event | None = None, abort: threading.Event | None = None,
                   on_progress: Callable[[Progress], None] | None = None) -> ArchiveResult:
    """Run the plan's tasks (on a local pool of ``workers`` processes, or on the Dask cluster of
    ``client``, :func:`session_monitor.batch.runner.dask_client`) and write ``out/cohort.csv`` and ``out/cohort.html`` over every recording of the plan."""
    out = Path(out)
    _make_out(out)
    stop = stop or threading.Event()
    abort = abort or threading.Event()
    progress = Progress(total=len(plan.items))
    outcomes: dict[str, Outcome] = {}
    for item in plan.items:
        if item.status == "skipped":
            progress.skipped += 1
            progress.last = f"{item.recording.path}: already done with the same input and settings; skipped"
            logger.info("%s", progress.last)
        elif item.status == "failed":
            progress.failed += 1
            progress.last = f"failed: {item.reason}"
    if on_progress is not None:
        on_progress(progress)

    def on_outcome(task: Task, outcome: Outcome) -> None:
        if outcome.status == "done" and task.folder is None:
            write_back(out, outcome)
        outcomes[task.name] = outcome
        if outcome.status == "done":
            progress.done += 1
            progress.audio_s += outcome.audio_s
            progress.last = f"{task.source}: done ({outcome.audio_s:.0f} s of audio)"
        else:
            progress.failed += 1
            progress.last = f"failed: {outcome.reason}"
            logger.info("%s", progress.last)
        if on_progress is not None:
            on_progress(progress)

    if client is None:
        # the pool queues one call ahead by itself; more would start after a Ctrl-C
        complete = run_local(plan.todo, workers=workers, in_flight=workers, on_outcome=on_outcome, stop=stop,
                             abort=abort)
    else:
        threads = sum(client.nthreads().values()) or workers  # the cluster's task slots now
        complete = run_dask(plan.todo, client=client, in_flight=threads * plan.settings.batch.in_flight_per_worker,
                            on_outcome=on_outcome, stop=stop, abort=abort)
    results = []
    for item in plan.items:
        rec = item.recording
        outcome = outcomes.get(rec.name)
        if item.status == "skipped":
            status, reason = "skipped", ""
        elif item.status == "failed":
            status, reason = "failed", item.reason
        elif outcome is None:
            status, reason = "failed", "not run: the batch was stopped; run it again to continue"
        else:
            status, reason = outcome.status, outcome.reason
        results.append(SessionResult(rec.name, rec.path, item.clinician or "", status,
                                     folder=out / rec.name if status != "failed" else None, reason=reason,
                                     annotations=rec.annotations))
    rows = [session_row(r, plan.settings.evaluate) for r in results]
    totals = clinician_totals(rows)
    csv_path = write_csv(out / "cohort.csv", rows + totals)
    html_path = write_cohort_html(out / "cohort.html", rows, totals, title=f"Cohort: {out.name}")
    return ArchiveResult(progress, complete, csv_path, html_path, workers, plan.asr_threads)
