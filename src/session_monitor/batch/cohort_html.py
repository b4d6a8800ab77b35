"""``cohort.html``: the cohort table as one self-contained page, with inline SVG plots.

Nothing is loaded from anywhere (a Content-Security-Policy forbids it): the page can be
mailed or archived with the sessions. The plots are horizontal bars, one bar per
session, where comparing sessions by eye is quicker than reading the table: rupture
episodes by kind, alerts per hour, talk share and, where annotations were given, F1.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from session_monitor.batch.cohort import columns, write_private

__all__ = ["render_cohort", "write_cohort_html"]

_BAR_H, _GAP, _LABEL_W, _PLOT_W, _PAD = 18, 6, 190, 420, 28
_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d2433;background:#fff}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;font-size:12px}th,td{border:1px solid #d5d9e2;padding:3px 6px;text-align:right}
th{background:#f1f3f7;position:sticky;top:0}td.text{text-align:left}tr.failed td{color:#a3262e}
.plots{display:flex;flex-wrap:wrap;gap:24px}.plot text{font-size:11px;fill:#1d2433}
.axis{stroke:#9aa3b5}.legend span{margin-right:12px}.swatch{display:inline-block;width:10px;height:10px;margin-right:4px}
""" + "".join(f".{name}{{fill:{color}}}i.{name}{{background:{color}}}" for name, color in {
    "withdrawal": "#4f7bd9", "confrontation": "#e0593b", "therapist": "#6b8f71", "patient": "#c9a227",
    "alerts": "#8a5cc2", "f1": "#2f8f9d"}.items())


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _bars(title: str, labels: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]], *,
          unit: str, vmax: float | None = None) -> str:
    """Stacked horizontal bars: one bar per label, one segment per series (css class = name)."""
    totals = [sum(v[i] or 0 for _, v in series) for i in range(len(labels))]
    top = vmax if vmax is not None else max(totals + [0.0])
    top = top if top > 0 else 1.0
    height = _PAD + len(labels) * (_BAR_H + _GAP) + _PAD
    width = _LABEL_W + _PLOT_W + 60
    parts = [f'<svg class="plot" role="img" aria-label="{_esc(title)}" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
             f'<text x="0" y="14" font-weight="bold">{_esc(title)}</text>']
    for i, label in enumerate(labels):
        y = _PAD + i * (_BAR_H + _GAP)
        parts.append(f'<text x="{_LABEL_W - 6}" y="{y + _BAR_H - 5}" text-anchor="end">{_esc(label)}</text>')
        x = float(_LABEL_W)
        for name, values in series:
            w = (values[i] or 0) / top * _PLOT_W
            if w > 0:
                parts.append(f'<rect class="{_esc(name)}" x="{x:.1f}" y="{y}" width="{w:.1f}" height="{_BAR_H}">'
                             f'<title>{_esc(label)}: {_esc(name)} {values[i]:g} {_esc(unit)}</title></rect>')
                x += w
        parts.append(f'<text x="{x + 4:.1f}" y="{y + _BAR_H - 5}">{totals[i]:g}</text>')
    base = _PAD + len(labels) * (_BAR_H + _GAP)
    parts.append(f'<line class="axis" x1="{_LABEL_W}" x2="{_LABEL_W}" y1="{_PAD - 4}" y2="{base}"/>')
    parts.append(f'<text x="{_LABEL_W + _PLOT_W}" y="{base + 14}" text-anchor="end">{top:g} {_esc(unit)}</text>')
    parts.append("</svg>")
    legend = "".join(f'<span><i class="swatch {_esc(n)}"></i>{_esc(n)}</span>'
                     for n, _ in series) if len(series) > 1 else ""
    return f'<figure>{"".join(parts)}<figcaption class="legend">{legend}</figcaption></figure>'


def _table(rows: Sequence[dict[str, Any]], cols: Sequence[str], css_id: str) -> str:
    head = "".join(f"<th>{_esc(c)}</th>" for c in cols)
    body = []
    for r in rows:
        cls = ' class="failed"' if r.get("status") == "failed" else ""
        cells = "".join(
            f'<td class="text">{_esc(r.get(c))}</td>' if isinstance(r.get(c), str) else f"<td>{_esc(r.get(c))}</td>"
            for c in cols)
        body.append(f"<tr{cls}>{cells}</tr>")
    return f'<table id="{css_id}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def render_cohort(sessions: Sequence[dict[str, Any]], totals: Sequence[dict[str, Any]], *, title: str) -> str:
    """The page for the session rows and clinician totals of :mod:`session_monitor.batch.cohort`."""
    cols = [c for c in columns(sessions) if c != "row" and any(r.get(c) not in (None, "") for r in sessions)]
    total_cols = [c for c in columns(totals) if c not in ("row", "session", "source", "reason")
                  and any(r.get(c) not in (None, "") for r in totals)]
    ran = [r for r in sessions if r.get("status") != "failed"]
    labels = [r["session"] for r in ran]
    plots = []
    if ran:
        plots.append(_bars("Rupture episodes", labels,
                           [(k, [r.get(f"episodes_{k}") for r in ran]) for k in ("withdrawal", "confrontation")],
                           unit="episodes"))
        plots.append(_bars("Alerts per hour", labels, [("alerts", [r.get("alerts_per_hour") for r in ran])],
                           unit="/h"))
        plots.append(_bars("Talk share", labels,
                           [(k, [r.get(f"talk_share_{k}") for r in ran]) for k in ("therapist", "patient")],
                           unit="of talk", vmax=1.0))
        scored = [r for r in ran if r.get("eval_f1") is not None]
        if scored:
            plots.append(_bars("F1 against annotations", [r["session"] for r in scored],
                               [("f1", [r["eval_f1"] for r in scored])], unit="", vmax=1.0))
    failed = len(sessions) - len(ran)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>{_esc(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{_esc(title)}</h1>
<p id="counts">{len(sessions)} recordings: {len(ran)} sessions, {failed} failed.</p>
<h2>Plots</h2><div class="plots">{"".join(plots) or "<p>No session ran.</p>"}</div>
<h2>Per clinician</h2>{_table(totals, total_cols, "totals")}
<h2>Sessions</h2>{_table(sessions, cols, "sessions")}
<p>Figures as in each session's report.html; evaluation figures as <code>session-monitor evaluate</code> gives
them. An empty cell: the figure is not in that session's events (or no annotations were given).</p>
</body></html>
"""


def write_cohort_html(path: Path, sessions: Sequence[dict[str, Any]], totals: Sequence[dict[str, Any]], *,
                      title: str = "Cohort") -> Path:
    """Write the page (0600, replaced atomically)."""
    write_private(path, render_cohort(sessions, totals, title=title))
    return path
