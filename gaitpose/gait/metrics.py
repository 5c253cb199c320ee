"""Spatio-temporal gait metrics from events (and lengths from 3D, subject height or leg length).

Definitions (standard clinical ones, e.g. Perry & Burnfield; Stenum et al. 2021):
- step time (side X): from the other foot's heel strike to X's heel strike;
- stride time (side X): from one heel strike of X to the next;
- stance % (side X): heel strike to toe off of X, as % of that stride; swing % = 100 - stance %;
- double support %: both feet on the ground (ipsilateral HS -> contralateral TO, plus
  contralateral HS -> ipsilateral TO), as % of the stride;
- cadence: steps per minute = 60 / mean step time over both feet;
- symmetry index: 100 * |L - R| / ((L + R) / 2) (0 = perfectly symmetric);
- step length (side X): distance along the walking direction between the heels at X's heel
  strike; stride length: displacement of X's heel between its consecutive heel strikes;
  walking speed: pelvis displacement over the walking segments divided by their duration.

Lengths: metres from depth (3D keypoints), or metres from pixels scaled by the subject's height
(``height_cm``), else "relative" (in leg lengths) -- a 2D image has no scale of its own. Intervals
are only paired within one walking segment, and stride/step intervals longer than what walking
allows (a missed event) are discarded rather than averaged in.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from gaitpose.gait.events import GaitEvent
from gaitpose.gait.filters import _quiet_nan_warnings
from gaitpose.gait.segments import pelvis, segment_direction, walking_segments
from gaitpose.gait.swap import leg_length_px
from gaitpose.jsonutil import to_jsonable
from gaitpose.skeleton import INDEX

__all__ = ["EYE_HEIGHT_RATIO", "NOSE_HEIGHT_RATIO", "compute_metrics", "pixel_height", "symmetry_index"]

EYE_HEIGHT_RATIO = 0.936
"""Eye height / stature (Winter, Biomechanics and Motor Control of Human Movement, segment proportions)."""
NOSE_HEIGHT_RATIO = 0.91
"""Nose-tip height / stature: between eye (0.936) and chin (0.870) levels in Winter's proportions."""
MAX_STRIDE_S = 2.5
MAX_STEP_S = 1.5


def symmetry_index(left: float | None, right: float | None) -> float | None:
    """100 * |L - R| / mean(L, R) in %, or None when a side is missing."""
    if left is None or right is None or not (math.isfinite(left) and math.isfinite(right)) or left + right == 0:
        return None
    return float(100.0 * abs(left - right) / ((left + right) / 2.0))


def pixel_height(kpts: np.ndarray) -> tuple[float, float]:
    """(80th-percentile eye-or-nose to lowest-heel vertical distance in px, anthropometric ratio used).

    Eyes are preferred (their height ratio is better documented than the nose's); the lowest heel
    (largest image y) is the stance foot, i.e. the floor.
    """
    k = np.asarray(kpts, dtype=np.float64)
    heel_y = np.fmax(k[:, INDEX["left_heel"], 1], k[:, INDEX["right_heel"], 1])
    ank_y = np.fmax(k[:, INDEX["left_ankle"], 1], k[:, INDEX["right_ankle"], 1])
    foot_y = np.where(np.isfinite(heel_y), heel_y, ank_y)
    with _quiet_nan_warnings():
        eyes = np.nanmean(k[:, [INDEX["left_eye"], INDEX["right_eye"]], 1], axis=1)
    for top, ratio in ((eyes, EYE_HEIGHT_RATIO), (k[:, INDEX["nose"], 1], NOSE_HEIGHT_RATIO)):
        ext = foot_y - top
        ext = ext[np.isfinite(ext) & (ext > 0)]
        if ext.size >= 5:
            return float(np.percentile(ext, 80)), ratio
    return float("nan"), float("nan")


def _mean(v: Sequence[float]) -> float | None:
    v = [x for x in v if x is not None and math.isfinite(x)]
    return float(np.mean(v)) if v else None


def _point(k: np.ndarray, t: float, side: str) -> np.ndarray:
    """Heel (ankle if missing) position of ``side`` at the nearest frame to ``t``."""
    f = int(np.clip(round(t), 0, k.shape[0] - 1))
    p = k[f, INDEX[f"{side}_heel"]]
    return p if np.isfinite(p).all() else k[f, INDEX[f"{side}_ankle"]]


def _displacement(p: np.ndarray, s0: int, s1: int, fps: float) -> tuple[np.ndarray, float] | None:
    """Net displacement of a (T, D) trajectory over [s0, s1) and the time it took.

    Ends are medians of the first/last tenth of the valid samples, so noise (depth noise above
    all) at the two end frames does not bias the speed.
    """
    seg = p[s0:s1]
    idx = np.flatnonzero(np.isfinite(seg).all(-1))
    if idx.size < 4:
        return None
    q = max(2, idx.size // 10)
    disp = np.median(seg[idx[-q:]], axis=0) - np.median(seg[idx[:q]], axis=0)
    dur = (float(np.mean(idx[-q:])) - float(np.mean(idx[:q]))) / fps
    return (disp, dur) if dur > 0 else None


def _belt_speeds(k: np.ndarray, events: Sequence[GaitEvent], fps: float, d: int) -> list[float]:
    """Belt speed (px/s) from each stance phase: the stance ankle moves backwards with the belt.

    Middle half of each stance (heel strike to the same foot's toe off), median backward velocity.
    """
    out = []
    for f in ("left", "right"):
        x = k[:, INDEX[f"{f}_ankle"], 0]
        hs = sorted(e.time_s * fps for e in events if e.foot == f and e.event == "heel_strike")
        to = sorted(e.time_s * fps for e in events if e.foot == f and e.event == "toe_off")
        for a in hs:
            nxt = [t for t in to if a < t < a + MAX_STEP_S * fps]
            if not nxt:
                continue
            lo, hi = int(np.ceil(a + 0.25 * (nxt[0] - a))), int(np.floor(a + 0.75 * (nxt[0] - a)))
            seg = x[lo : hi + 1]
            if hi - lo >= 2 and np.isfinite(seg).all():
                out.append(float(np.median(-np.gradient(seg) * fps * d)))
    return out


def compute_metrics(
    events: Sequence[GaitEvent],
    kpts: np.ndarray,
    fps: float,
    *,
    kpts3d: np.ndarray | None = None,
    height_cm: float | None = None,
    segments: list[tuple[int, int]] | None = None,
    directions: Sequence[int] | None = None,
    scale_m_per_px: float | None = None,
    treadmill: bool = False,
    treadmill_speed: float | None = None,
) -> dict:
    """Spatio-temporal metrics as a JSON-serialisable dict (NaN -> None; see module docstring).

    ``directions``: walking direction per segment (default: the pelvis's travel; a treadmill
    walker's comes from the feet). ``scale_m_per_px``: a known scale (motion capture in mm:
    0.001), length source "calibrated". ``treadmill``: the pelvis does not travel, so walking speed
    is ``treadmill_speed`` (m/s) when given, else the belt speed measured from the stance feet;
    with ``treadmill_speed`` step and stride lengths are speed x step / stride time (what the same
    steps would cover overground), length source "treadmill_speed".

    Keys: walking_found, units ("m" | "relative"), length_source ("depth" | "height" |
    "leg_length"), cadence_steps_per_min, step_time_s / stride_time_s / stance_pct / swing_pct /
    step_length / stride_length (each {"left", "right", "mean"}), double_support_pct, symmetry
    (step-time symmetry index, %), symmetry_detail, walking_speed (m/s or leg lengths/s),
    n_strides, n_steps, n_segments, scale_m_per_px. ``segments`` default to
    :func:`walking_segments` of ``kpts``.
    """
    k = np.asarray(kpts, dtype=np.float64)
    if segments is None:
        segments = walking_segments(k, fps)
    per = {s: {"hs": [], "to": []} for s in ("left", "right")}
    step_t = {"left": [], "right": []}
    stride_t = {"left": [], "right": []}
    stance = {"left": [], "right": []}
    ds: list[float] = []
    step_len = {"left": [], "right": []}
    stride_len = {"left": [], "right": []}
    dist_total, dur_total = 0.0, 0.0

    # length source and scale
    if treadmill and treadmill_speed is not None and treadmill_speed > 0:
        scale, source, units = None, "treadmill_speed", "m"
    elif kpts3d is not None:
        source, units = "depth", "m"
        scale = None
    elif scale_m_per_px is not None and scale_m_per_px > 0:
        scale, source, units = float(scale_m_per_px), "calibrated", "m"
    elif height_cm is not None and height_cm > 0:
        walk = np.zeros(k.shape[0], dtype=bool)
        for a, b in segments:
            walk[a:b] = True
        ext, ratio = pixel_height(k[walk] if walk.any() else k)
        scale = (height_cm / 100.0) * ratio / ext if math.isfinite(ext) and ext > 0 else None
        source, units = ("height", "m") if scale is not None else ("leg_length", "relative")
    else:
        scale, source, units = None, "leg_length", "relative"
    if source == "leg_length":
        leg = leg_length_px(k)
        scale = 1.0 / leg if math.isfinite(leg) and leg > 0 else None
    p3 = None
    if kpts3d is not None:
        k3 = np.asarray(kpts3d, dtype=np.float64)
        with _quiet_nan_warnings():
            p3 = np.nanmean(k3[:, [INDEX["left_hip"], INDEX["right_hip"]]], axis=1)

    n_steps = 0
    belt: list[float] = []
    for i_seg, seg in enumerate(segments):
        s0, s1 = seg
        d = int(directions[i_seg]) if directions is not None else segment_direction(k, seg)
        evs = [e for e in events if s0 <= e.frame < s1]
        hs = {f: sorted(e.time_s * fps for e in evs if e.foot == f and e.event == "heel_strike") for f in per}
        to = {f: sorted(e.time_s * fps for e in evs if e.foot == f and e.event == "toe_off") for f in per}
        # walking direction (unit vector in 3D, image x in 2D) and pelvis displacement
        u3 = None
        disp_s = _displacement(p3 if p3 is not None else pelvis(k)[:, :1], s0, s1, fps)
        if treadmill:
            disp_s = None
            belt += _belt_speeds(k, evs, fps, d)
        if disp_s is not None:
            disp, dur = disp_s
            norm = float(np.linalg.norm(disp))
            if p3 is not None and norm > 0:
                u3 = disp / norm
                dist_total, dur_total = dist_total + norm, dur_total + dur
            elif p3 is None and scale is not None:
                dist_total, dur_total = dist_total + norm * scale, dur_total + dur

        def length(side_a: str, ta: float, side_b: str, tb: float) -> float:
            """Distance from side_b's heel at tb to side_a's heel at ta along the walking direction."""
            if source == "treadmill_speed":
                return float("nan")  # set from speed x time below
            if p3 is not None:
                if u3 is None:  # noqa: B023 - evaluated within this segment's iteration
                    return float("nan")
                return float(np.dot(_point(k3, ta, side_a) - _point(k3, tb, side_b), u3))  # noqa: B023
            if scale is None:
                return float("nan")
            return float((_point(k, ta, side_a)[0] - _point(k, tb, side_b)[0]) * d * scale)  # noqa: B023

        for f in per:
            other = "right" if f == "left" else "left"
            for a, b in zip(hs[f][:-1], hs[f][1:], strict=False):
                dt = (b - a) / fps
                if dt > MAX_STRIDE_S:
                    continue
                stride_t[f].append(dt)
                stride_len[f].append(treadmill_speed * dt if source == "treadmill_speed" else
                                     float("nan") if treadmill else length(f, b, f, a))
                to_in = [x for x in to[f] if a < x < b]
                if to_in:
                    stance[f].append(100.0 * (to_in[0] - a) / (b - a))
                c_to = [x for x in to[other] if a < x < b]
                c_hs = [x for x in hs[other] if a < x < b]
                if c_to and c_hs and c_to[0] < c_hs[0]:
                    i_to = [x for x in to[f] if c_hs[0] < x < b]
                    if i_to:
                        ds.append(100.0 * ((c_to[0] - a) + (i_to[0] - c_hs[0])) / (b - a))
        merged = sorted([(t, "left") for t in hs["left"]] + [(t, "right") for t in hs["right"]])
        for (ta, fa), (tb, fb) in itertools.pairwise(merged):
            dt = (tb - ta) / fps
            if fa == fb or dt > MAX_STEP_S:
                continue
            n_steps += 1
            step_t[fb].append(dt)
            step_len[fb].append(treadmill_speed * dt if source == "treadmill_speed" else length(fb, tb, fa, tb))

    def lr(d: dict[str, list[float]]) -> dict:
        left, right = _mean(d["left"]), _mean(d["right"])
        return {"left": left, "right": right, "mean": _mean(d["left"] + d["right"])}

    all_steps = step_t["left"] + step_t["right"]
    st = lr(stance)
    n_strides = len(stride_t["left"]) + len(stride_t["right"])
    metrics = {
        "walking_found": bool(segments),
        "units": units,
        "length_source": source,
        "scale_m_per_px": scale if source in ("height", "calibrated") else None,
        "n_segments": len(segments),
        "n_steps": n_steps,
        "n_strides": n_strides,
        "cadence_steps_per_min": 60.0 / float(np.mean(all_steps)) if all_steps else None,
        "step_time_s": lr(step_t),
        "stride_time_s": lr(stride_t),
        "stance_pct": st,
        "swing_pct": {s: (None if st[s] is None else 100.0 - st[s]) for s in ("left", "right", "mean")},
        "double_support_pct": _mean(ds),
        "step_length": lr(step_len),
        "stride_length": lr(stride_len),
        "walking_speed": dist_total / dur_total if dur_total > 0 else None,
    }
    if treadmill:
        if source == "treadmill_speed":
            metrics["walking_speed"] = float(treadmill_speed)  # type: ignore[arg-type]
        else:
            b = _mean(belt)
            metrics["walking_speed"] = None if b is None or scale is None else b * scale
        metrics["walking_speed_source"] = "treadmill_speed" if source == "treadmill_speed" else "belt (stance feet)"
        if source != "treadmill_speed":  # a treadmill stride is two steps: the heel returns to where it was
            for f in ("left", "right"):
                o = "right" if f == "left" else "left"
                a, b2 = _mean(step_len[f]), _mean(step_len[o])
                stride_len[f] = [a + b2] if a is not None and b2 is not None else []
            metrics["stride_length"] = lr(stride_len)
    sl = metrics["step_length"]
    metrics["symmetry"] = symmetry_index(metrics["step_time_s"]["left"], metrics["step_time_s"]["right"])
    metrics["symmetry_detail"] = {
        "step_time_si_pct": metrics["symmetry"],
        "stance_si_pct": symmetry_index(st["left"], st["right"]),
        "step_length_si_pct": symmetry_index(sl["left"], sl["right"]),
        "stride_time_si_pct": symmetry_index(metrics["stride_time_s"]["left"], metrics["stride_time_s"]["right"]),
    }
    return to_jsonable(metrics)
