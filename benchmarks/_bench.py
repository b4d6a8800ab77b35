"""Shared helpers of the benchmark scripts: paths, the machine, process sampling, tables.

Not a benchmark itself. The scripts run as ``python benchmarks/NAME.py``, so this
module is importable as ``_bench`` (``benchmarks/`` is ``sys.path[0]``).

Every benchmark on a shared machine is noisy. :class:`MachineLoad` measures how busy
all cores were during a measurement and how much of that was the measured process,
so each figure can say whether it was taken under load.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_AUDIO = ROOT / "sample_audio"
SHARED_DATA = ROOT.parent / "shared" / "data"
DEMO_SESSIONS = ("demo_session", "withdrawal_only", "confrontation_repair", "calm_reflective",
                 "heldout_mixed", "heldout_calm")
CONSENT = "A. Patient and B. Therapist consented to monitoring on 2026-11-26"
_TICK_S = os.sysconf("SC_CLK_TCK")


def cli() -> list[str]:
    """The ``session-monitor`` command of this venv (its console script, as a user runs it)."""
    script = Path(sys.executable).parent / "session-monitor"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "session_monitor"]


# -- the machine ---------------------------------------------------------------------------------------------

def warm_pipeline(settings: Any, *, asr: bool) -> Any:
    """What a session starts with: a warmed transcription worker (or None) and warmed prosody.

    Model loading and warm-up happen here, outside every timed region.
    """
    from session_monitor.session.pipeline import Pipeline
    from session_monitor.speech.asr_backend import WhisperBackend
    from session_monitor.speech.transcriber import TranscriptionWorker

    worker = None
    if asr:
        backend = WhisperBackend(settings.transcriber)
        backend.warm_up()
        worker = TranscriptionWorker(backend, settings.transcriber)
    Pipeline.warm_up(settings.prosody)
    return worker


def machine() -> dict[str, Any]:
    """nproc, CPU model, RAM and the 1-minute load average now."""
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    return {"nproc": os.cpu_count(), "cpu": model, "ram_gib": round(mem_kb / 2**20, 1),
            "loadavg_1m": float(Path("/proc/loadavg").read_text().split()[0])}


def machine_line() -> str:
    m = machine()
    return (f"machine: {m['nproc']} cores, {m['cpu']}, {m['ram_gib']} GiB RAM; "
            f"load average (1 min) {m['loadavg_1m']:.2f} at {time.strftime('%Y-%m-%d %H:%M')}")


def _cpu_busy_s() -> float:
    """CPU seconds all cores spent busy since boot (user+nice+system+irq+softirq+steal)."""
    f = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in f[:8])
    return (user + nice + system + irq + softirq + steal) / _TICK_S


def proc_cpu_s(pid: int) -> float | None:
    """utime + stime of ``pid`` (and its waited-for children) in seconds; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime + cutime + cstime) / _TICK_S


def proc_rss_mb(pid: int) -> tuple[float, float] | None:
    """(VmRSS, VmHWM) of ``pid`` in MB; None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    rss = re.search(r"VmRSS:\s+(\d+)", text)
    hwm = re.search(r"VmHWM:\s+(\d+)", text)
    if rss is None or hwm is None:  # a zombie has no memory lines
        return None
    return int(rss.group(1)) / 1024, int(hwm.group(1)) / 1024


def own_cpu_s() -> float:
    """CPU seconds of this process and its children that have been waited for."""
    import resource

    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class MachineLoad:
    """How busy the whole machine was over an interval, and how much of it was not us.

    ``start()`` ... ``stop(own_cpu_s)``; then ``busy_cores`` (all processes) and
    ``others_cores`` (all minus the measured process's CPU seconds, per wall second).
    A measurement with ``others_cores`` above ~0.3 on a 2-core machine is under load.
    """

    def start(self) -> Self:
        self.t0, self.busy0 = time.monotonic(), _cpu_busy_s()
        return self

    def stop(self, own_cpu_s: float = 0.0) -> Self:
        wall = max(1e-9, time.monotonic() - self.t0)
        self.wall_s = wall
        self.busy_cores = (_cpu_busy_s() - self.busy0) / wall
        self.others_cores = max(0.0, self.busy_cores - own_cpu_s / wall)
        return self

    @property
    def loaded(self) -> bool:
        return self.others_cores > 0.3

    def describe(self) -> str:
        tag = "UNDER LOAD" if self.loaded else "quiet"
        return (f"{tag}: other processes used {self.others_cores:.2f} of {os.cpu_count()} cores "
                f"(machine busy {self.busy_cores:.2f} cores) over {self.wall_s:.0f} s")


class ProcSampler:
    """Samples a process every ``interval_s``: RSS (MB), CPU seconds, and the size of ``watch``.

    ``samples`` is a list of ``(monotonic, rss_mb, cpu_s, watch_bytes)``; ``peak_mb`` is
    the kernel's high-water mark (VmHWM), which also catches peaks between samples.
    """

    def __init__(self, pid: int, *, interval_s: float = 1.0, watch: Path | None = None) -> None:
        self.pid, self.interval_s, self.watch = pid, interval_s, watch
        self.samples: list[tuple[float, float, float, int]] = []
        self.peak_mb = 0.0
        self.last_cpu_s = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval_s)

    def sample(self) -> None:
        mem, cpu = proc_rss_mb(self.pid), proc_cpu_s(self.pid)
        if mem is None or cpu is None:
            return
        size = 0
        if self.watch is not None:
            try:
                size = self.watch.stat().st_size
            except OSError:
                size = 0
        self.samples.append((time.monotonic(), mem[0], cpu, size))
        self.peak_mb = max(self.peak_mb, mem[1])
        self.last_cpu_s = cpu

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


# -- Pulse: a private server with one null sink (as tests/conftest.py::PulseServer) -----------------------------

class PulseServer:
    """A private PulseAudio server (own socket, no default modules) with a null sink.

    The same few lines as ``tests/conftest.py::PulseServer`` (which imports pytest, so it
    is copied rather than imported). Programs reach it through :attr:`env`:
    ``PULSE_SERVER`` and ``PULSE_SOURCE`` = the sink's monitor, which ALSA's pulse
    plugin opens as sounddevice's device ``pulse``.
    """

    def __init__(self, folder: Path, *, sink: str = "sm_bench") -> None:
        for program in ("pulseaudio", "pactl", "paplay"):
            if shutil.which(program) is None:
                raise SystemExit(f"{program} is not installed (apt-get install pulseaudio pulseaudio-utils)")
        self.folder = folder
        self.socket = folder / "native"
        self.sink = sink
        self.env = dict(os.environ, PULSE_SERVER=f"unix:{self.socket}", PULSE_SOURCE=f"{sink}.monitor")
        self.env.pop("PULSE_SINK", None)
        self.log = open(folder / "pulseaudio.log", "w")  # noqa: SIM115  (closed in close())
        self.proc = subprocess.Popen(
            ["pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1", "--disallow-exit", "--use-pid-file=no",
             "-L", f"module-native-protocol-unix socket={self.socket} auth-anonymous=1"],
            stdout=self.log, stderr=subprocess.STDOUT, env=self.env,
        )

    def __enter__(self) -> Self:
        for _ in range(100):
            if subprocess.run(["pactl", "info"], capture_output=True, env=self.env, check=False).returncode == 0:
                break
            time.sleep(0.1)
        else:
            self.close()
            raise SystemExit(f"PulseAudio did not start: {(self.folder / 'pulseaudio.log').read_text()[-500:]}")
        subprocess.run(["pactl", "load-module", "module-null-sink", f"sink_name={self.sink}", "rate=48000",
                        "channels=2"], env=self.env, check=True, capture_output=True, timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_call_pair(self) -> tuple[str, str]:
        """Two more null sinks, ``sm_mic`` and ``sm_call`` (a telehealth session's microphone and call
        audio), fed the left and the right channel of the stereo sink ``sm_pair`` at the same moment
        (as ``tests/support/pulse.py``). Returns their monitor sources."""
        for name, position in (("sm_mic", "front-left"), ("sm_call", "front-right")):
            subprocess.run(["pactl", "load-module", "module-null-sink", f"sink_name={name}", "rate=48000",
                            "channels=1", f"channel_map={position}"], env=self.env, check=True,
                           capture_output=True, timeout=10)
        subprocess.run(["pactl", "load-module", "module-combine-sink", "sink_name=sm_pair", "slaves=sm_mic,sm_call",
                        "channels=2", "channel_map=front-left,front-right"], env=self.env, check=True,
                       capture_output=True, timeout=10)
        return "sm_mic.monitor", "sm_call.monitor"

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


# -- events.jsonl while it grows ----------------------------------------------------------------------------

class EventTail:
    """Reads a growing ``events.jsonl`` on a thread; each complete line stamped with time.monotonic().

    ``events`` is a list of ``(arrival_monotonic, event_dict)``. The session store
    flushes every line as written, so a line's arrival here is within ``poll_s`` of
    the moment the pipeline published it.
    """

    def __init__(self, path: Path, *, poll_s: float = 0.005) -> None:
        self.path, self.poll_s = path, poll_s
        self.events: list[tuple[float, dict]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self.path.exists():
            if self._stop.wait(self.poll_s):
                return
        buf = ""
        with open(self.path, encoding="utf-8") as f:
            while True:
                chunk = f.read()
                if chunk:
                    now = time.monotonic()
                    buf += chunk
                    *lines, buf = buf.split("\n")
                    for line in lines:
                        if line.strip():
                            self.events.append((now, json.loads(line)))
                elif self._stop.is_set():
                    return
                else:
                    time.sleep(self.poll_s)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


# -- numbers and tables ------------------------------------------------------------------------------------

def settings_overrides(assignments: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``SECTION.KEY=VALUE`` assignments as settings overrides (VALUE as JSON: 5, 0.2, true, [1, 2];
    anything else is a string). A malformed one ends the benchmark with a one-line message."""
    out: dict[str, dict[str, Any]] = {}
    for item in assignments:
        key, sep, value = item.partition("=")
        section, _, name = key.strip().partition(".")
        if not (sep and section and name):
            raise SystemExit(f"{item!r}: expected SECTION.KEY=VALUE")
        try:
            out.setdefault(section, {})[name] = json.loads(value.strip())
        except ValueError:
            out.setdefault(section, {})[name] = value.strip()
    return out


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation; nan for no values."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


_NORM = re.compile(r"[^a-z0-9' ]+")


def words(text: str) -> list[str]:
    """Lower case, punctuation removed (apostrophes kept), split on spaces."""
    return _NORM.sub(" ", text.lower().replace("-", " ")).split()


def word_errors(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Levenshtein distance in words (substitutions + deletions + insertions)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table, numbers right-aligned."""
    cells = [[str(h) for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    out = []
    for k, row in enumerate(cells):
        out.append("  ".join(c.rjust(w) if k and _numeric(c) else c.ljust(w) for c, w in zip(row, widths)).rstrip())
        if k == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        return f"{value:.3g}" if abs(value) < 10 else f"{value:.1f}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def _numeric(cell: str) -> bool:
    return bool(re.fullmatch(r"[-+]?[\d.]+(e[-+]?\d+)?[x%]?", cell))


def verdict(value: float, target: float, *, at_most: bool) -> str:
    """'met' / 'NOT met' against a target (``at_most``: value <= target)."""
    if math.isnan(value):
        return "n/a"
    ok = value <= target if at_most else value >= target
    return "met" if ok else "NOT met"
