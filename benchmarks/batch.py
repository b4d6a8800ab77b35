"""Throughput of ``session-monitor batch``: the local pool's split, and the Dask path's overhead.

All in one run, on the same recordings (default: four sessions of sample_audio/, 6.9 min of
audio; ``--all``: all six, 12 min; ``--quick``: the first 60 s of the four):

- **sequential** (the baseline): the recordings one after another in this process, the model
  loaded once, ``transcriber.cpu_threads`` = the cores (2 here): what a script calling replay
  in a loop would get at best;
- **local pool, P processes x T ASR threads** for each split of ``--splits`` (default
  ``1x2,2x1``: the whole machine either way on 2 cores), as ``session-monitor batch`` runs it
  (:func:`session_monitor.batch.archive.replay_archive`, a fresh pool: worker start-up and
  model loading are inside the timed part, as a user waits for them);
- **LocalCluster** (``--cluster local``) with the best split: a ``distributed.LocalCluster``
  of P worker processes, its start-up included, every recording's bytes sent to the workers
  and the session folders sent back.

Figures: audio hours per wall hour, the ratio to the sequential baseline, and the Dask
path's overhead against the local pool with the same split (target: <= 10 %). Every
figure says how busy the rest of the machine was (``_bench.MachineLoad``). With
``--repeat N`` each time is the least disturbed (minimum) of N runs, taken round-robin.

Usage: python benchmarks/batch.py [--quick | --all] [--splits 1x2,2x1] [--repeat N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from _bench import DEMO_SESSIONS, SAMPLE_AUDIO, MachineLoad, machine_line, own_cpu_s, table, verdict

TARGET_DASK_OVERHEAD = 0.10


def recordings(folder: Path, *, quick: bool, every: bool) -> list[Path]:
    import soundfile as sf

    names = DEMO_SESSIONS if every else DEMO_SESSIONS[1:4] + DEMO_SESSIONS[5:]
    if not quick:
        return [SAMPLE_AUDIO / f"{n}.flac" for n in names]
    out = []
    for name in names:
        data, sr = sf.read(SAMPLE_AUDIO / f"{name}.flac")
        path = folder / f"{name}_60s.flac"
        sf.write(path, data[:60 * sr], sr)
        out.append(path)
    return out


def config(folder: Path, threads: int, workers: int) -> str:
    path = folder / f"split_{workers}x{threads}.toml"
    path.write_text(f"[batch]\nworkers = {workers}\nasr_threads = {threads}\n")
    return str(path)


def sequential(files: list[Path], out: Path, cores: int) -> tuple[float, float]:
    """The baseline: one process, one model, the files one after another; (wall s, audio s)."""
    from session_monitor.batch.archive import prepare
    from session_monitor.batch.inputs import collect_recordings
    from session_monitor.batch.session_run import run_task, worker_backend

    plan, _ = prepare(collect_recordings([str(f) for f in files]), out,
                      config=config(out.parent, cores, 1), clinician=None, workers=1, cluster=None)
    out.mkdir()
    t0 = time.perf_counter()
    worker_backend(plan.todo[0].settings.transcriber)  # the model, loaded once (timed, as in the pool)
    audio_s = 0.0
    for task in plan.todo:
        outcome = run_task(task)
        assert outcome.status == "done", outcome.reason
        audio_s += outcome.audio_s
    return time.perf_counter() - t0, audio_s


def batch(files: list[Path], out: Path, workers: int, threads: int, *, cluster: str | None) -> tuple[float, float]:
    """One ``batch`` run (local pool or LocalCluster), start-up included; (wall s, audio s)."""
    import contextlib

    from session_monitor.batch.archive import prepare, replay_archive
    from session_monitor.batch.inputs import collect_recordings
    from session_monitor.batch.runner import dask_client

    plan, n = prepare(collect_recordings([str(f) for f in files]), out, config=config(out.parent, threads, workers),
                      clinician=None, workers=workers, cluster=cluster)
    t0 = time.perf_counter()
    with contextlib.ExitStack() as stack:
        client = stack.enter_context(dask_client(cluster, n)) if cluster else None
        result = replay_archive(plan, n, out, client=client)
    wall = time.perf_counter() - t0
    assert result.progress.done == len(files), result.progress
    return wall, result.progress.audio_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 s of four sessions")
    parser.add_argument("--all", action="store_true", help="all six sessions")
    parser.add_argument("--splits", default="1x2,2x1", help="processes x ASR threads, comma-separated")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; the minimum time is kept")
    args = parser.parse_args()
    from session_monitor.batch.plan import available_cores

    cores = available_cores()
    splits = [tuple(int(x) for x in s.split("x")) for s in args.splits.split(",")]
    print(machine_line())
    runs: dict[str, list[tuple[float, float, MachineLoad, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        files = recordings(Path(tmp), quick=args.quick, every=args.all)
        k = 0

        def measure(label: str, fn) -> None:
            nonlocal k
            k += 1
            folder = Path(tmp) / f"run{k}"
            folder.mkdir()
            cpu0 = own_cpu_s()
            load = MachineLoad().start()
            wall, audio = fn(folder / "out")
            cpu = own_cpu_s() - cpu0
            load.stop(cpu)
            runs.setdefault(label, []).append((wall, audio, load, cpu))
            print(f"  {label}: {wall:.1f} s ({cpu:.0f} CPU s) for {audio:.0f} s of audio; {load.describe()}",
                  flush=True)

        for _ in range(args.repeat):
            measure("sequential", lambda o: sequential(files, o, cores))
            for p, t in splits:
                measure(f"local pool {p}x{t}", lambda o, p=p, t=t: batch(files, o, p, t, cluster=None))
        best = min(splits, key=lambda s: min(r[0] for r in runs[f"local pool {s[0]}x{s[1]}"]))
        for _ in range(args.repeat):
            measure(f"LocalCluster {best[0]}x{best[1]}",
                    lambda o: batch(files, o, best[0], best[1], cluster="local"))

    def best_of(label: str) -> tuple[float, float, MachineLoad, float]:
        return min(runs[label], key=lambda r: r[0])

    base_wall, base_audio, _, base_cpu = best_of("sequential")
    rows = []
    for label in runs:
        wall, audio, load, cpu = best_of(label)
        rows.append([label, audio / 3600, wall, audio / wall, (audio / wall) / (base_audio / base_wall),
                     cpu, audio / cpu, "UNDER LOAD" if load.loaded else "quiet", round(load.others_cores, 2)])
    print(table(["run", "audio h", "wall s", "audio h/h", "x sequential", "CPU s", "audio s/CPU s", "machine",
                 "others' cores"], rows))
    local = best_of(f"local pool {best[0]}x{best[1]}")
    dask = best_of(f"LocalCluster {best[0]}x{best[1]}")
    overhead, cpu_overhead = dask[0] / local[0] - 1, dask[3] / local[3] - 1
    print(f"best local split: {best[0]} process(es) x {best[1]} ASR thread(s)")
    print(f"Dask path overhead against the local pool ({best[0]}x{best[1]}): wall {overhead:+.1%} "
          f"(target <= {TARGET_DASK_OVERHEAD:.0%}: {verdict(overhead, TARGET_DASK_OVERHEAD, at_most=True)}); "
          f"CPU seconds {cpu_overhead:+.1%} (less sensitive to other processes on a shared machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
