"""What a batch replays: files, folders, CSV manifests, and the refusals of a bad invocation."""

from __future__ import annotations

import pytest

from session_monitor.batch.inputs import collect_recordings, read_manifest
from session_monitor.errors import InputError
from support.cli import refused, run_cli


def touch(path, data=b"x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def test_a_folder_is_searched_for_recordings_only(tmp_path):
    touch(tmp_path / "a" / "one.flac")
    touch(tmp_path / "a" / "sub" / "two.WAV")
    touch(tmp_path / "a" / "notes.txt")
    touch(tmp_path / "a" / ".hidden" / "three.wav")
    recs = collect_recordings([str(tmp_path / "a")])
    assert [r.name for r in recs] == ["one", "two"]
    assert all(r.roles is None and r.clinician is None for r in recs)


def test_a_recording_named_twice_runs_once_and_equal_stems_get_distinct_names(tmp_path):
    a = touch(tmp_path / "x" / "s.wav")
    touch(tmp_path / "y" / "s.wav")
    recs = collect_recordings([str(a), str(tmp_path / "x"), str(tmp_path / "y")])
    assert len(recs) == 2
    names = [r.name for r in recs]
    assert len(set(names)) == 2 and all(n.startswith("s-") for n in names)
    assert collect_recordings([str(tmp_path / "x"), str(tmp_path / "y")])[0].name == names[0]  # stable


def test_manifest_rows_with_roles_clinician_and_annotations(tmp_path):
    touch(tmp_path / "audio" / "one.flac")
    manifest = tmp_path / "m.csv"
    manifest.write_text('path,roles,clinician,annotations\n'
                        'audio/one.flac,"patient,therapist",ana,truth/one.json\n'
                        f'{tmp_path}/two.wav,therapist;patient,,\n'
                        'three.wav,,,\n')
    recs = read_manifest(manifest)
    assert recs[0].path == str(tmp_path / "audio" / "one.flac")  # relative to the manifest's folder
    assert recs[0].roles == ("patient", "therapist")
    assert recs[0].clinician == "ana"
    assert recs[0].annotations == str(tmp_path / "truth" / "one.json")
    assert recs[1].roles == ("therapist", "patient") and recs[1].clinician is None
    assert recs[2].roles is None and recs[2].annotations is None


@pytest.mark.parametrize("text, needle", [
    ("file,roles\na.wav,\n", "'path' column"),
    ("path,speaker\na.wav,x\n", "unknown manifest column 'speaker'"),
    ("path,roles\na.wav,therapist,patient\n", "line 2: more values than the header"),
    ("path,roles\na.wav,doctor\n", "line 2: role 'doctor'"),
    ("path,roles\na.wav,\"patient,patient\"\n", "may appear once"),
    ("path\n\n", "no rows"),
    ("path,roles\n,therapist\n", "line 2: the path is empty"),
])
def test_a_bad_manifest_is_one_line_naming_the_line(tmp_path, text, needle):
    manifest = tmp_path / "m.csv"
    manifest.write_text(text)
    with pytest.raises(InputError, match=needle.replace("(", r"\(")):
        read_manifest(manifest)


def test_bad_invocations_exit_2_and_write_nothing(tmp_path):
    out = tmp_path / "out"
    audio = touch(tmp_path / "a.wav")
    refused(run_cli("batch", str(tmp_path / "missing.wav"), "--out", str(out)), "missing.wav", "no such file")
    refused(run_cli("batch", str(audio), "--out", str(out), "--workers", "0"), "--workers 0")
    (tmp_path / "empty").mkdir()
    refused(run_cli("batch", str(tmp_path / "empty"), "--out", str(out)), "holds no recordings")
    bad = tmp_path / "bad.csv"
    bad.write_text("path,annotations\na.wav,nothere.json\n")
    refused(run_cli("batch", str(bad), "--out", str(out)), "nothere.json")
    refused(run_cli("batch", str(audio), "--out", str(out), "--clinician", "nobody"), "nobody")
    refused(run_cli("batch", str(audio), "--out", str(out), "--cluster", "localhost"), "tcp://HOST:PORT")
    refused(run_cli("batch", str(audio), "--out", str(out), "--cluster", "tcp://127.0.0.1:1"), "no Dask scheduler")
    refused(run_cli("batch", str(audio)), "--out")
    assert not out.exists()
    afile = touch(tmp_path / "file")
    refused(run_cli("batch", str(audio), "--out", str(afile)), "is a file")
