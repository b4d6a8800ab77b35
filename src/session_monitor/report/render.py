"""The post-session report: ``report.html`` (self-contained) and ``timeline.csv``.

``report.html`` opens offline in any browser: the plot is inline SVG, the style is
inline CSS, there is no script and no external asset. It shows the timeline of the
rupture likelihood and its sub-scores with alert bands, annotations and markers; the
summary (talk share, median response latency per speaker, longest silences, rupture
episodes with kind, subtypes and repair, counts per 3RS subtype); and the transcript
by speaker with the markers found in it. Markers weaker than the session's
``display.min_marker_strength`` are left out (events.jsonl and timeline.csv keep them). Works
on a session that ended early.
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
from pathlib import Path
from typing import Any

from session_monitor.errors import SessionDirError
from session_monitor.event_log import read_events
from session_monitor.events import alert_spans
from session_monitor.mi_text import mi_line
from session_monitor.quotes import quotations
from session_monitor.report.summary import SessionSummary, summarize

__all__ = ["write_report", "timeline_rows"]

_COLORS = {"likelihood": "#e8e8e8", "withdrawal": "#6aa9ff", "confrontation": "#ff9a52", "repair": "#5fd39a"}
_W, _H, _PAD_L, _PAD_B, _PAD_T = 1100, 300, 44, 46, 14
_MAX_POINTS = 2400


def _clock(t: float | None) -> str:
    if t is None:
        return "–"
    m, s = divmod(max(0.0, t), 60)
    return f"{int(m)}:{s:04.1f}"


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _alert_bands(events: list[dict[str, Any]], end_s: float) -> list[tuple[str, float, float]]:
    return [(s.kind, s.start, s.end) for s in alert_spans(events, end_s)]


def timeline_rows(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per ``signal`` event: scores, the alerts on at that time, the top evidence."""
    rows, active = [], set()
    for e in events:
        if e["type"] == "alert":
            (active.add if e["state"] == "on" else active.discard)(e["kind"])
        elif e["type"] == "signal":
            rows.append({
                "t": e["t"], "likelihood": e["likelihood"], "withdrawal": e["withdrawal"],
                "confrontation": e["confrontation"], "alert": ";".join(sorted(active)),
                "top_evidence": ";".join(x.get("marker", "") for x in e.get("evidence", [])),
            })
    return rows


def _downsample(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """At most _MAX_POINTS rows, keeping each bucket's peak so short ruptures stay visible."""
    if len(rows) <= _MAX_POINTS:
        return rows
    step = len(rows) / _MAX_POINTS
    out = []
    for i in range(_MAX_POINTS):
        bucket = rows[int(i * step) : int((i + 1) * step)] or rows[-1:]
        out.append(max(bucket, key=lambda r: r["likelihood"]))
    return out


def _plot(events: list[dict[str, Any]], rows: list[dict[str, Any]], end_s: float) -> str:
    span = max(end_s, 1.0)
    plot_w, plot_h = _W - _PAD_L - 10, _H - _PAD_B - _PAD_T

    def x(t: float) -> float:
        return _PAD_L + plot_w * min(max(t, 0.0), span) / span

    def y(v: float) -> float:
        return _PAD_T + plot_h * (1 - min(max(v, 0.0), 1.0))

    parts = [f'<svg id="timeline" viewBox="0 0 {_W} {_H}" role="img" aria-label="rupture likelihood over the session">',
             f'<rect x="{_PAD_L}" y="{_PAD_T}" width="{plot_w}" height="{plot_h}" class="plotbg"/>']
    for kind, start, stop in _alert_bands(events, end_s):
        parts.append(f'<rect class="band {kind}" x="{x(start):.1f}" y="{_PAD_T}" width="{max(1.0, x(stop) - x(start)):.1f}" '
                     f'height="{plot_h}"><title>{_esc(kind)} alert {_clock(start)}–{_clock(stop)}</title></rect>')
    for v in (0.0, 0.5, 1.0):
        parts.append(f'<line class="grid" x1="{_PAD_L}" x2="{_W - 10}" y1="{y(v):.1f}" y2="{y(v):.1f}"/>'
                     f'<text class="axis" x="{_PAD_L - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.1f}</text>')
    step = 60 if span <= 1200 else 300
    for t in range(0, int(span) + 1, step):
        parts.append(f'<text class="axis" x="{x(t):.1f}" y="{_H - _PAD_B + 16}" text-anchor="middle">{t // 60} min</text>')
    for key in ("withdrawal", "confrontation", "likelihood"):
        pts = " ".join(f"{x(r['t']):.1f},{y(r[key]):.1f}" for r in rows)
        if pts:
            parts.append(f'<polyline class="line {key}" points="{pts}" stroke="{_COLORS[key]}"/>')
    for m in (e for e in events if e["type"] == "marker"):
        color = _COLORS.get(m["kind"], "#aaa")
        parts.append(f'<line class="marker {m["kind"]}" x1="{x(m["t"]):.1f}" x2="{x(m["t"]):.1f}" '
                     f'y1="{_H - _PAD_B + 22}" y2="{_H - _PAD_B + 34}" stroke="{color}">'
                     f'<title>{_clock(m["t"])} {_esc(m["marker"])}: {_esc(m["explanation"])}</title></line>')
    for a in (e for e in events if e["type"] == "annotation"):
        parts.append(f'<line class="annotation" x1="{x(a["t"]):.1f}" x2="{x(a["t"]):.1f}" y1="{_PAD_T}" '
                     f'y2="{_H - _PAD_B}"><title>{_esc(a["label"])} ({_esc(a.get("source", ""))}) at '
                     f'{_clock(a["t"])}</title></line>'
                     f'<text class="annotation-label" x="{x(a["t"]) + 3:.1f}" y="{_PAD_T + 12}">{_esc(a["label"])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _mi_html(f: dict[str, Any]) -> str:
    """The session's MI figures from the utterance classifiers (nothing when they did not run)."""
    if not f:
        return ""
    return f'<dt>MI figures (classifier estimates)</dt><dd id="mi-figures">{_esc(mi_line(f))}</dd>'


def _summary_html(s: SessionSummary) -> str:
    share = ", ".join(f"{_esc(k)} {v:.0%}" for k, v in s.talk_share.items()) or "no speech found"
    latency = ", ".join(f"{_esc(k)} {v:.2f} s (n={s.latency_count[k]})" for k, v in s.median_latency_s.items()) or "–"
    silences = "".join(
        f"<li>{sl.duration_s:.1f} s at {_clock(sl.start)}"
        f"{' after ' + _esc(sl.before) if sl.before else ''}{', then ' + _esc(sl.after) if sl.after else ''}</li>"
        for sl in s.longest_silences) or "<li>–</li>"
    return (f'<dl class="summary"><dt>Talk share</dt><dd>{share}</dd>'
            f"<dt>Median response latency</dt><dd>{latency}</dd>{_mi_html(s.mi_figures)}</dl>"
            f"<h3>Longest silences</h3><ul>{silences}</ul>")


def _episodes_html(s: SessionSummary) -> str:
    if not s.episodes:
        return '<p class="none" id="episodes">No rupture episode was detected.</p>'
    rows = []
    for i, ep in enumerate(s.episodes, 1):
        if ep.repaired:
            repair = f"yes, {_clock(ep.repair_t)}: {_esc(', '.join(ep.repair_markers).replace('_', ' '))}"
        else:
            repair = "no repair followed"
        peak = f"{ep.peak_likelihood:.2f} at {_clock(ep.peak_t)}" if ep.peak_likelihood is not None else "–"
        note = " (still open when the session ended)" if ep.open_at_end else ""
        rows.append(f'<tr class="episode {ep.kind}"><td>{i}</td><td>{_esc(ep.kind)}{note}</td>'
                    f"<td>{_clock(ep.start)}–{_clock(ep.end)}</td><td>{peak}</td>"
                    f"<td>{_esc(', '.join(ep.subtypes).replace('_', ' ')) or '–'}</td><td>{repair}</td></tr>")
    return ('<table id="episodes"><thead><tr><th>#</th><th>kind</th><th>when</th><th>peak</th>'
            "<th>3RS subtypes</th><th>repair</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table>")


def _counts_html(s: SessionSummary) -> str:
    if not s.subtype_counts:
        return "<p class='none'>No markers.</p>"
    rows = "".join(f'<tr class="{_esc(k)}"><td>{_esc(k)}</td><td>{_esc(m.replace("_", " "))}</td><td>{n}</td></tr>'
                   for (k, m), n in s.subtype_counts.items())
    return f'<table id="counts"><thead><tr><th>kind</th><th>marker</th><th>count</th></tr></thead><tbody>{rows}</tbody></table>'


def _transcript_html(events: list[dict[str, Any]]) -> str:
    finals = [e for e in events if e["type"] == "transcript" and e.get("final", True)]
    transcripts = [e for e in finals if e.get("text")]
    if finals and not transcripts:
        return (f"<p class='none'>{len(finals)} utterances were transcribed; their words were not kept "
                "(privacy.store_transcript = false, or the consent record does not grant the transcript).</p>")
    if not transcripts:
        return "<p class='none'>No transcript (transcription off, or no speech was transcribed).</p>"
    markers = [e for e in events if e["type"] == "marker"]

    def overlaps(m: dict[str, Any], tr: dict[str, Any]) -> bool:
        return m["speaker"] == tr["speaker"] and m["start"] <= tr["end"] + 0.5 and m["end"] >= tr["start"] - 0.5

    # each marker's chip goes on the last line of its speaker that its span reaches: a marker
    # about a stretch of talk (the talk-share collapse's minute, a run of advice) is one chip
    # where it was recognised, not one on every line it covers
    found_at = [[m for m in markers if overlaps(m, tr)] for tr in transcripts]
    chip_at = {id(m): i for i, found in enumerate(found_at) for m in found}  # the last line wins
    lines = []
    for i, (tr, found) in enumerate(zip(transcripts, found_at)):
        text = _esc(tr["text"])
        for m in found:
            quote = next((_esc(q) for q in quotations(m["explanation"]) if q and _esc(q) in text), None)
            if quote:
                text = text.replace(quote, f'<mark class="{m["kind"]}">{quote}</mark>', 1)
        chips = "".join(f'<span class="chip {m["kind"]}" title="{_esc(m["explanation"])}">'
                        f'{_esc(m["marker"].replace("_", " "))}</span>' for m in found if chip_at[id(m)] == i)
        lines.append(f'<li class="{_esc(tr["speaker"])}"><span class="time">{_clock(tr["start"])}</span>'
                     f'<span class="who">{_esc(tr["speaker"])}</span><span class="text">{text}</span>{chips}</li>')
    return '<ol id="transcript">' + "".join(lines) + "</ol>"


_CSS = """
body{background:#15171c;color:#e6e6e6;font:15px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1160px;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #333}h3{font-size:15px}
.meta{color:#9aa0aa}.warn{color:#ffb454;font-weight:600}
svg{width:100%;height:auto;background:#1c1f26;border-radius:6px}.plotbg{fill:#1c1f26}
.grid{stroke:#333;stroke-width:1}.axis{fill:#8a909a;font-size:11px}
.line{fill:none;stroke-width:2.6}.line.likelihood{stroke-width:1.4;stroke-dasharray:5 3}
.band.withdrawal{fill:#6aa9ff;opacity:.18}.band.confrontation{fill:#ff9a52;opacity:.2}
.marker{stroke-width:2}.annotation{stroke:#ff5f7a;stroke-dasharray:4 3}.annotation-label{fill:#ff5f7a;font-size:11px}
.legend span{margin-right:16px}.legend i{display:inline-block;width:14px;height:3px;vertical-align:middle;margin-right:5px}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #2c2f36;padding:6px 8px;text-align:left;vertical-align:top}
dl.summary{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px}dt{color:#9aa0aa}dd{margin:0}
ol#transcript{list-style:none;padding:0}ol#transcript li{padding:4px 0;border-bottom:1px solid #22252c}
.time{color:#8a909a;display:inline-block;width:60px}.who{display:inline-block;width:80px;color:#9aa0aa}
li.patient .who{color:#c6b3ff}mark{background:#5a3b1f;color:#fff}mark.withdrawal{background:#233d63}
.chip{font-size:12px;border-radius:10px;padding:1px 8px;margin-left:6px;background:#2c2f36}
.chip.withdrawal{color:#9cc6ff}.chip.confrontation{color:#ffb98a}.chip.repair{color:#8fe6b8}
.none{color:#9aa0aa}
"""


def _write_private(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:  # O_NOFOLLOW: a link planted in the folder is refused, not followed
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise SessionDirError(f"{tmp}: cannot be written ({exc.strerror}); remove it and try again") from None
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    os.replace(tmp, path)


def shown_events(events: list[dict[str, Any]], meta: dict[str, Any]) -> list[dict[str, Any]]:
    """``events`` without the markers weaker than the session's ``display.min_marker_strength``
    (as session.json recorded its settings; 0 for a session from before the setting)."""
    values = (meta.get("settings") or {}).get("values") or {}
    floor = (values.get("display") or {}).get("min_marker_strength", 0.0)
    if not isinstance(floor, (int, float)) or isinstance(floor, bool):
        floor = 0.0
    return [e for e in events if e["type"] != "marker" or not e.get("strength", 0.0) < floor]


def write_report(folder: str | Path) -> tuple[Path, Path]:
    """Write ``report.html`` and ``timeline.csv`` into the session ``folder``; return their paths."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SessionDirError(f"{folder}: not a folder; give a session folder written by session-monitor")
    events = read_events(folder)
    try:
        meta = json.loads((folder / "session.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        meta = {}
    complete = bool(meta.get("complete")) and any(
        e["type"] == "session" and e.get("state") == "ended" for e in events)
    rows = timeline_rows(events)  # the data export: every signal's evidence as recorded
    events = shown_events(events, meta)
    summary = summarize(events, complete=complete)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["t", "likelihood", "withdrawal", "confrontation", "alert",
                                             "top_evidence"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    csv_path = folder / "timeline.csv"
    try:
        _write_private(csv_path, buf.getvalue())
        html_path = folder / "report.html"
        _write_private(html_path, _render(folder, meta, events, summary, rows))
    except OSError as exc:
        raise SessionDirError(f"{folder}: cannot write the report ({exc.strerror})") from None
    return html_path, csv_path


def _render(folder: Path, meta: dict[str, Any], events: list[dict[str, Any]], summary: SessionSummary,
            rows: list[dict[str, Any]]) -> str:
    state = ("" if summary.complete else
             '<p class="warn" id="incomplete">This session ended early (crash or interruption): '
             "the report covers what was recorded.</p>")
    legend = "".join(f'<span><i style="background:{c}"></i>{k}</span>' for k, c in _COLORS.items())
    title = f"Session {meta.get('id', folder.name)}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{_CSS}</style></head><body>
<h1>{_esc(title)}</h1>
<p class="meta">{_esc(meta.get('source', ''))} · started {_esc(meta.get('started_at', '?'))} ·
{_clock(summary.duration_s)} of session time · settings {_esc((meta.get('settings') or {}).get('digest', '?'))}</p>
{state}
<h2>Timeline</h2>
{_plot(events, _downsample(rows), summary.duration_s)}
<p class="legend">{legend}<span>shaded: alert</span><span>dashed: annotation</span><span>ticks: markers</span></p>
<h2>Summary</h2>
{_summary_html(summary)}
<h2>Rupture episodes</h2>
{_episodes_html(summary)}
<h2>3RS markers</h2>
{_counts_html(summary)}
<h2>Transcript</h2>
{_transcript_html(events)}
</body></html>
"""
