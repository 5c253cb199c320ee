"""report.html: one self-contained page a clinician can read and print, from the clinical view.

Self-contained on purpose: inline CSS, plots and key frames embedded as data URIs, so the page
survives being e-mailed or attached to a record; no script. The words and numbers come from
:func:`gaitpose.report.clinical.build_clinical_view`, which is also written as ``clinical.json``
for the web page, so both show the same table, flags and references.
"""

from __future__ import annotations

import base64
import html
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from gaitpose.fsutil import write_text_atomic
from gaitpose.report.clinical import DISCLAIMER, build_clinical_view

CLINICAL_JSON = "clinical.json"
MARK = {"outside": "*", "implausible": "†"}

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1000px;color:#1d2330;
 padding:0 16px;font-size:14px;line-height:1.4}
h1{font-size:22px;margin:0 0 2px}
h2{font-size:16px;border-bottom:2px solid #dfe3ea;padding-bottom:3px;margin:22px 0 8px}
table{border-collapse:collapse;margin:6px 0}
td,th{border:1px solid #d8dce4;padding:3px 8px;text-align:right;vertical-align:top}
th{background:#f1f3f7;font-weight:600} td:first-child,th:first-child{text-align:left}
.st td.unit,.st td.ref,.st th.unit,.st th.ref{text-align:left}
.st td.unit,.st td.ref{color:#444} .st td.ref{font-size:12px}
.outside{background:#fff1d6} .implausible{background:#fbd9d9;font-weight:600}
.session{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:8px 0}
.session dt{color:#5b6475} .session dd{margin:0}
.flag{padding:6px 10px;margin:4px 0;border-left:4px solid}
.flag.implausible{background:#fdecec;border-color:#c62828;font-weight:normal}
.flag.outside{background:#fff6e5;border-color:#e69b00}
.warn{background:#f4f6fa;border-left:4px solid #8a94a8;padding:6px 10px;margin:4px 0}
.disclaimer{background:#fdecec;border-left:4px solid #c62828;padding:8px 12px;margin:12px 0;font-weight:600}
.muted{color:#5b6475;font-size:12.5px} img{max-width:100%}
.stills{display:flex;flex-wrap:wrap;gap:10px} .stills figure{margin:0}
.stills img{display:block;height:240px;width:auto;border:1px solid #ccc}
.stills figcaption{font-size:12px;color:#444;width:0;min-width:100%}
.events{display:flex;flex-wrap:wrap;gap:10px;align-items:flex-start} .events table{margin:0}
.legend{font-size:12px;color:#444}
@media print{
 @page{size:A4;margin:14mm}
 body{margin:0;max-width:none;font-size:11.5px}
 h2{break-after:avoid} table,figure,.flag,img,.session{break-inside:avoid}
 .stills img{height:190px} a{color:inherit;text-decoration:none}
 .outside,.implausible,.flag,th,.disclaimer{-webkit-print-color-adjust:exact;print-color-adjust:exact}
}
"""


def _e(v: Any) -> str:
    return html.escape(str(v))


def _cell(text: str, status: str | None, cls: str = "") -> str:
    st = status if status in MARK else ""
    mark = MARK.get(st, "")
    klass = " ".join(c for c in (cls, st) if c)
    return f"<td{f' class={klass!r}' if klass else ''}>{_e(text)}{mark}</td>"


def _st_table(view: Mapping[str, Any]) -> str:
    rows = view["spatiotemporal"]["rows"]
    if not rows:
        return "<p class=muted>No spatio-temporal parameters (no walking found).</p>"
    head = ("<tr><th>Measure</th><th>Left</th><th>Right</th><th>Mean / value</th><th class=unit>Unit</th>"
            "<th>Symmetry index</th><th class=ref>Healthy adult reference</th></tr>")
    body = []
    for r in rows:
        st = r["status"]
        body.append(
            f"<tr><td>{_e(r['label'])}</td>{_cell(r['left'], st['left'])}{_cell(r['right'], st['right'])}"
            f"{_cell(r['value'], st['value'])}<td class=unit>{_e(r['unit'])}</td>{_cell(r['symmetry'], st['symmetry'])}"
            f"<td class=ref>{_e(r['reference'])} <span class=muted>{_e(r['reference_source'])}</span></td></tr>")
    return (f"<table class=st>{head}{''.join(body)}</table>"
            f"<p class=muted>{_e(view['spatiotemporal']['counts'])}. {_e(view['spatiotemporal']['note'])}</p>")


def _angle_table(view: Mapping[str, Any]) -> str:
    rows = view["angles"]["rows"]
    if not rows:
        return "<p class=muted>No joint angles.</p>"
    rejected = any(r.get("rejected") for r in rows)
    head = ("<tr><th>Joint</th><th>Side</th><th>Min (°)</th><th>Max (°)</th><th>Range (°)</th><th>Cycles</th>"
            + ("<th>Rejected</th>" if rejected else "") + "<th class=ref>Reference min to max (°)</th></tr>")
    body = "".join(
        f"<tr><td>{_e(r['joint'])}</td><td>{_e(r['side'])}</td>{_cell(r['min'], r['status'])}"
        f"{_cell(r['max'], r['status'])}<td>{_e(r['range'])}</td><td>{_e(r['cycles'])}</td>"
        + (f"<td>{_e(r.get('rejected') or '–')}</td>" if rejected else "")
        + f"<td class=ref>{_e(r['reference'])}</td></tr>"
        for r in rows
    )
    notes = list(dict.fromkeys((r["joint"], r["note"]) for r in rows if r.get("note")))  # table order, once each
    toe = view["angles"].get("toe_off") or {}
    toe_txt = ("Toe-off at " + ", ".join(f"{v} ({k})" for k, v in toe.items()) + " of the cycle (dotted lines). "
               if toe else "")
    rej = view["angles"].get("rejected_note") or ""
    return (f"<table class=st>{head}{body}</table><p class=muted>{_e(view['angles']['note'])} {_e(toe_txt)}"
            + "".join(f"{_e(j)}: {_e(n)}. " for j, n in notes) + _e(rej) + "</p>")


def _events(view: Mapping[str, Any], per_column: int = 16) -> str:
    ev = view["events"]
    if not ev:
        return "<p class=muted>No gait events detected.</p>"
    head = "<tr><th>Foot</th><th>Event</th><th>Frame</th><th>Time</th></tr>"
    tables = []
    for i in range(0, len(ev), per_column):
        rows = "".join(f"<tr><td>{_e(e['foot'])}</td><td>{_e(e['event'])}</td><td>{_e(e['frame'])}</td>"
                       f"<td>{_e(e['time'])}</td></tr>" for e in ev[i:i + per_column])
        tables.append(f"<table>{head}{rows}</table>")
    return f"<div class=events>{''.join(tables)}</div>"


def _rows_table(columns: Sequence[tuple[str, str]], rows: Sequence[Mapping[str, Any]]) -> str:
    """A plain table of ``rows`` (dicts): ``columns`` are (header, key) pairs."""
    head = "<tr>" + "".join(f"<th>{_e(h)}</th>" for h, _ in columns) + "</tr>"
    body = "".join("<tr>" + "".join(f"<td>{_e(r[k])}</td>" for _, k in columns) + "</tr>" for r in rows)
    return f"<table class=st>{head}{body}</table>"


_EVENT_COLUMNS = (("Event", "event"), ("Matched", "matched"), ("Missed / extra", "missed_extra"),
                  ("Mean |error| (ms)", "mean_abs_ms"), ("Max (ms)", "max_abs_ms"), ("Bias (ms)", "bias_ms"),
                  ("Limits of agreement (ms)", "loa_ms"), ("Within 33 ms (a frame at 30 fps)", "within"))
_STEP_COLUMNS = (("Step metric", "metric"), ("gaitpose", "gaitpose"), ("Reference", "reference"),
                 ("Difference (%)", "diff_pct"))
_ANGLE_COLUMNS = (("Joint", "joint"), ("Side", "side"), ("Frames", "frames"), ("RMSE (°)", "rmse_deg"),
                  ("Bias (°)", "bias_deg"), ("RMSE without bias (°)", "sd_deg"), ("r", "r"))


def _validation(view: Mapping[str, Any]) -> str:
    """The agreement section (events vs the trial's reference, a model's angles); empty without a reference."""
    v = view.get("validation")
    if not v:
        return ""
    parts = ["<h2>Agreement with the reference</h2>"]
    if v["events"]:
        parts.append(f"<p class=muted>Reference events: {_e(v['reference'])}. Error = gaitpose - reference; "
                     "limits of agreement = bias ± 1.96 SD (Bland-Altman).</p>")
        parts.append(_rows_table(_EVENT_COLUMNS, v["events"]))
        parts.append(_rows_table(_STEP_COLUMNS, v["metrics"]))
    if v["angles"]:
        parts.append(f"<p class=muted>Joint angles against {_e(v['angles_reference'])}, frame by frame: a constant "
                     "bias is a calibration difference (a model's static-trial offsets), the RMSE without it is the "
                     "agreement of the curve's shape.</p>")
        parts.append(_rows_table(_ANGLE_COLUMNS, v["angles"]))
    return "\n".join(parts)


def _label(key: str) -> str:
    """``pose_model_sha256`` -> "Pose model SHA-256": model fields in words, not JSON keys."""
    words = str(key).replace("_", " ").replace("sha256", "SHA-256").replace("in channels", "input channels")
    return words[:1].upper() + words[1:]


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (list, tuple)):
        return " × ".join(str(x) for x in v)
    return str(v)


def _img(path: Path | None, alt: str) -> str:
    if path is None or not Path(path).exists():
        return ""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def render_report(view: Mapping[str, Any], *, model_info: Mapping[str, Any] | None = None,
                  angles_png: Path | None = None, cycles_png: Path | None = None,
                  overlay_name: str | None = None, processing: str = "") -> str:
    """The HTML text of report.html for a clinical view (``build_clinical_view``)."""
    video = next((r["value"] for r in view["session"] if r["label"] == "Video"), "")
    session = "".join(f"<dt>{_e(r['label'])}</dt><dd>{_e(r['value'])}</dd>" for r in view["session"])
    flags = "".join(f"<div class='flag {_e(f['level'])}'>{MARK.get(f['level'], '')} {_e(f['text'])}</div>"
                    for f in view["flags"])
    if not view["walking_found"]:
        flags = "<div class='flag implausible'><b>No walking was detected in this video.</b></div>" + flags
    warns = "".join(f"<div class=warn>{_e(w)}</div>" for w in view["warnings"])
    stills = "".join(f"<figure><img alt='{_e(s['caption'])}' src='{_e(s['src'])}'><figcaption>{_e(s['caption'])}"
                     "</figcaption></figure>" for s in view["stills"])
    overlay = (f"<p><a href='{_e(overlay_name)}'>Overlay video ({_e(overlay_name)})</a>: skeleton with heel "
               "strikes (HS) and toe-offs (TO) on every frame.</p>" if overlay_name else "")
    model_rows = "".join(f"<tr><td>{_e(_label(k))}</td><td>{_e(_value(v))}</td></tr>"
                         for k, v in (model_info or {}).items())
    legend = ("<p class=legend><span class=outside>&nbsp;*&nbsp;</span> outside the healthy adult band &nbsp; "
              "<span class=implausible>&nbsp;†&nbsp;</span> implausible: likely a detection error. "
              f"{_e(view['limits_note'])}</p>")
    refs = "".join(f"<li>{_e(r)}</li>" for r in view["references"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Gait report – {_e(video)}</title>
<style>{CSS}</style></head><body>
<h1>{_e(view['title'])}</h1>
<div class=disclaimer>{_e(view['disclaimer'])}</div>
<dl class=session>{session}</dl>
<h2>Points to check</h2>
{flags or '<p class=muted>No value outside the reference bands.</p>'}
{warns}
<h2>Spatio-temporal parameters</h2>
{_st_table(view)}
{legend}
<h2>Joint angles over the gait cycle</h2>
{_img(cycles_png, 'joint angles over the gait cycle with reference bands and toe-off marks')}
{_angle_table(view)}
<h2>Key frames: heel strikes</h2>
{f'<div class=stills>{stills}</div>' if stills else '<p class=muted>No key frames.</p>'}
<h2>Joint angles over time</h2>
{_img(angles_png, 'joint angles over time')}
<h2>Gait events</h2>
{overlay}
{_events(view)}
{_validation(view)}
<h2>Model and processing</h2>
<p class=muted>{_e(processing)}</p>
<table>{model_rows}</table>
<h2>References</h2>
<ol class=muted>{refs}</ol>
<p class=muted>{_e(DISCLAIMER)}</p>
</body></html>
"""


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
    session: Mapping[str, Any] | None = None,
    stills: Sequence[Mapping[str, str]] = (),
    clinical_json: str | None = CLINICAL_JSON,
) -> Path:
    """Write report.html (atomically) and, beside it, ``clinical_json`` (the same view for the web page).

    ``session``: extras for the session block (``direction`` +1/-1, ``analysed_at``, ``mode``);
    ``stills``: key frames from :func:`gaitpose.report.keyframes.heel_strike_stills`.
    ``warnings`` replace ``metrics["warnings"]`` when given (the caller's list is the complete one).
    """
    out_path = Path(out_path)
    m = dict(metrics)
    if warnings:
        m["warnings"] = list(warnings)
    m.setdefault("video", video_name)
    view = build_clinical_view(m, events, session=session, stills=stills)
    proc = (f"{summary.get('frames', 0)} frames; subject found in {summary.get('frames_with_pose', 0)}; pose "
            f"at {float(summary.get('throughput_fps') or 0):.1f} frames/s; person localiser ran "
            f"{summary.get('localizer_calls', 0)} times.")
    page = render_report(view, model_info=model_info, angles_png=angles_png, cycles_png=cycles_png,
                         overlay_name=overlay_name, processing=proc)
    write_text_atomic(out_path, page)
    if clinical_json:
        write_text_atomic(out_path.parent / clinical_json, json.dumps(view, ensure_ascii=False))
    return out_path


__all__ = ["CLINICAL_JSON", "DISCLAIMER", "render_report", "write_report"]
