"""The running MI figures (``mi_figures`` events) as one line a clinician reads.

The report and the terminal view say them the same way; the dashboard's page says them
in its own script, in the same words.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["mi_line"]


def _pct(v: Any) -> str:
    return "–" if v is None else f"{v:.0%}"


def mi_line(f: Mapping[str, Any]) -> str:
    """"reflections : questions 1.5 (3 : 2) · complex reflections 33% · open questions 50% ·
    client change talk 4 vs sustain talk 1 · advice or information in 10% of your turns"
    ("–" where a share has nothing to count yet)."""
    ratio = "–" if f.get("reflection_to_question") is None else f"{f['reflection_to_question']:.1f}"
    return (f"reflections : questions {ratio} ({f.get('reflections', 0)} : {f.get('questions', 0)}) · "
            f"complex reflections {_pct(f.get('complex_reflection_share'))} · "
            f"open questions {_pct(f.get('open_question_share'))} · "
            f"client change talk {f.get('change_talk', 0)} vs sustain talk {f.get('sustain_talk', 0)} · "
            f"advice or information in {_pct(f.get('input_share'))} of your turns")
