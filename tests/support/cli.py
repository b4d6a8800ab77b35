"""Helpers for tests that run the command line and read sessions back."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from session_monitor.events import TIMING_FIELDS


def run_cli(*args: str, timeout: float = 600, **kwargs) -> subprocess.CompletedProcess:
    """``session-monitor ARGS`` in a subprocess, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "session_monitor", *args], capture_output=True, text=True,
        timeout=timeout, **kwargs,
    )


def events(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (Path(folder) / "events.jsonl").read_text().splitlines()]


def without_timing(evs: list[dict]) -> list[dict]:
    return [{k: v for k, v in e.items() if k not in TIMING_FIELDS} for e in evs]


def normalize_words(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words."""
    ref, hyp = normalize_words(reference), normalize_words(hypothesis)
    d = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, d[0] = d[0], i
        for j, h in enumerate(hyp, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (r != h))
    return d[len(hyp)] / len(ref)


def refused(result, *needles: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("session-monitor: error: ")
    for needle in needles:
        assert needle in lines[0], lines[0]


def accepted(result, *warnings: str) -> None:
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    for warning in warnings:
        assert any("warning:" in line and warning in line for line in result.stderr.splitlines()), result.stderr
