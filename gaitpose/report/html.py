"""One self-contained HTML page a clinician can read: metrics, events, warnings, plots, model, disclaimer.

Self-contained on purpose: inline CSS and plots embedded as base64, so the page survives being
e-mailed or attached to a record. The overlay video is linked relatively (it sits beside the page).
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gaitpose.fsutil import write_text_atomic

DISCLAIMER = (
    "Research software, not a medical device. Values are estimated from video by a machine-learning "
    "model and must be checked by a qualified professional before any clinical use."
)

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:980px;color:#222}
h1{font-size:22px;margin-bottom:4px} h2{font-size:17px;border-bottom:1px solid #ddd;padding-bottom:3px;margin-top:26px}
table{border-collapse:collapse;font-size:14px;margin:6px 0}
td,th{border:1px solid #ddd;padding:4px 9px;text-align:right}
th{background:#f4f4f4} td:first-child,th:first-child{text-align:left}
.warn{background:#fff4e0;border-left:4px solid #f0a020;padding:8px 12px;margin:6px 0}
.disclaimer{background:#fdecec;border-left:4px solid #d03030;padding:8px 12px;margin:14px 0;font-weight:600}
.muted{color:#666;font-size:13px} img{max-width:100%;border:1px solid #eee}
.events{max-height:260px;overflow-y:auto;display:inline-block}
"""


def _fmt(v: Any, nd: int = 2) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if v != v:  # NaN
            return "–"
        return f"{v:.{nd}f}"
    return html.escape(str(v))


def _lr_row(label: str, value: Any, unit: str = "") -> str:
    if isinstance(value, Mapping):
        left, right = value.get("left"), value.get("right")
        mean = value.get("mean")
        cells = f"<td>{_fmt(left)}</td><td>{_fmt(right)}</td><td>{_fmt(mean)}</td>"
    else:
        cells = f"<td colspan=2></td><td>{_fmt(value)}</td>"
    return f"<tr><td>{html.escape(label)}</td>{cells}<td>{html.escape(unit)}</td></tr>"


def _metrics_table(m: Mapping[str, Any]) -> str:
    units = m.get("units", "relative")
    length_unit = "m" if units == "m" else "leg lengths"
    speed_unit = "m/s" if units == "m" else "leg lengths/s"
    rows = [
        _lr_row("Cadence", m.get("cadence_steps_per_min"), "steps/min"),
        _lr_row("Step time", m.get("step_time_s"), "s"),
        _lr_row("Stride time", m.get("stride_time_s"), "s"),
        _lr_row("Stance", m.get("stance_pct"), "% cycle"),
        _lr_row("Swing", m.get("swing_pct"), "% cycle"),
        _lr_row("Double support", m.get("double_support_pct"), "% cycle"),
        _lr_row("Step length", m.get("step_length"), length_unit),
        _lr_row("Stride length", m.get("stride_length"), length_unit),
        _lr_row("Walking speed", m.get("walking_speed"), speed_unit),
        _lr_row("Step-time symmetry index", m.get("symmetry"), "% (0 = symmetric)"),
        _lr_row("Strides / steps", f"{m.get('n_strides', 0)} / {m.get('n_steps', 0)}", ""),
    ]
    head = "<tr><th>Measure</th><th>Left</th><th>Right</th><th>Value / mean</th><th>Unit</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def _angles_table(angles: Mapping[str, Any]) -> str:
    if not angles:
        return "<p class=muted>No joint angles.</p>"
    head = "<tr><th>Joint</th><th>min</th><th>max</th><th>range</th><th>mean</th></tr>"
    rows = []
    for name, s in angles.items():
        if isinstance(s, Mapping):
            cells = "".join(f"<td>{_fmt(s.get(k), 1)}</td>" for k in ("min", "max", "range", "mean"))
            rows.append(f"<tr><td>{html.escape(name.replace('_', ' '))}</td>{cells}</tr>")
    return f"<table>{head}{''.join(rows)}</table><p class=muted>Degrees, sagittal plane, flexion positive.</p>"


def _events_table(events: Sequence[Any]) -> str:
    if not events:
        return "<p class=muted>No gait events detected.</p>"
    rows = "".join(
        f"<tr><td>{html.escape(e.foot)}</td><td>{html.escape(e.event.replace('_', ' '))}</td>"
        f"<td>{int(e.frame)}</td><td>{e.time_s:.3f}</td></tr>"
        for e in events
    )
    head = "<tr><th>Foot</th><th>Event</th><th>Frame</th><th>Time (s)</th></tr>"
    return f"<div class=events><table>{head}{rows}</table></div>"


def _img(path: Path | None, alt: str) -> str:
    if path is None or not Path(path).exists():
        return ""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def write_report(
    out_path: str | os.PathLike[str],
    *,
    video_name: str,
    summary: Mapping[str, Any],
    metrics: Mapping[str, Any],
    events: Sequence[Any],
    warnings: Sequence[str],
    model_info: Mapping[str, Any],
    angles_png: Path | None = None,
    cycles_png: Path | None = None,
    overlay_name: str | None = None,
) -> Path:
    """Write report.html (atomically) and return its path."""
    out_path = Path(out_path)
    warn_html = "".join(f"<div class=warn>{html.escape(w)}</div>" for w in warnings)
    if not metrics.get("walking_found", True):
        warn_html = "<div class=warn><b>No walking was detected in this video.</b></div>" + warn_html
    overlay = (
        f'<p><a href="{html.escape(overlay_name)}">Overlay video ({html.escape(overlay_name)})</a> '
        "— skeleton with heel strikes (HS) and toe offs (TO).</p>"
        if overlay_name
        else ""
    )
    model_rows = "".join(
        f"<tr><td>{html.escape(str(k))}</td><td>{_fmt(v)}</td></tr>" for k, v in model_info.items()
    )
    proc = (
        f"{summary.get('frames', 0)} frames at {_fmt(summary.get('fps'), 1)} fps; subject found in "
        f"{summary.get('frames_with_pose', 0)} frames; processed at {_fmt(summary.get('throughput_fps'), 1)} frames/s; "
        f"person localiser ran {summary.get('localizer_calls', 0)} times."
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Gait report – {html.escape(video_name)}</title>
<style>{CSS}</style></head><body>
<h1>Gait report</h1>
<p class=muted>Video: <b>{html.escape(video_name)}</b> · {proc}</p>
<div class=disclaimer>{html.escape(DISCLAIMER)}</div>
{warn_html}
<h2>Spatio-temporal parameters</h2>
<p class=muted>Units: {html.escape(str(metrics.get('units', 'relative')))}
{'' if metrics.get('units') == 'm' else '(no depth or height given: lengths in leg lengths, not metres)'}</p>
{_metrics_table(metrics)}
<h2>Joint angles</h2>
{_angles_table(metrics.get('angles', {}))}
{_img(angles_png, 'joint angles over time')}
{_img(cycles_png, 'joint angles over the gait cycle')}
<h2>Gait events</h2>
{overlay}
{_events_table(events)}
<h2>Model and processing</h2>
<table>{model_rows}</table>
<p class=muted>{html.escape(DISCLAIMER)}</p>
</body></html>
"""
    write_text_atomic(out_path, page)
    return out_path
