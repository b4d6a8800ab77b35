"""WER and speed of Whisper beam size 1 (greedy) vs 5, through the pipeline's own transcriber.

Each file is replayed with ``session-monitor replay FILE --speed max --config CFG``
where CFG is a temporary TOML that sets only ``[transcriber] beam_size`` (and, with
``--per-utterance``, ``batch_s = 0``: one Whisper pass per utterance, as a live
session transcribes, instead of the replay's packed windows). The two beam sizes
run one after the other on each file, so both see about the same machine load.

WER is per speaker channel: the truth turns of that speaker in time order
(``sample_audio/NAME.truth.json``; ``../shared/data/jfk.flac``: the sentence in
``../shared/data/README.md``, on each of its two channels) against that speaker's
final transcripts in time order; lower case, punctuation removed, no other
normalisation (so "10" against "ten" counts as an error). A file's WER is its
errors over its reference words, both channels together.

Speed: the process's wall time, and Whisper's own compute time (the sum of the
transcripts' ``asr_compute_s``), which is what the beam size changes.

Caution: in the packed mode the batches a ``--speed max`` replay sends depend on how
fast the transcriber returns (a pass still running when the outbox reaches its
lookahead makes the pipeline send every open batch early), so the number of passes,
and with it the words, varies from run to run and with machine load; the number of
passes is printed. ``--per-utterance`` has no batches: its transcripts do not
depend on timing, and it is what a live session does.

On a shared machine give ``--repeat 2`` or more: times are the minimum over repeats.

Usage::

    python benchmarks/beam_size.py [--quick] [--beams 1,5] [--repeat N] [--per-utterance]

``--quick``: jfk.flac and demo_session only (default: jfk.flac and the six sessions).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _bench as b

JFK = b.SHARED_DATA / "jfk.flac"


def jfk_truth() -> str:
    readme = (b.SHARED_DATA / "README.md").read_text()
    m = re.search(r'jfk\.flac.*?text: "([^"]+)"', readme)
    if not m:
        raise SystemExit(f"no jfk.flac truth text in {b.SHARED_DATA / 'README.md'}")
    return m.group(1)


def references(path: Path) -> dict[str, list[str]]:
    """Reference words per speaker."""
    if path == JFK:
        return {"therapist": b.words(jfk_truth()), "patient": b.words(jfk_truth())}
    truth = json.loads((path.parent / f"{path.stem}.truth.json").read_text())
    out: dict[str, list[str]] = {}
    for turn in sorted(truth["transcript"], key=lambda t: t["start"]):
        out.setdefault(turn["speaker"], []).extend(b.words(turn["text"]))
    return out


def replay(path: Path, config: Path, tmp: Path) -> dict:
    folder = tmp / f"s-{time.monotonic_ns()}"
    cmd = [*b.cli(), "replay", str(path), "--speed", "max", "--config", str(config), "--session-dir", str(folder),
           "--no-view", "--no-report"]
    t0 = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    wall = time.monotonic() - t0
    if out.returncode != 0:
        raise SystemExit(f"replay of {path.name} failed: {out.stderr.strip()[-600:]}")
    events = [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines() if line.strip()]
    meta = json.loads((folder / "session.json").read_text())
    hyp: dict[str, list[tuple[float, str]]] = {}
    compute = 0.0
    units = set()
    for e in events:
        if e["type"] == "transcript" and e.get("final", True):
            hyp.setdefault(e["speaker"], []).append((e["start"], e["text"]))
            compute += e.get("asr_compute_s") or 0.0
            # the utterances of one packed pass share its compute time (split evenly): count passes
            units.add((e["speaker"], e.get("asr_compute_s")))
    return {"wall_s": wall, "audio_s": float(meta.get("audio_s", 0.0)), "rtf": float(meta.get("rtf", 0.0)),
            "asr_s": compute, "passes": len(units), "hyp": {s: [w for _, text in sorted(v) for w in b.words(text)] for s, v in hyp.items()}}


def score(refs: dict[str, list[str]], hyp: dict[str, list[str]]) -> tuple[int, int]:
    errors = sum(b.word_errors(ref, hyp.get(speaker, [])) for speaker, ref in refs.items())
    return errors, sum(len(ref) for ref in refs.values())


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="jfk.flac and demo_session only")
    ap.add_argument("--beams", default="1,5", help="beam sizes to compare, the first is the baseline (default 1,5)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="replays per file and beam; times are the minimum (the least disturbed run)")
    ap.add_argument("--per-utterance", action="store_true",
                    help="transcriber.batch_s = 0: one Whisper pass per utterance, as live sessions do")
    args = ap.parse_args(argv)
    beams = [int(x) for x in args.beams.split(",")]
    names = ["demo_session"] if args.quick else list(b.DEMO_SESSIONS)
    files = ([JFK] if JFK.is_file() else []) + [b.SAMPLE_AUDIO / f"{n}.flac" for n in names]
    if not JFK.is_file():
        print(f"{JFK} is absent: skipped")
    print(b.machine_line())
    print(f"transcriber: bundled model, beams {beams}, "
          f"{'one pass per utterance (batch_s = 0)' if args.per_utterance else 'packed replay windows (batch_s default)'}")
    own0 = b.own_cpu_s()
    load = b.MachineLoad().start()
    results: dict[tuple[str, int], dict] = {}
    with tempfile.TemporaryDirectory(prefix="sm-beam-") as tmp_name:
        tmp = Path(tmp_name)
        configs = {}
        for beam in beams:
            cfg = tmp / f"beam{beam}.toml"
            cfg.write_text(f"[transcriber]\nbeam_size = {beam}\n" + ("batch_s = 0\n" if args.per_utterance else ""))
            configs[beam] = cfg
        for path in files:
            refs = references(path)
            for beam in beams:
                runs = [replay(path, configs[beam], tmp) for _ in range(args.repeat)]
                r = min(runs, key=lambda x: x["wall_s"])
                r["asr_s"] = min(x["asr_s"] for x in runs)
                if any(x["hyp"] != r["hyp"] for x in runs):
                    print(f"  note: {path.name} beam {beam}: transcripts differ between repeats")
                r["errors"], r["ref_words"] = score(refs, r["hyp"])
                results[(path.name, beam)] = r
                print(f"  {path.name} beam {beam}: WER {r['errors'] / r['ref_words']:.3f}, wall {r['wall_s']:.1f} s, "
                      f"Whisper {r['asr_s']:.1f} s in {r['passes']} passes", flush=True)
    load.stop(b.own_cpu_s() - own0)
    print()
    headers = ["file", "audio s", "ref words"]
    for beam in beams:
        headers += [f"WER b{beam}", f"wall s b{beam}", f"Whisper s b{beam}"]
    rows = []
    for path in files:
        first = results[(path.name, beams[0])]
        row = [path.name, first["audio_s"], first["ref_words"]]
        for beam in beams:
            r = results[(path.name, beam)]
            row += [r["errors"] / r["ref_words"], r["wall_s"], r["asr_s"]]
        rows.append(row)
    totals = {beam: {k: sum(results[(p.name, beam)][k] for p in files) for k in ("errors", "ref_words", "wall_s",
                                                                                  "asr_s", "audio_s")}
              for beam in beams}
    row = ["TOTAL", totals[beams[0]]["audio_s"], totals[beams[0]]["ref_words"]]
    for beam in beams:
        t = totals[beam]
        row += [t["errors"] / t["ref_words"], t["wall_s"], t["asr_s"]]
    rows.append(row)
    print(b.table(headers, rows))
    print()
    base = totals[beams[0]]
    summary = []
    for beam in beams[1:]:
        t = totals[beam]
        summary.append([f"beam {beam} vs beam {beams[0]}: WER", t["errors"] / t["ref_words"],
                        base["errors"] / base["ref_words"], (t["errors"] / max(1, base["errors"]))])
        summary.append([f"beam {beam} vs beam {beams[0]}: total wall s", t["wall_s"], base["wall_s"],
                        t["wall_s"] / base["wall_s"]])
        summary.append([f"beam {beam} vs beam {beams[0]}: Whisper compute s", t["asr_s"], base["asr_s"],
                        t["asr_s"] / max(1e-9, base["asr_s"])])
    print(b.table(["figure", "measured", f"baseline (beam {beams[0]})", "ratio"], summary))
    print(f"\nmachine during the run: {load.describe()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
