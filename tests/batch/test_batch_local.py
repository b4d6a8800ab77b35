"""``session-monitor batch`` on the local pool: the same sessions as single replays, a broken
file failing alone, the model loaded once per worker, resume after Ctrl-C, a manifest."""

from __future__ import annotations

import csv
import json
import signal
import stat
import subprocess
import sys
import time

import pytest

from support.batch import clip_truth, make_clips, single_replay
from support.cli import events, run_cli, without_timing

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    return make_clips(tmp_path_factory.mktemp("clips"))


@pytest.fixture(scope="module")
def references(clips, tmp_path_factory):
    """One single ``replay --speed max`` of each good clip."""
    root = tmp_path_factory.mktemp("replays")
    return {p.stem: single_replay(p, root / p.stem) for p in clips if p.suffix == ".flac"}


def cohort(out):
    return {r["session"]: r for r in csv.DictReader((out / "cohort.csv").open()) if r["row"] == "session"}


def meta(folder):
    return json.loads((folder / "session.json").read_text())


def assert_same_sessions(out, references):
    for name, ref in references.items():
        assert without_timing(events(out / name)) == without_timing(events(ref)), name
        assert (out / name / "report.html").is_file() and (out / name / "timeline.csv").is_file()
        assert meta(out / name)["source"] == meta(ref)["source"]
        assert meta(out / name)["complete"] is True


def test_batch_of_sample_clips_and_a_broken_file_on_two_workers(clips, references, tmp_path):
    out = tmp_path / "out"
    result = run_cli("batch", *map(str, clips), "--out", str(out), "--workers", "2")
    assert result.returncode == 1, result.stderr  # one failed
    assert "Traceback" not in result.stderr
    assert "done 3 failed 1 skipped 0" in result.stderr
    assert_same_sessions(out, references)
    rows = cohort(out)
    assert rows["broken"]["status"] == "failed"
    assert "broken.wav" in rows["broken"]["reason"] and "\n" not in rows["broken"]["reason"]
    assert not (out / "broken").exists()
    for name in references:
        assert rows[name]["status"] == "done"
        assert float(rows[name]["duration_s"]) == pytest.approx(float(name.split("_")[-1]) - float(name.split("_")[-2]),
                                                               abs=0.2)
    # privacy: folders 0700, files 0600
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    for path in out.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path
    # the model is loaded once per worker process, not per recording
    workers = [meta(out / n)["batch_worker"] for n in references]
    pids = {w["pid"] for w in workers}
    assert len(pids) <= 2
    assert sum(w["model_loaded"] for w in workers) == len(pids)


def test_an_interrupted_batch_continues_where_it_stopped(clips, references, tmp_path):
    good = [str(p) for p in clips if p.suffix == ".flac"]
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "session_monitor", "batch", *good, "--out", str(out),
                             "--workers", "1"], stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    lines = []
    deadline = time.monotonic() + 300
    for line in proc.stderr:  # Ctrl-C once the first session is done
        lines.append(line)
        if ": done (" in line or time.monotonic() > deadline:
            proc.send_signal(signal.SIGINT)
            break
    rest, _ = proc.communicate(timeout=300)[1], None
    stderr = "".join(lines) + rest
    assert proc.returncode == 130, stderr
    assert "run the same command again to continue" in stderr
    first = cohort(out)
    finished = [n for n, r in first.items() if r["status"] == "done"]
    assert 1 <= len(finished) < 3, first
    assert all("stopped" in r["reason"] for n, r in first.items() if n not in finished)

    result = run_cli("batch", *good, "--out", str(out), "--workers", "1")
    assert result.returncode == 0, result.stderr
    assert f"skipped {len(finished)}" in result.stderr and "already done" in result.stderr
    second = cohort(out)
    assert {n: r["status"] for n, r in second.items()} == {
        n: ("skipped" if n in finished else "done") for n in references}
    assert_same_sessions(out, references)


def test_manifest_with_roles_clinician_and_annotations(clips, references, tmp_path):
    import shutil

    from support.audio import ROOT

    configs = tmp_path / "configs"  # a checkout's configs with one clinician profile
    shutil.copytree(ROOT / "configs", configs)
    (configs / "clinicians").mkdir(exist_ok=True)
    (configs / "clinicians" / "ana.toml").write_text("[fusion]\nalert_on = 0.6\n")
    withdrawal, confrontation = clips[0], clips[1]
    truth = clip_truth(tmp_path)
    manifest = tmp_path / "manifest.csv"
    manifest.write_text("path,roles,clinician,annotations\n"
                        f'{withdrawal},"patient,therapist",,\n'
                        f"{confrontation},,ana,{truth.name}\n")
    out = tmp_path / "out"
    result = run_cli("batch", str(manifest), "--out", str(out), "--workers", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = cohort(out)
    # roles from the manifest: the same speech as the default replay, with the speakers swapped
    swap = {"therapist": "patient", "patient": "therapist"}
    ref = [(e["start"], e["end"], swap[e["speaker"]]) for e in events(references[withdrawal.stem])
           if e["type"] == "speech"]
    got = [(e["start"], e["end"], e["speaker"]) for e in events(out / withdrawal.stem) if e["type"] == "speech"]
    assert got == ref
    assert meta(out / withdrawal.stem)["roles"] == ["patient", "therapist"]
    # the clinician's profile is used for that row and named in the table
    assert meta(out / confrontation.stem)["settings"]["clinician"]["name"] == "ana"
    assert rows[confrontation.stem]["clinician"] == "ana" and rows[withdrawal.stem]["clinician"] == ""
    # evaluation columns where annotations were given, equal to `evaluate`
    scored = json.loads(run_cli("evaluate", str(out / confrontation.stem), "--annotations", str(truth), "--json",
                                cwd=tmp_path).stdout)
    for key in ("precision", "recall", "f1", "false_alarms_per_hour"):
        want = "" if scored[key] is None else round(scored[key], 3)
        assert (rows[confrontation.stem][f"eval_{key}"] or "") == ("" if want == "" else str(want)), key
    assert rows[confrontation.stem]["eval_ruptures"] == "1"
    assert rows[withdrawal.stem]["eval_ruptures"] == ""
