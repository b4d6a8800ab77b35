"""``session-monitor batch --cluster``: a real Dask scheduler and two worker processes on
loopback, started by the test as an administrator would (`dask scheduler`, `dask worker`)."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from support.batch import make_clips, single_replay
from support.cli import events, run_cli, without_timing

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def scheduler(tmp_path):
    """``dask scheduler`` and ``dask worker --nworkers 2 --nthreads 1`` on 127.0.0.1; the
    workers run in their own folder (they get the recordings from the scheduler)."""
    distributed = pytest.importorskip("distributed", reason="the 'cluster' extra (distributed) is not installed")
    address = f"tcp://127.0.0.1:{free_port()}"
    work = tmp_path / "worker"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", address.rsplit(":", 1)[1], "--no-dashboard"], cwd=work, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers", "2",
                                   "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1",
                                   "--local-directory", str(work)], cwd=work, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with distributed.Client(address, timeout="5s") as client:
                    client.wait_for_workers(2, timeout=60)
                break
            except (OSError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in reversed(procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_batch_on_a_dask_cluster_equals_single_replays(scheduler, tmp_path):
    clips = make_clips(tmp_path / "clips")
    good = [p for p in clips if p.suffix == ".flac"][:2]
    out = tmp_path / "out"
    result = run_cli("batch", *map(str, good), str(clips[-1]), "--out", str(out), "--cluster", scheduler)
    assert result.returncode == 1, result.stderr  # the broken file fails alone
    assert "Traceback" not in result.stderr and "done 2 failed 1" in result.stderr
    rows = {r["session"]: r for r in csv.DictReader((out / "cohort.csv").open()) if r["row"] == "session"}
    assert rows["broken"]["status"] == "failed" and "broken.wav" in rows["broken"]["reason"]
    pids = set()
    for clip in good:
        ref = single_replay(clip, tmp_path / "ref" / clip.stem)
        assert without_timing(events(out / clip.stem)) == without_timing(events(ref)), clip.stem
        assert (out / clip.stem / "report.html").is_file()
        meta = json.loads((out / clip.stem / "session.json").read_text())
        assert meta["source"] == str(clip) and meta["complete"] is True
        pids.add(meta["batch_worker"]["pid"])
        assert rows[clip.stem]["status"] == "done"
    assert os.getpid() not in pids  # replayed in the Dask workers, not in the batch process
    # a rerun against the same cluster skips both
    again = run_cli("batch", *map(str, good), "--out", str(out), "--cluster", scheduler)
    assert again.returncode == 0, again.stderr
    assert "skipped 2" in again.stderr
