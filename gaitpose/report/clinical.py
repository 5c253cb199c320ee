"""The clinical view of one analysis: what report.html and the web page both show, already worded.

``build_clinical_view`` turns the result (the metrics.json layout, the events, the cycle curves)
into a JSON-able dict of rows and sentences: the spatio-temporal table per side with units,
symmetry and healthy references, the angle table, flags for values outside the reference band
or outside what walking can produce, session fields, events and key-frame stills. Every number
is formatted here, once, so the HTML report (``gaitpose.report.html``) and the web page
(``service/static/app.js``, which reads ``clinical.json``) print exactly the same text.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping, Sequence
from typing import Any

from gaitpose.report import normative as norm
from gaitpose.skeleton import KEYPOINTS, SKELETON

SCHEMA = "gaitpose.clinical/1"
DISCLAIMER = (
    "Research software, not a medical device. Values are estimated from video by a machine-learning "
    "model and must be checked by a qualified professional before any clinical use."
)
OK, OUTSIDE, IMPLAUSIBLE = "ok", "outside", "implausible"
_RANK = {None: 0, OK: 0, OUTSIDE: 1, IMPLAUSIBLE: 2}
JOINT_LABELS = {"hip": "Hip flexion", "knee": "Knee flexion", "ankle": "Ankle dorsiflexion"}

# metrics key, label, decimals, per side?, symmetry_detail key ("-": no symmetry, swing = 100 - stance)
_ST_ROWS: tuple[tuple[str, str, int, bool, str | None], ...] = (
    ("cadence_steps_per_min", "Cadence", 1, False, None),
    ("walking_speed", "Walking speed", 2, False, None),
    ("step_time_s", "Step time", 2, True, "step_time_si_pct"),
    ("stride_time_s", "Stride time", 2, True, "stride_time_si_pct"),
    ("stance_pct", "Stance", 1, True, "stance_si_pct"),
    ("swing_pct", "Swing", 1, True, "-"),
    ("double_support_pct", "Double support", 1, False, None),
    ("step_length", "Step length", 2, True, "step_length_si_pct"),
    ("stride_length", "Stride length", 2, True, None),
)


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def fmt(v: Any, nd: int = 1) -> str:
    """A number as the report prints it ("–" when missing)."""
    f = _num(v)
    return "–" if f is None else f"{f:.{nd}f}"


def _unit(key: str, units: str) -> str:
    rel = units != "m"
    return {
        "cadence_steps_per_min": "steps/min", "step_time_s": "s", "stride_time_s": "s",
        "stance_pct": "% of cycle", "swing_pct": "% of cycle", "double_support_pct": "% of cycle",
        "step_length": "leg lengths" if rel else "m", "stride_length": "leg lengths" if rel else "m",
        "walking_speed": "leg lengths/s" if rel else "m/s",
    }[key]


def _status(value: float | None, ref: norm.Reference | None, plaus: tuple[float, float] | None) -> str | None:
    if value is None:
        return None
    if plaus is not None and not plaus[0] <= value <= plaus[1]:
        return IMPLAUSIBLE
    if ref is not None and not ref.low <= value <= ref.high:
        return OUTSIDE
    return OK


def _worst(*states: str | None) -> str | None:
    known = [s for s in states if s is not None]
    return max(known, key=lambda s: _RANK[s]) if known else None


def _symmetry(left: float | None, right: float | None) -> float | None:
    if left is None or right is None or left + right == 0:
        return None
    return 100.0 * abs(left - right) / ((left + right) / 2.0)


def _spatiotemporal(m: Mapping[str, Any], units: str, flags: list[dict[str, str]]) -> list[dict[str, Any]]:
    rows = []
    detail = m.get("symmetry_detail") or {}
    for key, label, nd, sided, si_key in _ST_ROWS:
        raw = m.get(key)
        unit = _unit(key, units)
        ref = norm.spatiotemporal_reference(key, units)
        plaus = norm.plausible_range(key, units)
        if isinstance(raw, Mapping):
            left, right, mean = _num(raw.get("left")), _num(raw.get("right")), _num(raw.get("mean"))
        else:
            left = right = None
            mean = _num(raw)
        st_l, st_r, st_m = (_status(v, ref, plaus) for v in (left, right, mean))
        si = _num(detail.get(si_key)) if si_key else None
        if si is None and sided and si_key != "-":
            si = _symmetry(left, right)
        st_si = None
        if si is not None:
            st_si = IMPLAUSIBLE if si > norm.SYMMETRY_PLAUSIBLE_PCT else OUTSIDE if si > norm.SYMMETRY_LIMIT_PCT else OK
        status = _worst(st_l, st_r, st_m, st_si)
        row = {
            "key": key, "label": label, "unit": unit, "decimals": nd,
            "left": fmt(left, nd) if sided else "", "right": fmt(right, nd) if sided else "",
            "value": fmt(mean, nd),
            "symmetry": "" if not sided or si_key == "-" else ("–" if si is None else f"{si:.0f} %"),
            "reference": "–" if ref is None else ref.text(2 if ref.mean < 10 else 0),
            "reference_source": "" if ref is None else ref.source + (" (derived)" if ref.derived else ""),
            "status": {"left": st_l, "right": st_r, "value": st_m, "symmetry": st_si, "row": status},
            "numbers": {"left": left, "right": right, "value": mean, "symmetry_pct": si},
        }
        rows.append(row)
        _flag_row(row, ref, plaus, flags)
    return rows


def _flag_row(row: Mapping[str, Any], ref: norm.Reference | None, plaus: tuple[float, float] | None,
              flags: list[dict[str, str]]) -> None:
    """One sentence per measure: the values off the band, the band, and the asymmetry if large."""
    st, label, unit = row["status"], row["label"], row["unit"]
    if row["key"] == "swing_pct":
        return  # swing = 100 - stance: the stance flag says it
    level = st["row"]
    if level not in (OUTSIDE, IMPLAUSIBLE):
        return
    parts = [f"{side} {row[side]}" for side in ("left", "right") if st[side] in (OUTSIDE, IMPLAUSIBLE)]
    if not parts and st["value"] in (OUTSIDE, IMPLAUSIBLE):
        parts = [row["value"]]
    text = f"{label}: " + ", ".join(parts) + f" {unit}" if parts else f"{label}:"
    values_level = _worst(st["left"], st["right"], st["value"])
    if values_level == IMPLAUSIBLE and plaus is not None:
        text += f" is beyond what walking produces ({plaus[0]:g}–{plaus[1]:g}): likely a detection error."
    elif parts and ref is not None:
        nd = 2 if ref.mean < 10 else 0  # as the reference column prints it
        text += f" (healthy adults {ref.low:.{nd}f}–{ref.high:.{nd}f})."
    if st["symmetry"] == IMPLAUSIBLE:
        text += (f" Left {row['left']} vs right {row['right']}: symmetry index {row['symmetry']}, an implausible "
                 "asymmetry for one walk (likely a detection error; check the video).")
    elif st["symmetry"] == OUTSIDE:
        text += f" Left/right symmetry index {row['symmetry']} (above {norm.SYMMETRY_LIMIT_PCT:g} %)."
    flags.append({"level": level, "text": text})


def _cross_checks(m: Mapping[str, Any], units: str, flags: list[dict[str, str]]) -> None:
    """Relations that hold for any walk (sum of steps = stride, ...); a broken one means a wrong event."""
    tol = norm.CONSISTENCY_TOLERANCE

    def side(key: str, s: str) -> float | None:
        v = m.get(key)
        return _num(v.get(s)) if isinstance(v, Mapping) else None

    def mean(key: str) -> float | None:
        v = m.get(key)
        return _num(v.get("mean")) if isinstance(v, Mapping) else _num(v)

    length_unit = _unit("step_length", units)
    checks = (
        ("step_length", "stride_length", "step length", "stride length", length_unit),
        ("step_time_s", "stride_time_s", "step time", "stride time", "s"),
    )
    for part, whole, pname, wname, unit in checks:
        left, right, total = side(part, "left"), side(part, "right"), mean(whole)
        if None in (left, right, total) or not total:
            continue
        if abs(left + right - total) / total > tol:
            flags.append({"level": IMPLAUSIBLE, "text": (
                f"Left + right {pname} ({left + right:.2f} {unit}) should equal the {wname} ({total:.2f} {unit}); "
                f"they differ by {100 * abs(left + right - total) / total:.0f} %, so the {pname}s are unreliable "
                "(check heel positions at heel strike in the video).")})
    ds = _num(m.get("double_support_pct"))
    sl, sr = side("stance_pct", "left"), side("stance_pct", "right")
    if None not in (ds, sl, sr) and abs(ds - (sl + sr - 100.0)) > 8.0:
        flags.append({"level": IMPLAUSIBLE, "text": (
            f"Double support {ds:.1f} % does not match the stance phases (left {sl:.1f} % + right {sr:.1f} % "
            f"- 100 = {sl + sr - 100:.1f} %): the toe-off events are unreliable.")})
    speed, stride, stime = mean("walking_speed"), mean("stride_length"), mean("stride_time_s")
    if None not in (speed, stride, stime) and stime and speed:
        expect = stride / stime
        if abs(speed - expect) / speed > 0.3:
            flags.append({"level": OUTSIDE, "text": (
                f"Walking speed {speed:.2f} differs from stride length / stride time ({expect:.2f}) by more than "
                "30 %: the subject changed speed or events were missed.")})


def _angles(m: Mapping[str, Any], flags: list[dict[str, str]]) -> list[dict[str, Any]]:
    angles = m.get("angles") or {}
    rej = m.get("angles_rejected")
    from_pelvis = m.get("hip_angle_reference") == "pelvis"
    foot_offset = m.get("ankle_foot_offset_deg") if isinstance(m.get("ankle_foot_offset_deg"), Mapping) else None
    rejected = rej.get("samples") if isinstance(rej, Mapping) else None
    dropped = not isinstance(rej, Mapping) or rej.get("dropped", True)
    rows = []
    for joint in ("hip", "knee", "ankle"):
        peaks = norm.reference_peaks(joint)
        _, ref_mean, ref_sd = norm.reference_curve(joint)
        sd_min, sd_max = float(ref_sd[ref_mean.argmin()]), float(ref_sd[ref_mean.argmax()])
        lo_ok, hi_ok = norm.ANGLE_PLAUSIBLE[joint]
        for side in ("left", "right"):
            s = angles.get(f"{joint}_{side}")
            if not isinstance(s, Mapping):
                continue
            vmin, vmax, vrange = _num(s.get("min")), _num(s.get("max")), _num(s.get("range"))
            status = None
            if vmin is not None and vmax is not None:
                if vmin < lo_ok or vmax > hi_ok:
                    status = IMPLAUSIBLE
                    flags.append({"level": IMPLAUSIBLE, "text": (
                        f"{JOINT_LABELS[joint]} ({side}) reaches {vmin:.0f}° to {vmax:.0f}°, beyond what the joint "
                        f"does in walking ({lo_ok:g}° to {hi_ok:g}°): a keypoint error, not a measurement.")})
                elif abs(vmin - peaks["min"]) > 2 * sd_min or abs(vmax - peaks["max"]) > 2 * sd_max:
                    status = OUTSIDE
                else:
                    status = OK
            n = s.get("n_cycles")
            n_rej = (rejected or {}).get(f"{joint}_{side}")
            rows.append({
                "joint": JOINT_LABELS[joint], "side": side,
                "min": fmt(vmin, 0), "max": fmt(vmax, 0), "range": fmt(vrange, 0),
                "reference": f"{peaks['min']:.0f} to {peaks['max']:.0f} (range {peaks['range']:.0f})",
                "cycles": "–" if n is None else str(int(n)),
                "rejected": "" if rejected is None else f"{int(n_rej or 0)} frames" + ("" if dropped else " (kept)"),
                "status": status, "note": _angle_note(joint, side, from_pelvis, foot_offset),
            })
    return rows


def _angle_note(joint: str, side: str, from_pelvis: bool, foot_offset: Mapping[str, Any] | None) -> str:
    """The angle table's note: how the hip was measured, whether a standing trial's foot offset was removed."""
    if joint == "hip" and from_pelvis:
        return norm.HIP_PELVIS_NOTE
    off = _num((foot_offset or {}).get(side)) if joint == "ankle" else None
    if off is not None:
        return f"{side} foot offset of the standing trial ({off:+.1f}°) removed"
    return norm.ANGLE_NOTES[joint]


def _rejected_note(rej: Any) -> str:
    """One sentence on angles dropped as physiologically impossible (keypoint errors), if any."""
    if not isinstance(rej, Mapping) or not rej.get("frames"):
        return ""
    total = rej.get("frames_with_angles")
    of = f" of {int(total)}" if total else ""
    src = f" ({rej['source']})" if rej.get("source") else ""
    if not rej.get("dropped", True):
        return (f"Angles outside physiological ranges{src} in {int(rej['frames'])}{of} frames were kept: these are "
                "motion-capture markers, not a detector's guesses, and a marker set's placement shifts a 2D angle "
                "by a few degrees; the Rejected column counts them per joint.")
    return (f"Angles outside physiological ranges{src} were left out as keypoint errors in {int(rej['frames'])}{of} "
            "frames; the Rejected column counts them per joint.")


def _event_rows(events: Sequence[Any]) -> list[dict[str, str]]:
    out = []
    for e in events:
        get = e.get if isinstance(e, Mapping) else lambda k, e=e: getattr(e, k, None)
        out.append({
            "foot": str(get("foot")), "event": str(get("event")).replace("_", " "),
            "frame": str(int(get("frame"))), "time": f"{float(get('time_s')):.2f} s",
            "kind": str(get("event")), "time_s": round(float(get("time_s")), 4),
        })
    return out


def toe_off_pct(m: Mapping[str, Any]) -> dict[str, float]:
    """Toe-off position in the cycle per side = mean stance % (heel strike at 0 %)."""
    st = m.get("stance_pct")
    out = {}
    if isinstance(st, Mapping):
        for side in ("left", "right"):
            v = _num(st.get(side))
            if v is not None:
                out[side] = v
    return out


def _heel_strike_text(info: Any) -> str:
    """How heel strikes were timed, in words (``analyze_gait``'s ``metrics["heel_strike_rule"]``)."""
    if not isinstance(info, Mapping) or not info.get("rule"):
        return ""
    noise = _num(info.get("keypoint_noise_leg"))
    scatter = f"; keypoint scatter {100 * noise:.1f} % of leg length" if noise is not None else ""
    how = {"zeni": "foot furthest ahead of the pelvis (Zeni), not refined",
           "midpoint": "mid-point of Zeni and the foot's fastest descent",
           "landing": "Zeni and the foot's fastest descent, weighted by how flat the foot lands"}.get(
        str(info["rule"]), str(info["rule"]))
    auto = info.get("chosen") == "auto" and info["rule"] != "zeni"
    chosen = " (chosen from the keypoints' steadiness)" if auto else ""
    return f"{how}{chosen}{scatter}"


def _session(m: Mapping[str, Any], session: Mapping[str, Any]) -> list[dict[str, str]]:
    proc = m.get("processing") or {}
    model = m.get("model") or {}
    units = m.get("units", "relative")
    when = session.get("analysed_at") or _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    height = _num(proc.get("height_cm", session.get("height_cm")))
    direction = session.get("direction", m.get("direction"))
    dir_text = {1: "left to right in the image", -1: "right to left in the image"}.get(
        int(direction) if _num(direction) is not None else 0, "not determined")
    frames, fps, found = proc.get("frames"), _num(proc.get("fps")), proc.get("frames_with_pose")
    dur = f" ({frames / fps:.1f} s)" if frames and fps else ""
    source = {"depth": "metres from the depth camera", "height": "metres, scaled by the subject height",
              "leg_length": "leg lengths (no depth and no height given)"}.get(str(m.get("length_source")), units)
    pose = " ".join(str(x) for x in (model.get("pose_model"), f"v{model['pose_model_version']}"
                                     if model.get("pose_model_version") else None) if x)
    size = model.get("pose_input_size")
    if size:
        pose += f", input {size[0]}×{size[1]}"
    if model.get("pose_flip_test"):
        pose += ", flip test"
    rows = [
        ("Video", str(m.get("video") or session.get("video") or "–")),
        ("Analysed", str(when)),
        ("Subject height", f"{height:.0f} cm" if height else "not given"),
        ("View", "side view (sagittal plane) assumed by all measures"),
        ("Walking direction", dir_text),
        ("Walking mode", str(m.get("mode") or session.get("mode") or "overground")),
        ("Lengths in", source),
        ("Frames", f"{frames} at {fps:.1f} fps{dur}; subject found in {found}" if frames and fps else "–"),
        ("Pose model", pose or "–"),
    ]
    hs = _heel_strike_text(m.get("heel_strike_rule"))
    if hs:
        rows.append(("Heel strikes", hs))
    if m.get("swapped_frames"):
        rows.append(("Left/right corrected", f"{m['swapped_frames']} frames"))
    return [{"label": k, "value": v} for k, v in rows]


_VALIDATION_METRICS = (("cadence_steps_per_min", "Cadence (steps/min)", 1), ("step_time_s", "Step time (s)", 3),
                       ("stride_time_s", "Stride time (s)", 3), ("stance_pct", "Stance (% of cycle)", 1),
                       ("swing_pct", "Swing (% of cycle)", 1), ("double_support_pct", "Double support (%)", 1))


def _validation(m: Mapping[str, Any]) -> dict[str, Any] | None:
    """Agreement with the trial's reference (events, step metrics, a model's angles), when there is one.

    Why in the report: a gait lab running gaitpose on its own trials judges it by this comparison, and
    reads reports, not JSON. Rows only from ``metrics["validation"]`` / ``metrics["angle_validation"]``.
    """
    val, ang = m.get("validation"), m.get("angle_validation")
    if not isinstance(val, Mapping) and not isinstance(ang, Mapping):
        return None
    out: dict[str, Any] = {"reference": "", "events": [], "metrics": [], "angles": [], "angles_reference": ""}
    if isinstance(val, Mapping):
        off = _num(val.get("offset_s"))
        out["reference"] = str(val.get("reference") or "") + (f" (clock offset {off:+.3f} s)" if off else "")
        for kind, label in (("heel_strike", "Heel strike"), ("toe_off", "Toe off")):
            sm = (val.get("summary") or {}).get(kind) or {}
            loa = sm.get("loa_ms") or [None, None]
            share = _num(sm.get("share_within"))
            out["events"].append({
                "event": label, "matched": f"{sm.get('n', 0)} of {sm.get('n_reference', 0)}",
                "missed_extra": f"{sm.get('missed', 0)} / {sm.get('extra', 0)}",
                "mean_abs_ms": fmt(sm.get("mean_abs_ms")), "max_abs_ms": fmt(sm.get("max_abs_ms")),
                "bias_ms": fmt(sm.get("bias_ms")), "loa_ms": f"{fmt(loa[0])} to {fmt(loa[1])}",
                "within": "–" if share is None else f"{100 * share:.0f} %",
            })
        for key, label, nd in _VALIDATION_METRICS:
            row = (val.get("metrics") or {}).get(key) or {}
            out["metrics"].append({"metric": label, "gaitpose": fmt(row.get("detected"), nd),
                                   "reference": fmt(row.get("reference"), nd), "diff_pct": fmt(row.get("diff_pct"), 1)})
    if isinstance(ang, Mapping):
        out["angles_reference"] = str(ang.get("reference") or "")
        for name, a in (ang.get("joints") or {}).items():
            joint, side = name.split("_")
            out["angles"].append({"joint": JOINT_LABELS.get(joint, joint), "side": side, "frames": str(a.get("n", 0)),
                                  "rmse_deg": fmt(a.get("rmse_deg")), "bias_deg": fmt(a.get("bias_deg")),
                                  "sd_deg": fmt(a.get("sd_deg")), "r": fmt(a.get("r"), 3)})
    return out


def build_clinical_view(
    metrics: Mapping[str, Any],
    events: Sequence[Any] = (),
    *,
    session: Mapping[str, Any] | None = None,
    stills: Sequence[Mapping[str, str]] = (),
) -> dict[str, Any]:
    """The report's content as JSON-able rows and sentences (see module docstring).

    ``metrics``: the metrics.json layout; ``events``: GaitEvent objects or dicts with foot, event,
    frame, time_s; ``session``: optional extras (``direction`` +1/-1, ``analysed_at``, ``mode``);
    ``stills``: key frames as {"caption", "src"} (``gaitpose.report.keyframes``).
    """
    session = session or {}
    units = str(metrics.get("units", "relative"))
    flags: list[dict[str, str]] = []
    walking = bool(metrics.get("walking_found", True))
    st_rows = _spatiotemporal(metrics, units, flags) if walking else []
    if walking:
        _cross_checks(metrics, units, flags)
    angle_rows = _angles(metrics, flags) if walking else []
    flags.sort(key=lambda f: -_RANK[f["level"]])
    n_strides, n_steps = metrics.get("n_strides", 0), metrics.get("n_steps", 0)
    toe = toe_off_pct(metrics)
    return {
        "schema": SCHEMA,
        "title": "Gait report",
        "disclaimer": DISCLAIMER,
        "walking_found": walking,
        "session": _session(metrics, session),
        "warnings": [str(w) for w in metrics.get("warnings", [])],
        "flags": flags,
        "spatiotemporal": {
            "rows": st_rows,
            "counts": f"{n_strides} strides, {n_steps} steps",
            "note": ("Symmetry index = 100 × |left − right| / mean (0 = symmetric). Reference: healthy adults at "
                     "their own speed, mean (band used for flags). Lengths in leg lengths are derived for a "
                     f"{norm.REFERENCE_STATURE_M:.2f} m adult." if units != "m" else
                     "Symmetry index = 100 × |left − right| / mean (0 = symmetric). Reference: healthy adults "
                     "at their own speed, mean (band used for flags)."),
        },
        "angles": {
            "rows": angle_rows,
            "note": ("Degrees, sagittal plane, flexion and dorsiflexion positive; peaks of the cycle-averaged "
                     "curve (the same curves as the plot). Reference: peaks of the normative mean curve."),
            "toe_off": {k: f"{v:.0f} %" for k, v in toe.items()},
            "rejected_note": _rejected_note(metrics.get("angles_rejected")),
        },
        "events": _event_rows(events),
        "validation": _validation(metrics),
        "stills": [dict(s) for s in stills],
        "references": [f"{k}: {v}" for k, v in norm.SOURCES.items()],
        "video": {"fps": _num((metrics.get("processing") or {}).get("fps")),
                  "frame_size": list((metrics.get("processing") or {}).get("frame_size") or [])},
        "skeleton": {"keypoints": list(KEYPOINTS), "edges": [list(e) for e in SKELETON]},
        "limits_note": ("Flag levels: 'outside' = outside the healthy adult band; 'implausible' = beyond what "
                        "walking produces or a broken cross-check (this project's limits, not published norms): "
                        "usually a detection error, check the video."),
    }


__all__ = ["DISCLAIMER", "SCHEMA", "build_clinical_view", "fmt", "toe_off_pct"]
