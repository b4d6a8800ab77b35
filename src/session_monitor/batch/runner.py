"""Running a batch's tasks: a local pool of worker processes, or a Dask distributed cluster.

Both hand out one recording per task and keep at most ``in_flight`` tasks submitted, so
a cluster never holds the audio of the whole archive at once. Each worker process loads
the Whisper model once (:func:`session_monitor.batch.session_run.worker_backend`).

A ``stop`` event set by the caller (first Ctrl-C) cancels what has not started and lets
the running recordings finish; an ``abort`` event (second Ctrl-C) ends the workers at
once, leaving their session folders incomplete for a rerun to replace.

Dask workers on other machines receive each recording's bytes and send the session
folder's files back; the caller writes them under ``--out``
(:func:`write_back`). No scheduler is started here except a ``LocalCluster`` on loopback.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import logging
import multiprocessing
import os
import shutil
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from session_monitor.batch.session_run import Outcome, Task, run_task
from session_monitor.errors import InputError

__all__ = ["check_address", "dask_client", "run_dask", "run_local", "write_back"]

logger = logging.getLogger(__name__)

OnOutcome = Callable[[Task, Outcome], None]

#: Dask's own periodic work, slowed down: its stack sampler (every 10 ms), event-loop tick
#: (20 ms), system monitor (0.5 s) and memory monitor (0.1 s) cost about 0.03 cores per
#: process, all taken from the replays; nothing here reads their output (benchmarks/batch.py).
#: The client's process and a LocalCluster's scheduler and workers use these; a remote
#: cluster's workers take them from their own environment (README: "On a Dask cluster").
QUIET_DASK = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.admin.system-monitor.interval": "5s",
    "distributed.worker.memory.monitor-interval": "1s",
    # a LocalCluster's workers get this machine's environment, as the local pool's do: Dask's
    # default MALLOC_TRIM_THRESHOLD_=65536 and OMP_NUM_THREADS=1 cost a replay CPU (benchmarks/batch.py)
    "distributed.nanny.pre-spawn-environ": {},
}


def _init_worker() -> None:
    """A pool worker ignores Ctrl-C: the batch decides whether to wait for it or end it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _drive(submit: Callable[[Task], Any], wait: Callable[[set[Any], float], tuple[set[Any], set[Any]]],
           result: Callable[[Any], Outcome], tasks: Sequence[Task], *, in_flight: int, on_outcome: OnOutcome,
           stop: threading.Event, abort: threading.Event, cancel: Callable[[Any], Any],
           not_started: Callable[[Any], bool] = lambda f: False, poll_s: float = 0.25) -> bool:
    """Submit up to ``in_flight`` tasks, report each outcome, refill; True when all ran.

    On ``stop`` the tasks ``not_started`` says were not started yet (and can be withdrawn)
    are dropped; on ``abort`` every task is cancelled.
    """
    queue: Iterator[Task] = iter(tasks)
    running: dict[Any, Task] = {}
    exhausted = stopping = False
    while True:
        while not exhausted and not stop.is_set() and len(running) < in_flight:
            task = next(queue, None)
            if task is None:
                exhausted = True
                break
            try:
                running[submit(task)] = task
            except InputError as exc:  # the recording could not be read to send it
                on_outcome(task, Outcome(task.name, "failed", reason=str(exc)))
        if not running:
            return exhausted and not stop.is_set()
        if abort.is_set():
            for future in running:
                cancel(future)
            return False
        if stop.is_set() and not stopping:
            stopping = True
            for future in [f for f in running if not_started(f)]:
                running.pop(future)  # not started: left for the rerun
        done, _ = wait(set(running), poll_s)
        for future in done:
            task = running.pop(future)
            on_outcome(task, result(future))


def run_local(tasks: Sequence[Task], *, workers: int, in_flight: int, on_outcome: OnOutcome,
              stop: threading.Event, abort: threading.Event) -> bool:
    """The tasks on a pool of ``workers`` processes on this machine; True when all ran.

    The workers are started fresh (``spawn``), so none inherits the caller's threads.
    """
    ctx = multiprocessing.get_context("spawn")
    pool = cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker)

    def wait(futures: set[Any], timeout: float) -> tuple[set[Any], set[Any]]:
        done, pending = cf.wait(futures, timeout=timeout, return_when=cf.FIRST_COMPLETED)
        return set(done), set(pending)

    def result(future: cf.Future) -> Outcome:
        try:
            return future.result()
        except cf.process.BrokenProcessPool:
            return Outcome("", "failed", reason="its worker process died (out of memory?); rerun the batch")

    try:
        complete = _drive(lambda t: pool.submit(run_task, t), wait, result, tasks, in_flight=in_flight,
                          on_outcome=lambda t, o: on_outcome(t, dataclasses.replace(o, name=o.name or t.name)),
                          stop=stop, abort=abort, cancel=lambda f: f.cancel(), not_started=lambda f: f.cancel())
    finally:
        if abort.is_set():
            for proc in list(getattr(pool, "_processes", {}).values()):  # the executor has no public kill
                proc.terminate()
        pool.shutdown(wait=not abort.is_set(), cancel_futures=True)
    return complete


def check_address(address: str) -> None:
    """Refuse a ``--cluster`` value that is neither ``local`` nor ``tcp://HOST:PORT`` (or tls://)."""
    if address == "local":
        return
    scheme, _, rest = address.partition("://")
    host, _, port = rest.rpartition(":")
    if scheme not in ("tcp", "tls") or not host or not port.isdigit():
        raise InputError(f"--cluster {address!r} is not a scheduler address; use tcp://HOST:PORT or local")


@contextlib.contextmanager
def dask_client(address: str, workers: int) -> Iterator[Any]:
    """A client of the scheduler at ``address``, or of a new ``LocalCluster`` of ``workers``
    processes on loopback for ``local`` (one thread each, no dashboard); closed on exit.

    Raises
    ------
    InputError
        ``distributed`` is not installed, the address is malformed or no scheduler answers.
    """
    check_address(address)
    try:
        import distributed
    except ImportError:
        raise InputError("--cluster needs the 'distributed' package: pip install distributed") from None
    if not logging.getLogger("session_monitor").isEnabledFor(logging.INFO):
        logging.getLogger("distributed").setLevel(logging.WARNING)  # its INFO lines are not the user's concern
    import dask

    cluster = None
    with dask.config.set(QUIET_DASK):
        if address == "local":
            cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                               host="127.0.0.1", dashboard_address=None,
                                               preload=["session_monitor.batch.dask_setup"])
            client = distributed.Client(cluster)
        else:
            try:
                client = distributed.Client(address, timeout="10s")
            except (OSError, TimeoutError) as exc:
                raise InputError(f"--cluster {address}: no Dask scheduler answered ({type(exc).__name__}); start "
                                 "one with `dask scheduler` and workers with `dask worker ADDRESS`") from None
        try:
            yield client
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


def run_dask(tasks: Sequence[Task], *, client: Any, in_flight: int, on_outcome: OnOutcome,
             stop: threading.Event, abort: threading.Event) -> bool:
    """The tasks on the Dask cluster of ``client`` (:func:`dask_client`); True when all ran.

    Each task carries its recording's bytes and brings its session folder's files back.
    """
    import distributed

    def submit(task: Task) -> Any:
        try:
            audio = Path(task.source).read_bytes()
        except OSError as exc:
            raise InputError(f"{task.source}: cannot be read ({exc.strerror})") from None
        return client.submit(run_task, dataclasses.replace(task, audio=audio), pure=False,
                             key=f"session-monitor-{task.name}-{os.urandom(4).hex()}")

    def wait(futures: set[Any], timeout: float) -> tuple[set[Any], set[Any]]:
        try:
            done, pending = distributed.wait(list(futures), timeout=timeout, return_when="FIRST_COMPLETED")
        except TimeoutError:
            return set(), futures
        return set(done), set(pending)

    def result(future: Any) -> Outcome:
        try:
            return future.result()
        except Exception as exc:  # the worker died or the task could not be run there
            return Outcome("", "failed", reason=f"the Dask task failed ({type(exc).__name__}: {exc})"[:300])

    processing: set[str] | None = None

    def not_started(future: Any) -> bool:
        """Withdraw a task that no worker has started (asked of the scheduler once, at the stop)."""
        nonlocal processing
        if processing is None:
            processing = {k for keys in client.processing().values() for k in keys}
        if future.key in processing or future.status != "pending":
            return False
        future.cancel()
        return True

    return _drive(submit, wait, result, tasks, in_flight=in_flight,
                  on_outcome=lambda t, o: on_outcome(t, dataclasses.replace(o, name=o.name or t.name)),
                  stop=stop, abort=abort, cancel=lambda f: f.cancel(), not_started=not_started, poll_s=1.0)


def _private_write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def write_back(out: Path, outcome: Outcome) -> Path:
    """A remote session's files into ``out/NAME`` (0700 folder, 0600 files), replacing an
    older folder of that name only once the new one is whole."""
    final = out / outcome.name
    partial = out / f".{outcome.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(mode=0o700)
    os.chmod(partial, 0o700)
    for name, data in outcome.files.items():
        _private_write(partial / Path(name).name, data)
    if final.exists():
        shutil.rmtree(final)
    os.replace(partial, final)
    return final
