"""Agreement of detected gait events and step metrics with a reference (force plates, a lab's annotations).

Why: a video method is judged by its agreement with what a gait lab already trusts, on the same
trials: per-event time differences, their mean absolute value, maximum, bias (mean signed
difference, detected minus reference) and Bland-Altman 95 % limits of agreement (bias +- 1.96 SD),
and the differences in cadence and step / stride / stance / swing times computed from each set of
events by the same code.

Matching: each reference event is paired with the nearest detected event of the same foot and
kind within ``tolerance_s`` (default 0.25 s: same-foot events of one kind are a stride, >= 0.6 s,
apart, so a pairing cannot jump a cycle), each detected event used once, closest pairs first.
Only detected events inside the span of the reference (plus the tolerance) count as extra: a
lab annotates a few cycles of a longer trial. Reference events within ``edge_s`` of the start or
end of the data are not scored (counted as ``at_edges``): an extremum at the very edge of a
recording cannot be confirmed by any peak detector, video or marker based. The same rule holds for
detected events: one in the edge zone that matches no reference event is not an extra (counted as
``detected_at_edges``) and does not enter the step metrics, where it would stretch the detected
cadence over a stretch of data the reference does not cover.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from gaitpose.gait.events import GaitEvent
from gaitpose.gait.metrics import compute_metrics

__all__ = [
    "angles_on_frames",
    "compare_angles",
    "compare_events",
    "compare_metrics",
    "comparison_metrics",
    "format_angle_agreement",
    "format_comparison",
    "reference_comparison",
    "shift_events",
    "summarise_differences",
    "validation_report",
]

KINDS = ("heel_strike", "toe_off")
FRAME_30FPS_S = 1.0 / 30.0


def shift_events(events: Sequence[GaitEvent], offset_s: float, fps: float) -> list[GaitEvent]:
    """Events moved by ``offset_s`` (reference clock -> analysis clock), frames re-derived at ``fps``."""
    return [GaitEvent(e.foot, e.event, round((e.time_s + offset_s) * fps), e.time_s + offset_s) for e in events]


def summarise_differences(diffs_s: Sequence[float], tolerance_s: float = FRAME_30FPS_S) -> dict[str, Any]:
    """mean |d|, max |d|, bias, SD and 95 % limits of agreement of differences (s in, ms out)."""
    d = np.asarray([x for x in diffs_s if x is not None and math.isfinite(x)], dtype=np.float64) * 1000.0
    if d.size == 0:
        return {"n": 0, "mean_abs_ms": None, "max_abs_ms": None, "bias_ms": None, "sd_ms": None,
                "loa_ms": None, "within_ms": tolerance_s * 1000.0, "share_within": None}
    sd = float(d.std(ddof=1)) if d.size > 1 else 0.0
    bias = float(d.mean())
    return {
        "n": int(d.size),
        "mean_abs_ms": float(np.abs(d).mean()),
        "max_abs_ms": float(np.abs(d).max()),
        "bias_ms": bias,
        "sd_ms": sd,
        "loa_ms": [bias - 1.96 * sd, bias + 1.96 * sd],
        "within_ms": tolerance_s * 1000.0,
        "share_within": float(np.mean(np.abs(d) <= tolerance_s * 1000.0 + 1e-9)),
    }


def compare_events(
    detected: Sequence[GaitEvent],
    reference: Sequence[GaitEvent],
    *,
    tolerance_s: float = 0.25,
    within_s: float = FRAME_30FPS_S,
    span_s: tuple[float, float] | None = None,
    edge_s: float = 0.25,
) -> dict[str, Any]:
    """Pair detected with reference events; per-event differences and summaries per kind and overall.

    ``span_s``: (first, last) time of the analysed data; reference events within ``edge_s`` of it
    are left out of the scores.
    """
    if not reference:
        raise ValueError("no reference events to compare with")
    n_all = len(reference)
    if span_s is not None:
        reference = [e for e in reference if span_s[0] + edge_s <= e.time_s <= span_s[1] - edge_s]
        if not reference:
            raise ValueError("all reference events lie at the edges of the data (or outside it): check --offset-s")
    t_lo = min(e.time_s for e in reference) - tolerance_s
    t_hi = max(e.time_s for e in reference) + tolerance_s
    det = [e for e in detected if t_lo <= e.time_s <= t_hi]
    pairs: list[dict[str, Any]] = []
    missed: list[dict[str, Any]] = []
    extra: list[dict[str, Any]] = []
    for kind in KINDS:
        for foot in ("left", "right"):
            ref = sorted(e.time_s for e in reference if e.event == kind and e.foot == foot)
            cand = sorted(e.time_s for e in det if e.event == kind and e.foot == foot)
            options = sorted((abs(c - r), i, j) for i, r in enumerate(ref) for j, c in enumerate(cand)
                             if abs(c - r) <= tolerance_s)
            used_r: set[int] = set()
            used_c: set[int] = set()
            for _, i, j in options:
                if i in used_r or j in used_c:
                    continue
                used_r.add(i)
                used_c.add(j)
                pairs.append({"foot": foot, "event": kind, "reference_s": ref[i], "detected_s": cand[j],
                              "diff_s": cand[j] - ref[i]})
            missed += [{"foot": foot, "event": kind, "reference_s": r} for i, r in enumerate(ref) if i not in used_r]
            extra += [{"foot": foot, "event": kind, "detected_s": c} for j, c in enumerate(cand) if j not in used_c]
    at_edge = [x for x in extra if not _inside(x["detected_s"], span_s, edge_s)]
    extra = [x for x in extra if _inside(x["detected_s"], span_s, edge_s)]
    pairs.sort(key=lambda p: p["reference_s"])
    summary = {kind: {**summarise_differences([p["diff_s"] for p in pairs if p["event"] == kind], within_s),
                      "n_reference": sum(1 for e in reference if e.event == kind),
                      "missed": sum(1 for m in missed if m["event"] == kind),
                      "extra": sum(1 for x in extra if x["event"] == kind)}
               for kind in KINDS}
    summary["all"] = {**summarise_differences([p["diff_s"] for p in pairs], within_s),
                      "n_reference": len(reference), "missed": len(missed), "extra": len(extra)}
    return {"pairs": pairs, "missed": missed, "extra": extra, "summary": summary,
            "window_s": [t_lo, t_hi], "tolerance_s": tolerance_s, "at_edges": n_all - len(reference),
            "detected_at_edges": at_edge}


def _inside(t: float, span_s: tuple[float, float] | None, edge_s: float) -> bool:
    return span_s is None or span_s[0] + edge_s <= t <= span_s[1] - edge_s


_TEMPORAL = ("cadence_steps_per_min", "step_time_s", "stride_time_s", "stance_pct", "swing_pct", "double_support_pct")


def _mean_of(v: Any) -> float | None:
    if isinstance(v, dict):
        v = v.get("mean")
    return None if v is None or not math.isfinite(float(v)) else float(v)


def compare_metrics(
    detected: Sequence[GaitEvent],
    reference: Sequence[GaitEvent],
    kpts: np.ndarray,
    fps: float,
    *,
    direction: int = 1,
    window_s: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """Cadence and step/stride/stance/swing/double-support times from both event sets, same code, same span."""
    if window_s is None:
        window_s = (min(e.time_s for e in reference) - 0.25, max(e.time_s for e in reference) + 0.25)
    f0 = max(0, math.floor(window_s[0] * fps))
    f1 = min(int(kpts.shape[0]), math.ceil(window_s[1] * fps) + 1)
    seg = [(f0, f1)]

    def inside(evs: Sequence[GaitEvent]) -> list[GaitEvent]:
        return [GaitEvent(e.foot, e.event, round(e.time_s * fps), e.time_s) for e in evs
                if window_s[0] <= e.time_s <= window_s[1]]

    m_det = compute_metrics(inside(detected), kpts, fps, segments=seg, directions=[direction])
    m_ref = compute_metrics(inside(reference), kpts, fps, segments=seg, directions=[direction])
    out: dict[str, Any] = {}
    for key in _TEMPORAL:
        a, b = _mean_of(m_det.get(key)), _mean_of(m_ref.get(key))
        diff = None if a is None or b is None else a - b
        pct = None if diff is None or not b else 100.0 * diff / b
        out[key] = {"detected": a, "reference": b, "diff": diff, "diff_pct": pct}
    return out


def validation_report(
    detected: Sequence[GaitEvent],
    reference: Sequence[GaitEvent],
    kpts: np.ndarray,
    fps: float,
    *,
    direction: int = 1,
    offset_s: float = 0.0,
    reference_name: str = "",
) -> dict[str, Any]:
    """The whole comparison for metrics.json / the report: events, summaries, step metrics."""
    ref = shift_events(reference, offset_s, fps) if offset_s else list(reference)
    ev = compare_events(detected, ref, span_s=(0.0, (kpts.shape[0] - 1) / fps))
    edge = {(x["foot"], x["event"], x["detected_s"]) for x in ev["detected_at_edges"]}
    scored = [e for e in detected if (e.foot, e.event, e.time_s) not in edge]
    met = compare_metrics(scored, ref, kpts, fps, direction=direction, window_s=tuple(ev["window_s"]))
    return {"reference": reference_name, "offset_s": offset_s, **ev, "metrics": met}


def format_validation(report: dict[str, Any]) -> list[str]:
    """A few human lines: per kind n/missed/extra, mean/max/bias and LoA; cadence difference."""
    lines = []
    for kind in KINDS:
        s = report["summary"][kind]
        if not s["n"]:
            lines.append(f"{kind}: 0 of {s['n_reference']} reference events matched")
            continue
        lo, hi = s["loa_ms"]
        lines.append(
            f"{kind}: {s['n']} of {s['n_reference']} matched ({s['missed']} missed, {s['extra']} extra); "
            f"mean |error| {s['mean_abs_ms']:.1f} ms, max {s['max_abs_ms']:.1f} ms, bias {s['bias_ms']:+.1f} ms, "
            f"LoA [{lo:+.1f}, {hi:+.1f}] ms, {100 * s['share_within']:.0f} % within {s['within_ms']:.0f} ms")
    c = report["metrics"]["cadence_steps_per_min"]
    if c["diff_pct"] is not None:
        lines.append(f"cadence {c['detected']:.1f} vs {c['reference']:.1f} steps/min ({c['diff_pct']:+.2f} %)")
    return lines


def compare_angles(ours: dict[str, np.ndarray], reference: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """Per joint: agreement of gaitpose's sagittal angles with a lab model's, frame by frame (degrees).

    ``n`` frames where both exist; ``bias_deg`` = mean (ours - reference); ``rmse_deg``; ``sd_deg``: the
    RMSE once the bias is removed; ``r``: Pearson correlation. Why the bias apart: a 3D model measures
    each segment in its own anatomical frame, calibrated on a static trial (Plug-in Gait's ankle
    takes a foot offset from it), where the 2D angles use marker lines; that shifts a curve by a
    constant, which says nothing of how well its shape, timing and range agree (``sd_deg``, ``r``).
    """
    out: dict[str, dict[str, Any]] = {}
    for name in [n for n in ours if n in reference]:  # in the caller's joint order
        a, b = np.asarray(ours[name], dtype=np.float64), np.asarray(reference[name], dtype=np.float64)
        n = min(a.size, b.size)
        a, b = a[:n], b[:n]
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() < 3:
            out[name] = {"n": int(ok.sum()), "bias_deg": None, "rmse_deg": None, "sd_deg": None, "r": None}
            continue
        d = a[ok] - b[ok]
        r = float(np.corrcoef(a[ok], b[ok])[0, 1]) if a[ok].std() > 0 and b[ok].std() > 0 else None
        out[name] = {"n": int(ok.sum()), "bias_deg": float(d.mean()), "rmse_deg": float(np.sqrt(np.mean(d**2))),
                     "sd_deg": float(d.std()), "r": r}
    return out


def format_angle_agreement(agreement: dict[str, dict[str, Any]]) -> list[str]:
    """One human line per joint angle compared with the file's model angles."""
    lines = []
    for name, a in agreement.items():
        if a["rmse_deg"] is None:
            lines.append(f"{name} angle: too few frames to compare with the file's model angles ({a['n']})")
            continue
        r = "" if a["r"] is None else f", r {a['r']:.3f}"
        lines.append(f"{name} angle: RMSE {a['rmse_deg']:.1f} deg against the file's model angles, bias "
                     f"{a['bias_deg']:+.1f} deg, {a['sd_deg']:.1f} deg without the bias{r} ({a['n']} frames)")
    return lines


def angles_on_frames(angles: dict[str, np.ndarray], src_fps: float, n: int, fps: float,
                     offset_s: float = 0.0) -> dict[str, np.ndarray]:
    """Reference angles sampled at an analysis's ``n`` frame times (reference time + ``offset_s`` = analysis time)."""
    t = np.arange(n) / fps - offset_s
    return {name: np.interp(t, np.arange(np.asarray(a).size) / src_fps, a, left=np.nan, right=np.nan)
            for name, a in angles.items()}


def reference_comparison(gait: Any, fps: float, events: Sequence[GaitEvent] | None,
                         angles: dict[str, np.ndarray] | None = None, angles_fps: float | None = None, *,
                         offset_s: float = 0.0, reference_name: str = "") -> dict[str, Any] | None:
    """A finished analysis (GaitResult) against a reference trial's events and its model's angles.

    The validation.json layout: :func:`validation_report` when ``events`` are given (else ``summary``
    None), plus ``angles`` (:func:`compare_angles` on the analysis's frames) when ``angles`` at
    ``angles_fps`` are. ``reason`` says why the events could not be compared (no reference event
    inside the analysed span). None when there is nothing to compare.
    """
    rep: dict[str, Any] = {"reference": reference_name, "offset_s": offset_s, "summary": None}
    if events:
        try:
            rep = validation_report(gait.events, events, gait.kpts, fps, direction=gait.direction or 1,
                                    offset_s=offset_s, reference_name=reference_name)
        except ValueError as exc:
            rep["reason"] = str(exc)
    if angles and angles_fps:
        rep["angles"] = compare_angles(gait.angles, angles_on_frames(angles, angles_fps, gait.kpts.shape[0], fps,
                                                                     offset_s))
    return rep if rep.get("summary") or rep.get("angles") or rep.get("reason") else None


def format_comparison(rep: dict[str, Any] | None) -> list[str]:
    """Human lines of :func:`reference_comparison`'s result."""
    if not rep:
        return []
    lines = format_validation(rep) if rep.get("summary") else []
    if rep.get("reason"):
        lines.append(f"events not compared: {rep['reason']}")
    return lines + format_angle_agreement(rep.get("angles") or {})


def comparison_metrics(rep: dict[str, Any] | None) -> dict[str, Any]:
    """The metrics.json entries of a comparison: ``validation`` (events, step metrics) and ``angle_validation``."""
    out: dict[str, Any] = {}
    if rep and rep.get("summary"):
        out["validation"] = {k: rep[k] for k in ("reference", "offset_s", "summary", "metrics", "at_edges")}
    if rep and rep.get("angles"):
        out["angle_validation"] = {"reference": f"{rep['reference']} model angles (Plug-in Gait / CGM names)",
                                   "joints": rep["angles"]}
    return out
