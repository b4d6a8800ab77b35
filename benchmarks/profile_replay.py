"""Where the time goes in one replay: py-spy samples per function, CPU seconds per OS thread.

Runs ``session-monitor replay FILE --speed max --no-view --no-report`` under
``py-spy record -f raw`` (every thread, idle stacks excluded, functions aggregated
by their first line), then prints

- per Python thread (main = the pipeline, ``transcriber`` = the ASR worker): the
  share of its busy samples spent in each function, *self* (that function is the
  innermost Python frame) and *total* (anywhere on the stack), top ``--top``;
- a breakdown of the main thread by pipeline stage (VAD, prosody, rupture model,
  session store, outbox, decoding the file, waiting for ASR ...);
- CPU seconds per OS thread name of the child read from /proc/PID/task/*/stat at
  its last sample (CTranslate2's and onnxruntime's own compute threads are not
  Python threads, so py-spy does not see them; this does).

The baseline in the same run: the child's total CPU seconds and wall seconds; every
share is a fraction of those.

Usage::

    python benchmarks/profile_replay.py [FILE] [--no-asr] [--rate HZ] [--top N] [--keep DIR]

Needs py-spy (``.venv/bin/pip install py-spy``). ``--keep DIR`` keeps the raw
profile (``DIR/profile.raw``, one ``stack;frames count`` line per distinct stack).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _bench as b

#: main-thread stages: the first frame (outermost first) whose text contains the key names the stage
STAGES = [
    ("wait for ASR (outbox)", ("wait_for (session_monitor/speech/transcriber.py",)),
    ("VAD (Silero + segments)", ("process (session_monitor/speech/activity.py", "prime (session_monitor/speech/activity.py")),
    ("prosody", ("process (session_monitor/prosody/tracker.py", "summarize (session_monitor/prosody/tracker.py")),
    ("rupture model", ("session_monitor/rupture/",)),
    ("session store (events.jsonl)", ("write (session_monitor/session/store.py",)),
    ("turns", ("session_monitor/speech/turns.py",)),
    ("decode file (FileSource)", ("blocks (session_monitor/audio/replay.py",)),
    ("pipeline other", ("run (session_monitor/session/pipeline.py",)),
    ("model load + warm-up", ("__init__ (session_monitor/speech/transcriber.py", "warm_up (")),
    ("imports", ("<module>",)),
]


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def _thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """tid -> (thread name, CPU seconds) of every thread of ``pid`` now."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(task.name)] = (name, (int(fields[11]) + int(fields[12])) / tick)
    return out


def record(path: Path, *, asr: bool, rate: int, raw: Path) -> dict:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    with tempfile.TemporaryDirectory(prefix="sm-prof-") as tmp:
        cmd = [spy, "record", "-f", "raw", "-o", str(raw), "--rate", str(rate), "--threads", "-F", "--",
               *b.cli(), "replay", str(path), "--speed", "max", "--session-dir", str(Path(tmp) / "s"),
               "--no-view", "--no-report"] + ([] if asr else ["--no-asr"])
        load = b.MachineLoad().start()
        t0 = time.monotonic()
        spy_proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        child = None
        threads: dict[int, tuple[str, float]] = {}
        cpu = 0.0
        while spy_proc.poll() is None:
            if child is None:
                kids = _children(spy_proc.pid)
                child = kids[0] if kids else None
            if child is not None:
                now = _thread_cpu(child)
                if now:
                    threads.update(now)
                    cpu = b.proc_cpu_s(child) or cpu
            time.sleep(0.2)
        wall = time.monotonic() - t0
        load.stop(cpu)
        err = spy_proc.stderr.read()
        if spy_proc.returncode != 0:
            raise SystemExit(f"py-spy failed ({spy_proc.returncode}): {err.strip()[-800:]}")
    return {"wall_s": wall, "cpu_s": cpu, "threads": threads, "load": load, "pid": child}


_THREAD = re.compile(r"^thread \((\w+)\)")
_FRAME = re.compile(r"^(?P<fn>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def parse_raw(raw: Path) -> dict[str, list[tuple[list[str], int]]]:
    """thread label -> [(frames outermost first, samples)]."""
    by_thread: dict[str, list[tuple[list[str], int]]] = collections.defaultdict(list)
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        m = _THREAD.match(frames[0])
        thread = m.group(1) if m else "?"  # py-spy writes "thread (ID)" or "thread (ID): NAME"
        frames = [f for f in frames if not f.startswith(("thread (", "process "))]
        by_thread[thread].append((frames, int(count)))
    return by_thread


def _short(frame: str) -> str:
    m = _FRAME.match(frame)
    if not m:
        return frame
    return f"{m['fn']} ({m['file']}{':' + m['line'] if m['line'] else ''})"


def _thread_name(stacks: list[tuple[list[str], int]]) -> str:
    text = " ".join(";".join(f) for f, _ in stacks[:200])
    if "_run (session_monitor/speech/transcriber.py" in text:
        return "transcriber"
    if "<module>" in text or "main (session_monitor/cli/main.py" in text:
        return "main"
    return "other"


def aggregate(stacks: list[tuple[list[str], int]]) -> tuple[int, collections.Counter, collections.Counter]:
    total, self_c, incl = 0, collections.Counter(), collections.Counter()
    for frames, n in stacks:
        total += n
        if frames:
            self_c[_short(frames[-1])] += n
        for f in {_short(f) for f in frames}:
            incl[f] += n
    return total, self_c, incl


def stages(stacks: list[tuple[list[str], int]]) -> collections.Counter:
    """Main-thread samples per pipeline stage (the first matching frame, innermost stage wins)."""
    out: collections.Counter = collections.Counter()
    for frames, n in stacks:
        text = ";".join(frames)
        for name, keys in STAGES:
            if any(k in text for k in keys):
                out[name] += n
                break
        else:
            out["other"] += n
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file", nargs="?", default=str(b.SAMPLE_AUDIO / "demo_session.flac"))
    ap.add_argument("--no-asr", action="store_true", help="profile the prosody-only pipeline")
    ap.add_argument("--rate", type=int, default=100, help="samples per second (default 100)")
    ap.add_argument("--top", type=int, default=15, help="functions listed per thread (default 15)")
    ap.add_argument("--keep", metavar="DIR", help="keep the raw profile in DIR/profile.raw")
    ap.add_argument("--quick", action="store_true", help="same as the default (one replay of the file)")
    args = ap.parse_args(argv)
    print(b.machine_line())
    with tempfile.TemporaryDirectory(prefix="sm-prof-raw-") as tmp:
        raw = Path(args.keep) / "profile.raw" if args.keep else Path(tmp) / "profile.raw"
        raw.parent.mkdir(parents=True, exist_ok=True)
        r = record(Path(args.file), asr=not args.no_asr, rate=args.rate, raw=raw)
        by_thread = parse_raw(raw)
    print(f"replay of {Path(args.file).name} ({'prosody only' if args.no_asr else 'full pipeline'}) under py-spy "
          f"at {args.rate} Hz: wall {r['wall_s']:.1f} s, child CPU {r['cpu_s']:.1f} s; {r['load'].describe()}")
    roles = {int(t): _thread_name(st) for t, st in by_thread.items() if t.isdigit()}
    print("\nCPU seconds per OS thread of the child (/proc/PID/task); the baseline is the child's total CPU:")
    per_role: collections.Counter = collections.Counter()
    count: collections.Counter = collections.Counter()
    for tid, (_name, cpu) in r["threads"].items():
        role = "main (pipeline)" if tid == r["pid"] else roles.get(tid)
        role = f"python thread: {role}" if role and tid != r["pid"] else role or "native (CTranslate2, onnxruntime, ...)"
        per_role[role] += cpu
        count[role] += 1
    rows = [[role, count[role], cpu, 100 * cpu / max(1e-9, r["cpu_s"])] for role, cpu in per_role.most_common()]
    print(b.table(["thread", "threads", "CPU s", "% of child CPU"], rows))
    for thread, stacks in sorted(by_thread.items(), key=lambda kv: -sum(n for _, n in kv[1])):
        total, self_c, incl = aggregate(stacks)
        name = _thread_name(stacks)
        if total < 0.01 * sum(sum(n for _, n in s) for s in by_thread.values()):
            continue
        print(f"\n{name} thread {thread}: {total} busy samples = {total / args.rate:.1f} s")
        if name == "main":
            st = stages(stacks)
            print(b.table(["main-thread stage", "samples", "% of thread"],
                          [[k, v, 100 * v / total] for k, v in st.most_common()]))
        print(b.table(["function (self)", "% self", "% total"],
                      [[f, 100 * n / total, 100 * incl[f] / total] for f, n in self_c.most_common(args.top)]))
        top_incl = [(f, n) for f, n in incl.most_common(60) if "session_monitor" in f][: args.top]
        print(b.table(["session_monitor function (total)", "% total", "% self"],
                      [[f, 100 * n / total, 100 * self_c[f] / total] for f, n in top_incl]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
