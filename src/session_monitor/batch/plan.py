"""From recordings to tasks: the settings of each, its run key, and what is already done."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from session_monitor.batch.inputs import Recording
from session_monitor.batch.resume import file_digest, is_done, run_key
from session_monitor.batch.session_run import Task
from session_monitor.errors import InputError, SessionMonitorError
from session_monitor.settings.loader import Settings, load_settings

__all__ = ["Plan", "Planned", "available_cores", "plan_batch", "pool_split"]


@dataclass(frozen=True)
class Planned:
    """One recording with what the batch decided for it: run it, skip it, or it failed already."""

    recording: Recording
    clinician: str | None
    status: str  # "todo", "skipped" or "failed"
    task: Task | None = None
    reason: str = ""


@dataclass(frozen=True)
class Plan:
    items: tuple[Planned, ...]
    settings: Settings  # the batch's own settings (``--config``, ``--clinician``)
    asr_threads: int

    @property
    def todo(self) -> list[Task]:
        return [p.task for p in self.items if p.status == "todo" and p.task is not None]


def available_cores() -> int:
    """CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def pool_split(settings: Settings, *, workers: int | None, cores: int | None = None) -> tuple[int, int]:
    """(worker processes, ASR threads per worker) for the local pool.

    ``batch.asr_threads`` (0: ``transcriber.cpu_threads``) threads each; ``workers``
    (``--workers``), else ``batch.workers``, else as many as the cores hold
    (cores // threads, at least 1). benchmarks/batch.py measured the default split.
    """
    cores = available_cores() if cores is None else cores
    threads = settings.batch.asr_threads or settings.transcriber.cpu_threads or 1
    if workers is None:
        workers = settings.batch.workers or max(1, cores // threads)
    return workers, threads


def _settings(config: str | None, clinician: str | None, threads: int) -> Settings:
    base = load_settings(config, clinician=clinician)
    if base.transcriber.cpu_threads == threads:
        return base
    return load_settings(config, clinician=clinician, overrides={"transcriber": {"cpu_threads": threads}})


def plan_batch(recordings: Sequence[Recording], out: str | Path, *, config: str | None, clinician: str | None,
               workers: int | None = None, remote: bool = False) -> tuple[Plan, int]:
    """Tasks for the recordings not yet done under ``out``, and the number of workers.

    ``remote`` plans tasks whose files travel back from the worker (a Dask cluster; the runner
    adds each recording's bytes when it submits the task) instead of being written in place.
    A recording whose file cannot be read is planned as failed with its reason.

    Raises
    ------
    ConfigError
        ``--config`` or a clinician profile (the batch's or a manifest row's) is invalid.
    """
    batch_settings = load_settings(config, clinician=clinician)
    n_workers, threads = pool_split(batch_settings, workers=workers)
    by_clinician: dict[str | None, Settings] = {}
    items = []
    out = Path(out)
    for rec in recordings:
        who = rec.clinician or clinician
        if who not in by_clinician:
            by_clinician[who] = _settings(config, who, threads)  # a bad profile is a bad invocation
        settings = by_clinician[who]
        try:
            if not Path(rec.path).is_file():
                raise InputError(f"{rec.path}: no such file; check the path")
            key = run_key(file_digest(rec.path), settings.digest, rec.roles)
            folder = out / rec.name
            if is_done(folder, key):
                items.append(Planned(rec, who, "skipped"))
                continue
        except SessionMonitorError as exc:
            items.append(Planned(rec, who, "failed", reason=str(exc)))
            continue
        task = Task(name=rec.name, source=rec.path, settings=settings, key=key, roles=rec.roles,
                    folder=None if remote else str(folder))
        items.append(Planned(rec, who, "todo", task))
    return Plan(tuple(items), batch_settings, threads), n_workers
